//! The job state machine: local steps before the provider has the job, the
//! provider's own states, and three final states.
//!
//! ```text
//! pending -> exporting -> uploading -> submitted -> validating_files / queued / running / paused
//!                                                         -> succeeded | failed | cancelled
//! ```
//!
//! A job moves forward through the phases (it may skip some: the seed's callers
//! go straight from `pending` to `running`), moves freely among the provider's
//! states, and never leaves a final state. Any unfinished job may fail or be
//! cancelled. One step back exists: `uploading` or `submitted` -> `exporting`,
//! for a job whose data changed before any of it reached a provider job (an
//! erasure): it exports again.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Pending,
    Exporting,
    Uploading,
    Submitted,
    ValidatingFiles,
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

pub const ALL: [JobStatus; 11] = [
    JobStatus::Pending,
    JobStatus::Exporting,
    JobStatus::Uploading,
    JobStatus::Submitted,
    JobStatus::ValidatingFiles,
    JobStatus::Queued,
    JobStatus::Running,
    JobStatus::Paused,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Exporting => "exporting",
            JobStatus::Uploading => "uploading",
            JobStatus::Submitted => "submitted",
            JobStatus::ValidatingFiles => "validating_files",
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Comma-separated list of every status, for error messages.
    pub fn all_names() -> String {
        ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// Phase number: transitions never go to a lower phase.
    fn phase(self) -> u8 {
        match self {
            JobStatus::Pending => 0,
            JobStatus::Exporting => 1,
            JobStatus::Uploading => 2,
            JobStatus::Submitted => 3,
            JobStatus::ValidatingFiles | JobStatus::Queued | JobStatus::Running | JobStatus::Paused => 4,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled => 5,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("job is already {from} and finished jobs never change status (asked for {to})")]
    Finished { from: JobStatus, to: JobStatus },
    #[error("job cannot move back from {from} to {to}")]
    Backwards { from: JobStatus, to: JobStatus },
}

/// What a requested status change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Same status again (a repeated poll): nothing changes.
    Unchanged,
    /// A real change.
    Move,
}

pub fn transition(from: JobStatus, to: JobStatus) -> Result<Transition, TransitionError> {
    if from == to {
        return Ok(Transition::Unchanged);
    }
    if from.is_final() {
        return Err(TransitionError::Finished { from, to });
    }
    let export_again = matches!(from, JobStatus::Uploading | JobStatus::Submitted) && to == JobStatus::Exporting;
    if to.phase() < from.phase() && !export_again {
        return Err(TransitionError::Backwards { from, to });
    }
    Ok(Transition::Move)
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("banana"), None);
        assert_eq!(JobStatus::parse("Running"), None);
        assert!(JobStatus::all_names().starts_with("pending, exporting"));
    }

    #[test]
    fn forward_and_provider_moves() {
        assert_eq!(transition(Pending, Exporting), Ok(Transition::Move));
        assert_eq!(transition(Pending, Running), Ok(Transition::Move)); // the seed's shortcut
        assert_eq!(transition(Running, Paused), Ok(Transition::Move));
        assert_eq!(transition(Paused, Running), Ok(Transition::Move));
        assert_eq!(transition(Running, Queued), Ok(Transition::Move));
        assert_eq!(transition(Running, Running), Ok(Transition::Unchanged));
        for s in ALL.iter().copied().filter(|s| !s.is_final()) {
            assert_eq!(transition(s, Failed), Ok(Transition::Move));
            assert_eq!(transition(s, Cancelled), Ok(Transition::Move));
            assert_eq!(transition(s, Succeeded), Ok(Transition::Move));
        }
    }

    #[test]
    fn finished_jobs_never_move() {
        for from in [Succeeded, Failed, Cancelled] {
            assert_eq!(transition(from, from), Ok(Transition::Unchanged));
            for to in ALL.iter().copied().filter(|t| *t != from) {
                assert_eq!(transition(from, to), Err(TransitionError::Finished { from, to }));
            }
        }
        assert_eq!(
            transition(Succeeded, Running).unwrap_err().to_string(),
            "job is already succeeded and finished jobs never change status (asked for running)"
        );
    }

    #[test]
    fn no_moving_back_a_phase() {
        assert_eq!(
            transition(Running, Pending),
            Err(TransitionError::Backwards {
                from: Running,
                to: Pending
            })
        );
        assert_eq!(
            transition(Submitted, Uploading),
            Err(TransitionError::Backwards {
                from: Submitted,
                to: Uploading
            })
        );
        assert!(transition(Uploading, Pending).is_err());
        assert!(transition(Submitted, Uploading).is_err());
        assert!(transition(Running, Exporting).is_err());
        // The one step back: export again (data erased before it reached a provider job).
        assert_eq!(transition(Uploading, Exporting), Ok(Transition::Move));
        assert_eq!(transition(Submitted, Exporting), Ok(Transition::Move));
    }
}
