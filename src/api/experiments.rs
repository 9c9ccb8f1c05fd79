//! Which model each user gets: the hash behind `choose_model` (in
//! `sql/finalize.sql` with the experiment functions a person calls by hand),
//! `vibe_ft.evaluate_experiments` and its pg_cron helpers.

use crate::error::{required, OrRaise};
use crate::experiments;
use pgrx::prelude::*;

/// A user's bucket in an experiment, 0..9999 (FNV-1a 32, twice, GrowthBook's
/// v2 bucketing, with `|` between seed and user). Runs no SQL: no
/// search_path to pin (a SET clause would cost on every chat request).
#[pg_extern(immutable, parallel_safe)]
fn bucket(p_seed: &str, p_user_id: &str) -> i32 {
    crate::core::experiment::bucket(p_seed, p_user_id) as i32
}

/// Evaluate every running experiment: ramp, promote, roll back or end it on
/// the evidence, and say what was decided. Called by the worker every
/// `vibe_ft.experiment_interval` minutes, by pg_cron
/// (`vibe_ft.schedule_experiment_evaluation()`), or by hand.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn evaluate_experiments() -> TableIterator<
    'static,
    (
        name!(experiment_id, i64),
        name!(dataset_name, String),
        name!(decision, String),
        name!(state, String),
        name!(share, f64),
        name!(reason, String),
    ),
> {
    let rows = Spi::connect_mut(|c| experiments::evaluate_all(c)).or_raise();
    TableIterator::new(rows.into_iter().map(|r| {
        (
            r.experiment_id,
            r.dataset_name,
            r.decision.to_string(),
            r.state,
            r.share,
            r.reason,
        )
    }))
}

const CRON_JOB_NAME: &str = "vibe_ft_evaluate_experiments";
const CRON_COMMAND: &str = "SELECT * FROM vibe_ft.evaluate_experiments()";

/// Evaluate experiments with pg_cron (default: every hour, at minute 7).
/// Idempotent. Returns the cron job id.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn schedule_experiment_evaluation(p_schedule: default!(Option<&str>, "'7 * * * *'")) -> i64 {
    let schedule = required(p_schedule, "p_schedule").or_raise();
    super::schedule::cron_schedule(CRON_JOB_NAME, schedule, CRON_COMMAND).or_raise()
}

/// Remove the experiment evaluation from pg_cron; false when it was not scheduled.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn unschedule_experiment_evaluation() -> bool {
    super::schedule::cron_unschedule(CRON_JOB_NAME).or_raise()
}
