//! The job runner: moves one job one step along its state machine (see
//! `core::runner` for the steps and the decisions), used by the background
//! worker and by the SQL functions alike. This file: transactions, locks, the
//! job as the runner sees it, and the dispatch of one step; each step is a
//! module of its own (export, upload, submit, poll) and so is cancel.
//!
//! Each step reads what it needs in a short transaction, talks to the
//! provider with no transaction open (in the worker; from SQL, inside the
//! caller's transaction but before it has written anything, so no row locks
//! are held during HTTP calls), and records the result in another short
//! transaction. One job is advanced by one process at a time: an advisory
//! lock on the job (session-level in the worker, transaction-level from SQL).
//!
//! Crash safety comes from the order of writes: a step records its intent
//! (`submitted` before a create request) and every step is repeatable: files are
//! found again by name, provider jobs by our id in their metadata.

use crate::core::check::{self, Checker, Rules};
use crate::core::provider::{self, Endpoint, Flavor, JobTag, Provider, ProviderError, JOB_ID_METADATA_KEY};
use crate::core::runner::{self as plan, JobState, Outcome, Step};
use crate::core::split::Split;
use crate::core::status::JobStatus;
use crate::core::tokens::Encoding;
use crate::error::{Result, VibeError};
use crate::store::{self, Event};
use crate::{gucs, keys};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{pg_sys, AnyNumeric, JsonB, Uuid};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

mod cancel;
mod export;
mod poll;
mod submit;
mod upload;

pub use cancel::cancel;
pub use export::remove_local_files;
use export::{export_step, local_file};
use poll::poll;
use submit::submit;
use upload::upload;

/// Who is running the step, which decides how transactions and locks work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside a SQL function: the caller's transaction; a transaction-level lock.
    Sql,
    /// The background worker: a transaction per read or write; a session lock.
    Worker,
}

/// First key of every vibe_ft advisory lock ("vft\0"); the second is from the job id.
const LOCK_CLASS: i32 = 0x7666_7400;

fn lock_key(job_id: Uuid) -> i32 {
    let b = job_id.as_bytes();
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Run `f` in a transaction. From SQL that is the caller's; in the worker a new
/// one, committed when `f` succeeds and rolled back when it fails or raises.
/// An error at commit (a deferred constraint, a serialization failure) is an
/// error like any other: the transaction is rolled back and the error returned,
/// never a dead worker.
pub fn tx<R>(mode: Mode, f: impl FnOnce() -> Result<R>) -> Result<R> {
    if mode == Mode::Sql {
        return f();
    }
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        // The runner reads what committed while it waited for a lock (see
        // export_step), whatever default_transaction_isolation says.
        pg_sys::XactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        let r = f()?;
        unsafe {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        }
        Ok(r)
    }))
    .catch_others(|e| {
        let msg = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
        };
        Err(VibeError::Internal(msg))
    })
    .execute();
    if result.is_err() {
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    result
}

/// The provider client for a step: every call runs on a helper thread (see
/// `core::provider::interruptible`), so a worker asked to stop, or a query
/// that is cancelled, stops waiting at once rather than after a large upload
/// or a retry sleep.
pub(crate) fn client(mode: Mode, ep: Endpoint) -> provider::interruptible::Interruptible {
    let inner = provider::client(ep);
    match mode {
        Mode::Worker => provider::interruptible::Interruptible::new(inner, crate::worker::stopping),
        // Raises the cancel (or terminate) error here when one is pending.
        Mode::Sql => provider::interruptible::Interruptible::new(inner, || {
            pg_sys::check_for_interrupts!();
            false
        }),
    }
}

/// Wait for any step in progress on a job and keep others off it until the
/// current transaction ends (the runner's own lock, in its transaction form).
pub fn lock_job(job_id: Uuid) -> Result<()> {
    Spi::connect(|c| {
        c.select(
            "SELECT pg_advisory_xact_lock($1, $2)",
            None,
            &[LOCK_CLASS.into(), lock_key(job_id).into()],
        )?;
        Ok(())
    })
}

