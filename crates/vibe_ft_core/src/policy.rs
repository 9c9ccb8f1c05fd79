//! The decision "is it time to fine-tune this dataset?" (the seed's
//! `should_create_finetuning_job`), as a pure function of a few numbers.

/// `days_since_last_job` when a dataset has never had a job (the seed shows 999).
pub const NO_PREVIOUS_JOB_DAYS: i32 = 999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Examples added since the newest example of the last successful job.
    pub new_examples: i64,
    /// Whole days since the last job that did not fail or get cancelled.
    pub days_since_last_job: Option<i64>,
    /// An unfinished job of this dataset: (id, status).
    pub active_job: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub min_new_examples: i32,
    pub min_days_since_last_job: i32,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    JobInProgress,
    TooFewExamples,
    TooSoon,
    Due,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub should_finetune: bool,
    pub rule: Rule,
    pub reason: String,
    pub new_examples: i32,
    pub days_since_last_job: i32,
}

fn clamp_i32(x: i64) -> i32 {
    x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

pub fn decide(f: &Facts, t: Thresholds) -> Decision {
    let new_examples = clamp_i32(f.new_examples);
    let days = f.days_since_last_job.map(clamp_i32).unwrap_or(NO_PREVIOUS_JOB_DAYS);
    let (rule, reason) = if let Some((id, status)) = &f.active_job {
        (
            Rule::JobInProgress,
            format!("Job already in progress: {id} is {status}"),
        )
    } else if f.new_examples < t.min_new_examples as i64 {
        (
            Rule::TooFewExamples,
            format!(
                "Insufficient new data: {} examples, need at least {}",
                new_examples, t.min_new_examples
            ),
        )
    } else if f.days_since_last_job.is_some() && (days as i64) < t.min_days_since_last_job as i64 {
        (
            Rule::TooSoon,
            format!(
                "Too soon: {} days since the last job, need at least {}",
                days, t.min_days_since_last_job
            ),
        )
    } else {
        let since = match f.days_since_last_job {
            None => "no previous job".to_string(),
            Some(_) => format!("{days} days since the last job"),
        };
        (
            Rule::Due,
            format!(
                "Sufficient new data: {} examples (minimum {}), {}",
                new_examples, t.min_new_examples, since
            ),
        )
    };
    Decision {
        should_finetune: rule == Rule::Due,
        rule,
        reason,
        new_examples,
        days_since_last_job: days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: i32, d: i32) -> Thresholds {
        Thresholds {
            min_new_examples: n,
            min_days_since_last_job: d,
        }
    }

    #[test]
    fn the_seeds_first_test() {
        let d = decide(
            &Facts {
                new_examples: 73,
                days_since_last_job: None,
                active_job: None,
            },
            t(50, 0),
        );
        assert!(d.should_finetune);
        assert!(d.reason.starts_with("Sufficient new data: 73 examples"));
        assert_eq!((d.new_examples, d.days_since_last_job), (73, 999));
    }

    #[test]
    fn too_few_names_both_numbers() {
        let d = decide(
            &Facts {
                new_examples: 73,
                days_since_last_job: None,
                active_job: None,
            },
            t(100, 30),
        );
        assert!(!d.should_finetune);
        assert_eq!(d.rule, Rule::TooFewExamples);
        assert_eq!(d.reason, "Insufficient new data: 73 examples, need at least 100");
    }

    #[test]
    fn too_soon_names_both_numbers() {
        let d = decide(
            &Facts {
                new_examples: 500,
                days_since_last_job: Some(12),
                active_job: None,
            },
            t(100, 30),
        );
        assert_eq!(d.rule, Rule::TooSoon);
        assert_eq!(d.reason, "Too soon: 12 days since the last job, need at least 30");
        assert_eq!(d.days_since_last_job, 12);
        // Exactly at the boundary is due.
        let d = decide(
            &Facts {
                new_examples: 100,
                days_since_last_job: Some(30),
                active_job: None,
            },
            t(100, 30),
        );
        assert_eq!(d.rule, Rule::Due);
        assert_eq!(
            d.reason,
            "Sufficient new data: 100 examples (minimum 100), 30 days since the last job"
        );
    }

    #[test]
    fn job_in_progress_wins() {
        let f = Facts {
            new_examples: 10_000,
            days_since_last_job: Some(0),
            active_job: Some(("abc".into(), "running".into())),
        };
        let d = decide(&f, t(0, 0));
        assert_eq!(d.rule, Rule::JobInProgress);
        assert_eq!(d.reason, "Job already in progress: abc is running");
        assert!(!d.should_finetune);
    }

    #[test]
    fn huge_counts_clamp() {
        let d = decide(
            &Facts {
                new_examples: i64::MAX,
                days_since_last_job: None,
                active_job: None,
            },
            t(0, 0),
        );
        assert_eq!(d.new_examples, i32::MAX);
    }
}
