//! The job runner's decisions, free of I/O: which step a job needs next, how
//! long to wait before looking at it again, and what a provider failure does to
//! it. The extension (`src/runner.rs`) performs the steps.
//!
//! A job moves through: `pending` → `exporting` (write JSONL files) →
//! `uploading` (one file per split) → `submitted` (a create request may have
//! been sent: look for our job by metadata before creating) → the provider's
//! states → `succeeded` / `failed` / `cancelled`. Each step is idempotent, so
//! a crash anywhere means the step runs again.

use crate::provider::retry::Disposition;
use crate::provider::ProviderError;
use crate::status::JobStatus;
use std::time::Duration;

/// What the runner knows about a job when choosing its next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub status: JobStatus,
    pub has_validation_split: bool,
    pub training_file: bool,
    pub validation_file: bool,
    pub provider_job: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `pending` → `exporting`.
    Claim,
    /// Snapshot the data and write the JSONL files; → `uploading`.
    Export,
    /// Upload (or find a lost upload of) one split's file.
    Upload(crate::split::Split),
    /// Both files are there: → `submitted`.
    MarkSubmitted,
    /// Find our job at the provider by metadata, or create it.
    Submit,
    /// Ask the provider how the job is doing.
    Poll,
    /// Finished: nothing to do.
    Done,
}

pub fn next_step(j: &JobState) -> Step {
    use crate::split::Split;
    match j.status {
        JobStatus::Pending => Step::Claim,
        JobStatus::Exporting => Step::Export,
        JobStatus::Uploading if !j.training_file => Step::Upload(Split::Train),
        JobStatus::Uploading if j.has_validation_split && !j.validation_file => Step::Upload(Split::Validation),
        JobStatus::Uploading => Step::MarkSubmitted,
        JobStatus::Submitted if !j.provider_job => Step::Submit,
        s if s.is_final() => Step::Done,
        _ => Step::Poll,
    }
}

/// Polling cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// While the provider validates files or the job waits in its queue.
    pub fast: Duration,
    /// While it trains.
    pub slow: Duration,
}

/// How long until a job in provider state `status` is polled again. While it
/// runs, the provider's `estimated_finish` (seconds from now, if given) brings
/// the next poll forward, never below `fast`.
pub fn poll_delay(status: JobStatus, cadence: Cadence, estimated_finish_in: Option<i64>) -> Duration {
    match status {
        JobStatus::ValidatingFiles | JobStatus::Queued | JobStatus::Submitted => cadence.fast,
        JobStatus::Running => match estimated_finish_in {
            Some(s) if s >= 0 && Duration::from_secs(s as u64) < cadence.slow => {
                Duration::from_secs(s as u64).max(cadence.fast)
            }
            _ => cadence.slow,
        },
        // Paused jobs wait for a person; check now and then.
        _ => cadence.slow,
    }
}

/// What a failed provider call does to the job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Try the same step again after this long.
    RetryAfter(Duration),
    /// Try again after this long: the provider limits us for the day.
    Defer(Duration),
    /// Fail the job with this code and message.
    Fail { code: String, message: String },
}

/// `attempts` counts earlier consecutive failures of this job (0 for the
/// first). Transient failures back off from `base` doubling to one hour, so an
/// outage costs a request an hour, not a retry storm.
pub fn on_failure(e: &ProviderError, attempts: u32, base: Duration) -> Outcome {
    match e.disposition {
        Disposition::Retry => {
            let wait = base.as_secs_f64() * 2f64.powi(attempts.min(20) as i32);
            let wait = Duration::from_secs_f64(wait.min(3600.0));
            let requested = e
                .retry_after
                .filter(|d| *d <= Duration::from_secs(3600))
                .unwrap_or_default();
            Outcome::RetryAfter(wait.max(requested))
        }
        Disposition::Defer => Outcome::Defer(
            e.retry_after
                .unwrap_or(Duration::from_secs(24 * 3600))
                .min(crate::provider::retry::MAX_WAIT),
        ),
        Disposition::Fail => Outcome::Fail {
            code: e.code.clone().unwrap_or_else(|| match e.http_status {
                Some(s) => format!("http_{s}"),
                None => "provider_error".into(),
            }),
            message: e.message.clone(),
        },
    }
}

/// The name a job's file has at the provider: how a lost upload is found again.
/// `round` counts the job's exports: a job whose data changed before it reached
/// the provider (an erasure) exports again under a new name, so an upload of
/// the earlier file can never be mistaken for the new one.
pub fn provider_filename(job_id: &str, split: crate::split::Split, round: u32) -> String {
    match round {
        0 => format!("vibe_ft-{job_id}-{}.jsonl", split.as_str()),
        r => format!("vibe_ft-{job_id}-{}-r{r}.jsonl", split.as_str()),
    }
}