/// Exports hold this lock shared; `vibe_ft.forget_user` takes it exclusively,
/// so no export can write rows that an erasure deletes (see `forget_user`).
const ERASURE_LOCK: (i32, i32) = (1_986_426_113, 2);

/// A job as the runner sees it.
struct Job {
    id: Uuid,
    status: JobStatus,
    provider: String,
    base_model: String,
    method: String,
    hyperparameters: serde_json::Value,
    suffix: Option<String>,
    seed: Option<i64>,
    dataset_id: Uuid,
    min_quality: Option<AnyNumeric>,
    validation_examples: i32,
    training_file_id: Option<String>,
    validation_file_id: Option<String>,
    provider_job_id: Option<String>,
    event_cursor: Option<String>,
    attempts: i32,
    /// Made by this installation (not a restored copy of another's).
    ours: bool,
    export_round: u32,
}

impl Job {
    fn state(&self) -> JobState {
        JobState {
            status: self.status,
            has_validation_split: self.validation_examples > 0,
            training_file: self.training_file_id.is_some(),
            validation_file: self.validation_file_id.is_some(),
            provider_job: self.provider_job_id.is_some(),
        }
    }
    /// What finds this job's provider job again.
    fn tag(&self) -> JobTag {
        JobTag {
            job_id: self.id.to_string(),
            training_file: self.training_file_id.clone(),
            suffix: self.suffix.clone(),
        }
    }
    /// The create request, as the provider would get it.
    fn new_job(&self) -> provider::NewJob {
        let mut metadata = BTreeMap::new();
        metadata.insert(JOB_ID_METADATA_KEY.to_string(), self.id.to_string());
        metadata.insert("vibe_ft_dataset_id".to_string(), self.dataset_id.to_string());
        provider::NewJob {
            model: self.base_model.clone(),
            training_file: self.training_file_id.clone().unwrap_or_default(),
            validation_file: self.validation_file_id.clone(),
            suffix: self.suffix.clone(),
            seed: self.seed,
            method: self.method.clone(),
            hyperparameters: self.hyperparameters.clone(),
            metadata,
        }
    }
    fn file_id(&self, split: Split) -> Option<&str> {
        match split {
            Split::Train => self.training_file_id.as_deref(),
            Split::Validation => self.validation_file_id.as_deref(),
        }
    }
}

fn load(c: &SpiClient<'_>, id: Uuid) -> Result<Job> {
    let t = c.select(
        "SELECT status, provider, base_model, method, hyperparameters, suffix, seed, dataset_id,
                min_quality_score, coalesce(validation_examples, 0), training_file_id, validation_file_id,
                provider_job_id, provider_event_cursor, attempts,
                installation_id IS NOT DISTINCT FROM vibe_ft.installation_id(), export_round
           FROM vibe_ft.jobs WHERE id = $1",
        None,
        &[id.into()],
    )?;
    if t.is_empty() {
        return Err(VibeError::NotFound(format!("job {id} does not exist (p_job_id)")));
    }
    let r = t.first();
    let status: String = r.get(1)?.unwrap_or_default();
    Ok(Job {
        id,
        status: JobStatus::parse(&status)
            .ok_or_else(|| VibeError::Internal(format!("job {id} has an unknown status {status}")))?,
        provider: r.get(2)?.unwrap_or_default(),
        base_model: r.get(3)?.unwrap_or_default(),
        method: r.get(4)?.unwrap_or_else(|| "supervised".into()),
        hyperparameters: r.get::<JsonB>(5)?.map(|j| j.0).unwrap_or_else(|| serde_json::json!({})),
        suffix: r.get(6)?,
        seed: r.get(7)?,
        dataset_id: r
            .get(8)?
            .ok_or_else(|| VibeError::Internal("job without dataset".into()))?,
        min_quality: r.get(9)?,
        validation_examples: r.get(10)?.unwrap_or(0),
        training_file_id: r.get(11)?,
        validation_file_id: r.get(12)?,
        provider_job_id: r.get(13)?,
        event_cursor: r.get(14)?,
        attempts: r.get(15)?.unwrap_or(0),
        ours: r.get(16)?.unwrap_or(false),
        export_round: r.get::<i32>(17)?.unwrap_or(0).max(0) as u32,
    })
}

