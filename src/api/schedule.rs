//! The monthly check (the seed's "1st of the month: enough data? then
//! fine-tune") and its pg_cron helpers.

use crate::core::policy;
use crate::error::{required, OrRaise, Result, VibeError};
use crate::{gucs, store};
use pgrx::prelude::*;
use pgrx::Uuid;

const CRON_JOB_NAME: &str = "vibe_ft_monthly_check";
const CRON_COMMAND: &str = "SELECT * FROM vibe_ft.run_monthly_check()";

/// For every dataset with `auto_finetune` on, decide with that dataset's own
/// thresholds and create a `pending` job for each one that is due (the worker,
/// or `vibe_ft.run_pending_jobs()`, takes it from there). One row per dataset.
/// Also deletes job events older than `vibe_ft.job_events_retention_days`.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn run_monthly_check() -> TableIterator<
    'static,
    (
        name!(dataset_id, Uuid),
        name!(dataset_name, String),
        name!(should_finetune, bool),
        name!(reason, String),
        name!(job_id, Option<Uuid>),
    ),
> {
    TableIterator::new(monthly_check().or_raise())
}

type CheckRow = (Uuid, String, bool, String, Option<Uuid>);

pub(crate) fn monthly_check() -> Result<Vec<CheckRow>> {
    Spi::connect_mut(|c| {
        store::prune_events_older_than(c, gucs::job_events_retention_days())?;
        let ids: Vec<Uuid> = c
            .select(
                "SELECT id FROM vibe_ft.datasets WHERE auto_finetune ORDER BY name",
                None,
                &[],
            )?
            .filter_map(|r| r.get::<Uuid>(1).ok().flatten())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let ds = store::lock_dataset(c, id)?;
            let decision = policy::decide(&store::require_decision_facts(c, id)?, ds.thresholds);
            let job = if decision.should_finetune {
                Some(store::insert_job(c, ds.id, &ds.base_model, ds.hyperparameters, None)?)
            } else {
                None
            };
            out.push((ds.id, ds.name, decision.should_finetune, decision.reason, job));
        }
        Ok(out)
    })
}

fn require_pg_cron(c: &pgrx::spi::SpiClient<'_>) -> Result<()> {
    let t = c.select(
        "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'",
        None,
        &[],
    )?;
    if t.is_empty() {
        return Err(VibeError::Unsupported {
            message: "pg_cron is not installed in this database".into(),
            hint: "Install pg_cron (shared_preload_libraries = 'pg_cron', cron.database_name = this database, \
                   then CREATE EXTENSION pg_cron), or call SELECT * FROM vibe_ft.run_monthly_check() \
                   from your own scheduler."
                .into(),
        });
    }
    Ok(())
}

pub(crate) fn cron_schedule(name: &str, schedule: &str, command: &str) -> Result<i64> {
    Spi::connect_mut(|c| {
        require_pg_cron(c)?;
        store::first_value::<i64>(c.update(
            "SELECT vibe_ft.cron_schedule($1, $2, $3)",
            None,
            &[name.into(), schedule.into(), command.into()],
        )?)?
        .ok_or_else(|| VibeError::Internal("cron.schedule returned no job id".into()))
    })
}

pub(crate) fn cron_unschedule(name: &str) -> Result<bool> {
    Spi::connect_mut(|c| {
        require_pg_cron(c)?;
        let t = c.select(
            "SELECT jobid FROM cron.job WHERE jobname = $1 AND username = current_user",
            None,
            &[name.into()],
        )?;
        let ids: Vec<i64> = t.into_iter().filter_map(|r| r.get::<i64>(1).ok().flatten()).collect();
        for id in &ids {
            c.update("SELECT cron.unschedule($1)", None, &[(*id).into()])?;
        }
        Ok(!ids.is_empty())
    })
}

/// Schedule the monthly check with pg_cron (default: 00:00 UTC on the 1st).
/// Idempotent: calling it again updates the schedule. Returns the cron job id.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn schedule_monthly_check(p_schedule: default!(Option<&str>, "'0 0 1 * *'")) -> i64 {
    let schedule = required(p_schedule, "p_schedule").or_raise();
    cron_schedule(CRON_JOB_NAME, schedule, CRON_COMMAND).or_raise()
}

/// Remove the monthly check from pg_cron. Idempotent: returns false when it was
/// not scheduled.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn unschedule_monthly_check() -> bool {
    cron_unschedule(CRON_JOB_NAME).or_raise()
}

const RUNNER_JOB_NAME: &str = "vibe_ft_job_runner";
const RUNNER_COMMAND: &str = "CALL vibe_ft.run_jobs()";

/// For hosts without the background worker: run `CALL vibe_ft.run_jobs()`
/// from pg_cron (default: every minute). Idempotent. Returns the cron job id.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn schedule_job_runner(p_schedule: default!(Option<&str>, "'* * * * *'")) -> i64 {
    let schedule = required(p_schedule, "p_schedule").or_raise();
    cron_schedule(RUNNER_JOB_NAME, schedule, RUNNER_COMMAND).or_raise()
}

/// Remove the job runner from pg_cron; false when it was not scheduled.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn unschedule_job_runner() -> bool {
    cron_unschedule(RUNNER_JOB_NAME).or_raise()
}

const GENERATION_JOB_NAME: &str = "vibe_ft_generate_examples";
const GENERATION_COMMAND: &str = "SELECT * FROM vibe_ft.generate_examples()";

/// The seed's daily job: turn new feedback into examples with pg_cron
/// (default: 01:00 UTC every day). Idempotent. Returns the cron job id.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn schedule_example_generation(p_schedule: default!(Option<&str>, "'0 1 * * *'")) -> i64 {
    let schedule = required(p_schedule, "p_schedule").or_raise();
    cron_schedule(GENERATION_JOB_NAME, schedule, GENERATION_COMMAND).or_raise()
}

/// Remove the daily generation from pg_cron; false when it was not scheduled.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn unschedule_example_generation() -> bool {
    cron_unschedule(GENERATION_JOB_NAME).or_raise()
}
