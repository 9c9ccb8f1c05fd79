//! The decision "is it time to fine-tune this dataset?" (the seed's
//! `should_create_finetuning_job`), as a pure function of a few numbers.

/// `days_since_last_job` when a dataset has never had a job (the seed shows 999).
pub const NO_PREVIOUS_JOB_DAYS: i32 = 999;

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Examples added since the newest example of the last successful job.
    pub new_examples: i64,
    /// Whole days since the last job that did not fail or get cancelled.
    pub days_since_last_job: Option<i64>,
    /// An unfinished job of this dataset: (id, status).
    pub active_job: Option<(String, String)>,
    /// The dataset's monthly budget, when it has one.
    pub budget: Option<Budget>,
}

/// A monthly spending cap and what the next job would add to this month's spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub cap_usd: f64,
    /// Jobs of this calendar month: billed, or estimated while unfinished.
    pub spent_usd: f64,
    /// The estimate for the job about to be created; `None` without a price.
    pub next_job_usd: Option<f64>,
    pub base_model: String,
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
    /// A monthly budget is set and the next job would exceed it (or has no price).
    OverBudget,
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

fn over_budget(b: &Budget) -> Option<String> {
    match b.next_job_usd {
        None => Some(format!(
            "Budget unknown: no training price for {} in vibe_ft.prices, so the monthly budget of ${:.2} cannot be checked",
            b.base_model, b.cap_usd
        )),
        Some(next) if b.spent_usd + next > b.cap_usd => Some(format!(
            "Over budget: about ${next:.2} for this job + ${:.2} spent this month exceeds the monthly budget of ${:.2}",
            b.spent_usd, b.cap_usd
        )),
        Some(_) => None,
    }
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
    } else if let Some(over) = f.budget.as_ref().and_then(over_budget) {
        (Rule::OverBudget, over)
    } else {
        let since = match f.days_since_last_job {
            None => "no previous job".to_string(),
            Some(_) => format!("{days} days since the last job"),
        };
        let budget = match &f.budget {
            Some(Budget { cap_usd, spent_usd, next_job_usd: Some(next), .. }) => format!(
                "; about ${next:.2} for this job, ${spent_usd:.2} spent this month of the ${cap_usd:.2} budget"
            ),
            _ => String::new(),
        };
        (
            Rule::Due,
            format!(
                "Sufficient new data: {} examples (minimum {}), {}{}",
                new_examples, t.min_new_examples, since, budget
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
                budget: None,
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
                budget: None,
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
                budget: None,
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
                budget: None,
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
            budget: None,
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
                budget: None,
            },
            t(0, 0),
        );
        assert_eq!(d.new_examples, i32::MAX);
    }

    #[test]
    fn a_monthly_budget_is_the_last_rule() {
        let f = |spent, next| Facts {
            new_examples: 500,
            days_since_last_job: None,
            active_job: None,
            budget: Some(Budget {
                cap_usd: 100.0,
                spent_usd: spent,
                next_job_usd: next,
                base_model: "gpt-4o-2024-08-06".into(),
            }),
        };
        let d = decide(&f(60.0, Some(50.0)), t(100, 30));
        assert_eq!(d.rule, Rule::OverBudget);
        assert!(!d.should_finetune);
        assert_eq!(
            d.reason,
            "Over budget: about $50.00 for this job + $60.00 spent this month exceeds the monthly budget of $100.00"
        );
        let d = decide(&f(50.0, Some(50.0)), t(100, 30));
        assert_eq!(d.rule, Rule::Due);
        assert!(d.reason.starts_with("Sufficient new data: 500 examples"));
        assert!(d.reason.ends_with("about $50.00 for this job, $50.00 spent this month of the $100.00 budget"));
        let d = decide(&f(0.0, None), t(100, 30));
        assert_eq!(d.rule, Rule::OverBudget);
        assert!(d.reason.contains("no training price for gpt-4o-2024-08-06"));
        // Earlier rules still decide first.
        assert_eq!(decide(&f(60.0, Some(50.0)), t(1000, 30)).rule, Rule::TooFewExamples);
    }
}