fn event(c: &mut SpiClient<'_>, job: Uuid, kind: &str, message: &str, data: Option<serde_json::Value>) -> Result<()> {
    let e = Event {
        kind,
        from_status: None,
        to_status: None,
        message: Some(message),
        data: data.map(JsonB),
    };
    store::record_event(c, job, e, gucs::job_events_per_job())
}

/// Record an error a step raised (not a provider's answer: a local failure
/// such as an unwritable work_dir, a full disk, a database error) after the
/// step was rolled back, and leave the job alone for a while, doubling from
/// `vibe_ft.retry_delay` to an hour, as for a transient provider failure: a
/// broken job must not become a busy loop, nor hold up the others. Returns
/// the wait.
pub fn record_step_error(job: Uuid, message: &str) -> Result<Duration> {
    Spi::connect_mut(|c| {
        let Some(attempts) = store::first_value::<i32>(c.update(
            "UPDATE vibe_ft.jobs SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
            None,
            &[job.into()],
        )?)?
        else {
            // The job was deleted meanwhile: nothing to record, nothing to wait for.
            return Ok(Duration::ZERO);
        };
        let local = ProviderError::local(provider::retry::Disposition::Retry, "step_failed", message);
        let wait = match plan::on_failure(&local, attempts.max(1) as u32 - 1, gucs::retry_delay()) {
            Outcome::RetryAfter(d) | Outcome::Defer(d) => d,
            Outcome::Fail { .. } => gucs::retry_delay(),
        };
        c.update(
            "UPDATE vibe_ft.jobs SET next_attempt_at = clock_timestamp() + make_interval(secs => $2) WHERE id = $1",
            None,
            &[job.into(), wait.as_secs_f64().into()],
        )?;
        let msg = format!("step failed: {message} (next try in {}s)", wait.as_secs());
        event(c, job, "error", &msg, Some(serde_json::json!({"code": "step_failed"})))?;
        Ok(wait)
    })
}

fn error_data(e: &ProviderError) -> serde_json::Value {
    serde_json::json!({
        "code": e.code, "http_status": e.http_status, "request_id": e.request_id,
        "disposition": format!("{:?}", e.disposition).to_lowercase(),
    })
}

/// A job after one step.
pub struct Advanced {
    /// Its status, or `busy` when another process is advancing it right now.
    pub status: String,
    /// Whether its next step may run at once (no wait set by a retry or a poll).
    pub due: bool,
}

/// Advance a job by one step.
pub fn advance(job_id: Uuid, mode: Mode) -> Result<Advanced> {
    let key = lock_key(job_id);
    let locked = tx(mode, || {
        let sql = match mode {
            Mode::Sql => "SELECT pg_try_advisory_xact_lock($1, $2)",
            Mode::Worker => "SELECT pg_try_advisory_lock($1, $2)",
        };
        Spi::connect(|c| store::first_value::<bool>(c.select(sql, None, &[LOCK_CLASS.into(), key.into()])?))
    })?
    .unwrap_or(false);
    if !locked {
        return Ok(Advanced {
            status: "busy".into(),
            due: false,
        });
    }
    let result = step(job_id, mode);
    if mode == Mode::Worker {
        let unlocked = tx(mode, || {
            Spi::connect(|c| {
                c.select(
                    "SELECT pg_advisory_unlock($1, $2)",
                    None,
                    &[LOCK_CLASS.into(), key.into()],
                )?;
                Ok(())
            })
        });
        if let Err(e) = unlocked {
            // The lock goes when the worker does; say so rather than hide it.
            pgrx::warning!("vibe_ft: could not release the lock of job {job_id}: {e}");
        }
    }
    result
}