/// Seconds from `now` until a provider's `estimated_finish` (epoch seconds),
/// when it is a plausible time (within a year either way); `None` otherwise.
pub fn seconds_until(estimated_finish: Option<i64>, now: i64) -> Option<i64> {
    const YEAR: i64 = 366 * 24 * 3600;
    estimated_finish
        .map(|t| t.saturating_sub(now))
        .filter(|s| (-YEAR..=YEAR).contains(s))
}

/// Providers refuse training files with fewer examples than this.
pub const MIN_TRAINING_EXAMPLES: i64 = 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::Split;

    fn state(status: JobStatus) -> JobState {
        JobState {
            status,
            has_validation_split: true,
            training_file: false,
            validation_file: false,
            provider_job: false,
        }
    }

    #[test]
    fn steps_follow_the_state_machine() {
        assert_eq!(next_step(&state(JobStatus::Pending)), Step::Claim);
        assert_eq!(next_step(&state(JobStatus::Exporting)), Step::Export);
        let mut s = state(JobStatus::Uploading);
        assert_eq!(next_step(&s), Step::Upload(Split::Train));
        s.training_file = true;
        assert_eq!(next_step(&s), Step::Upload(Split::Validation));
        s.validation_file = true;
        assert_eq!(next_step(&s), Step::MarkSubmitted);
        s.has_validation_split = false;
        s.validation_file = false;
        assert_eq!(
            next_step(&s),
            Step::MarkSubmitted,
            "no validation split, no validation file"
        );
        s.status = JobStatus::Submitted;
        assert_eq!(next_step(&s), Step::Submit);
        s.provider_job = true;
        assert_eq!(next_step(&s), Step::Poll);
        for st in [
            JobStatus::ValidatingFiles,
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Paused,
        ] {
            s.status = st;
            assert_eq!(next_step(&s), Step::Poll);
        }
        for st in [JobStatus::Succeeded, JobStatus::Failed, JobStatus::Cancelled] {
            s.status = st;
            assert_eq!(next_step(&s), Step::Done);
        }
    }

    #[test]
    fn polling_backs_off_by_state() {
        let c = Cadence {
            fast: Duration::from_secs(10),
            slow: Duration::from_secs(300),
        };
        assert_eq!(poll_delay(JobStatus::ValidatingFiles, c, None), c.fast);
        assert_eq!(poll_delay(JobStatus::Running, c, None), c.slow);
        assert_eq!(poll_delay(JobStatus::Running, c, Some(60)), Duration::from_secs(60));
        assert_eq!(poll_delay(JobStatus::Running, c, Some(2)), c.fast);
        assert_eq!(
            poll_delay(JobStatus::Running, c, Some(-5)),
            c.slow,
            "past estimates are ignored"
        );
        assert_eq!(poll_delay(JobStatus::Running, c, Some(9000)), c.slow);
    }

    #[test]
    fn failures_back_off_defer_or_fail() {
        let base = Duration::from_secs(30);
        let transient = ProviderError::local(Disposition::Retry, "timeout", "t");
        assert_eq!(
            on_failure(&transient, 0, base),
            Outcome::RetryAfter(Duration::from_secs(30))
        );
        assert_eq!(
            on_failure(&transient, 3, base),
            Outcome::RetryAfter(Duration::from_secs(240))
        );
        assert_eq!(
            on_failure(&transient, 30, base),
            Outcome::RetryAfter(Duration::from_secs(3600))
        );
        let mut daily = ProviderError::local(Disposition::Defer, "daily_rate_limit_exceeded", "d");
        assert_eq!(on_failure(&daily, 0, base), Outcome::Defer(Duration::from_secs(86400)));
        daily.retry_after = Some(Duration::from_secs(600));
        assert_eq!(on_failure(&daily, 0, base), Outcome::Defer(Duration::from_secs(600)));
        let mut fatal = ProviderError::local(Disposition::Fail, "x", "no access");
        fatal.code = None;
        fatal.http_status = Some(403);
        assert_eq!(
            on_failure(&fatal, 0, base),
            Outcome::Fail {
                code: "http_403".into(),
                message: "no access".into()
            }
        );
        assert_eq!(
            provider_filename("j1", Split::Validation, 0),
            "vibe_ft-j1-validation.jsonl"
        );
    }
}