fn step(job_id: Uuid, mode: Mode) -> Result<Advanced> {
    let job = tx(mode, || Spi::connect(|c| load(c, job_id)))?;
    let next = plan::next_step(&job.state());
    if !job.ours && next != Step::Done {
        return Err(foreign(job_id));
    }
    match next {
        Step::Done => {
            return Ok(Advanced {
                status: job.status.as_str().into(),
                due: false,
            })
        }
        Step::Claim => move_on(mode, job_id, JobStatus::Pending, JobStatus::Exporting)?,
        Step::Export => {
            tx(mode, || export_step(&job))?;
            if job.export_round > 0 {
                clean_up_after_local_failure(mode, job_id)?;
            }
        }
        Step::Upload(split) => upload(mode, &job, split)?,
        Step::MarkSubmitted => {
            move_on(mode, job_id, JobStatus::Uploading, JobStatus::Submitted)?;
            remove_local_files(job_id);
        }
        Step::Submit => submit(mode, &job)?,
        Step::Poll => poll(mode, &job)?,
    }
    tx(mode, || {
        Spi::connect(|c| {
            let t = c.select(
                "SELECT status, next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp()
                   FROM vibe_ft.jobs WHERE id = $1",
                None,
                &[job_id.into()],
            )?;
            if t.is_empty() {
                return Err(VibeError::NotFound(format!("job {job_id} does not exist (p_job_id)")));
            }
            let (status, due) = t.first().get_two::<String, bool>()?;
            Ok(Advanced {
                status: status.unwrap_or_default(),
                due: due.unwrap_or(false),
            })
        })
    })
}

/// A job another installation created (this database is a restored copy).
fn foreign(job: Uuid) -> VibeError {
    VibeError::State(format!(
        "job {job} was created by another installation of vibe_ft (this database was restored from a copy): \
         it is left alone here; SELECT vibe_ft.adopt_jobs('{job}') to run it from this one"
    ))
}

/// Move a job from `from` to `to` (nothing if it is no longer in `from`) and
/// make it due at once.
fn move_on(mode: Mode, job: Uuid, from: JobStatus, to: JobStatus) -> Result<()> {
    tx(mode, || {
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE vibe_ft.jobs SET status = $3, attempts = 0, next_attempt_at = NULL
                  WHERE id = $1 AND status = $2",
                None,
                &[job.into(), from.as_str().into(), to.as_str().into()],
            )?;
            Ok(())
        })
    })
}

/// The provider endpoint for a job, or `None` after recording why there is none
/// (no key, no URL: the job waits, retried with backoff, until configured).
fn endpoint_or_wait(mode: Mode, job: &Job) -> Result<Option<Endpoint>> {
    let found = tx(mode, || Spi::connect(|c| keys::endpoint(c, &job.provider)));
    match found {
        Ok(ep) => Ok(Some(ep)),
        Err(e @ VibeError::Unsupported { .. }) => {
            let msg = match &e {
                VibeError::Unsupported { message, hint } => format!("{message}. {hint}"),
                _ => e.to_string(),
            };
            if mode == Mode::Sql {
                pgrx::warning!("vibe_ft: job {}: {msg}", job.id);
            }
            let wait = plan::on_failure(
                &ProviderError::local(provider::retry::Disposition::Retry, "not_configured", msg.clone()),
                job.attempts as u32,
                gucs::retry_delay(),
            );
            record_failure(mode, job, "configure", &msg, None, wait)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Fail a job before it reaches the provider (bad data, unsupported method).
fn fail_locally(c: &mut SpiClient<'_>, job: Uuid, code: &str, message: &str) -> Result<()> {
    c.update(
        "UPDATE vibe_ft.jobs SET status = 'failed', error_code = $2, error_message = $3, next_attempt_at = NULL
          WHERE id = $1",
        None,
        &[job.into(), code.into(), message.into()],
    )?;
    event(c, job, "error", message, Some(serde_json::json!({ "code": code })))
}

// ---------------------------------------------------------------------------
// shared by the steps: failures, clean-up
// ---------------------------------------------------------------------------

/// Record a failed step: wait and retry, defer, or fail the job.
fn record_failure(
    mode: Mode,
    job: &Job,
    what: &str,
    message: &str,
    e: Option<&ProviderError>,
    outcome: Outcome,
) -> Result<()> {
    if e.and_then(|e| e.code.as_deref()) == Some(provider::interruptible::INTERRUPTED) {
        // Not the provider's doing: the worker is stopping. The step runs again later.
        return Ok(());
    }
    let data = e.map(error_data).unwrap_or_else(|| serde_json::json!({}));
    tx(mode, || {
        Spi::connect_mut(|c| match &outcome {
            Outcome::RetryAfter(d) | Outcome::Defer(d) => {
                c.update(
                    "UPDATE vibe_ft.jobs SET attempts = attempts + 1,
                                next_attempt_at = clock_timestamp() + make_interval(secs => $2)
                          WHERE id = $1",
                    None,
                    &[job.id.into(), d.as_secs_f64().into()],
                )?;
                let verb = if matches!(outcome, Outcome::Defer(_)) {
                    "deferred"
                } else {
                    "will retry"
                };
                let msg = format!("{what}: {message} ({verb} in {}s)", d.as_secs());
                event(c, job.id, "error", &msg, Some(data.clone()))
            }
            Outcome::Fail { code, message } => {
                fail_locally(c, job.id, code, &format!("{what}: {message}"))?;
                Ok(())
            }
        })
    })
}

/// A job that exported again (an erasure) and then failed before reaching the
/// provider still has uploads of its earlier exports there: delete them (best
/// effort; without a key or URL they stay, and the events say so).
fn clean_up_after_local_failure(mode: Mode, job_id: Uuid) -> Result<()> {
    let job = tx(mode, || Spi::connect(|c| load(c, job_id)))?;
    if job.status != JobStatus::Failed {
        return Ok(());
    }
    let notes = match tx(mode, || Spi::connect(|c| keys::endpoint(c, &job.provider))) {
        Ok(ep) => sweep_files(&client(mode, ep), &job),
        Err(e) => vec![format!("could not delete uploads of earlier exports: {e}")],
    };
    tx(mode, || {
        Spi::connect_mut(|c| {
            for note in &notes {
                event(c, job_id, "note", note, None)?;
            }
            Ok(())
        })
    })
}

/// Best effort: delete a job's uploaded files (a job that failed or was
/// cancelled before the provider had a job for them).
fn delete_uploaded(mode: Mode, job: &Job, p: &dyn Provider) {
    let Ok(current) = tx(mode, || Spi::connect(|c| load(c, job.id))) else {
        return;
    };
    if current.provider_job_id.is_some() {
        return;
    }
    for split in [Split::Train, Split::Validation] {
        if let Some(id) = current.file_id(split) {
            let result = p.delete_file(id);
            let msg = match &result {
                Ok(()) => format!("deleted uploaded {} file {id}", split.as_str()),
                Err(e) => format!("could not delete uploaded {} file {id}: {e}", split.as_str()),
            };
            let _ = tx(mode, || Spi::connect_mut(|c| event(c, job.id, "note", &msg, None)));
        }
    }
    remove_local_files(job.id);
}

/// When a job is over: delete uploads of its files other than the ones it used.
/// (An upload that timed out on our side may still complete at the provider
/// after we listed its files and reused or re-sent one.) Best effort; returns
/// notes for the job's events.
fn sweep_files(p: &dyn Provider, job: &Job) -> Vec<String> {
    let mut notes = Vec::new();
    for (split, round) in [Split::Train, Split::Validation]
        .into_iter()
        .flat_map(|s| (0..=job.export_round).map(move |r| (s, r)))
    {
        let name = plan::provider_filename(&job.id.to_string(), split, round);
        match p.find_files(&name) {
            Ok(files) => {
                for f in files.iter().filter(|f| Some(f.id.as_str()) != job.file_id(split)) {
                    notes.push(match p.delete_file(&f.id) {
                        Ok(()) => format!("deleted duplicate upload {} of the {} file", f.id, split.as_str()),
                        Err(e) => format!("could not delete duplicate upload {}: {e}", f.id),
                    });
                }
            }
            Err(e) => notes.push(format!("could not look for duplicate uploads: {e}")),
        }
    }
    notes
}
