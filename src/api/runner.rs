//! Running jobs from SQL (hosts without the background worker, pg_cron, tests)
//! and cancelling them. The same steps as the worker: see `crate::runner`.

use crate::error::{required, OrRaise, Result, VibeError};
use crate::runner::{self, Mode};
use crate::{keys, worker};
use pgrx::prelude::*;
use pgrx::Uuid;

/// Advance one job by one step; returns its status afterwards (`busy` when
/// another session or the worker is advancing it). `CALL vibe_ft.run_jobs()`
/// loops over this with a COMMIT after each step.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn run_job_step(p_job_id: Option<Uuid>) -> String {
    let id = required(p_job_id, "p_job_id").or_raise();
    if !crate::gucs::enabled() {
        pgrx::notice!("vibe_ft.enabled is off: no provider calls are made");
        return Spi::connect(|c| -> Result<String> {
            crate::store::first_value::<String>(c.select(
                "SELECT status FROM vibe_ft.jobs WHERE id = $1",
                None,
                &[id.into()],
            )?)?
            .ok_or_else(|| VibeError::NotFound(format!("job {id} does not exist (p_job_id)")))
        })
        .or_raise();
    }
    runner::advance(id, Mode::Sql).or_raise().status
}

/// When `CALL vibe_ft.run_jobs(p_max_seconds)` stops: `p_max_seconds` from
/// now, or NULL (and a notice) when `vibe_ft.enabled` is off. Being Rust, it
/// loads the library, so the setting exists even in a session that never used
/// vibe_ft before (pg_cron's).
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn run_jobs_deadline(p_max_seconds: Option<i32>) -> Option<pgrx::datum::TimestampWithTimeZone> {
    let secs = required(p_max_seconds, "p_max_seconds").or_raise();
    if secs < 0 {
        VibeError::InvalidArgument(format!("p_max_seconds must be >= 0, got {secs}")).raise();
    }
    if !crate::gucs::enabled() {
        pgrx::notice!("vibe_ft.enabled is off: no provider calls are made");
        return None;
    }
    Spi::connect(|c| {
        crate::store::first_value::<pgrx::datum::TimestampWithTimeZone>(c.select(
            "SELECT clock_timestamp() + make_interval(secs => $1)",
            None,
            &[(secs as f64).into()],
        )?)
    })
    .or_raise()
}

/// Record the error a job's step raised (`run_jobs` catches it) on the job,
/// which then waits before its next try, doubling from `vibe_ft.retry_delay`.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn record_step_error(p_job_id: Option<Uuid>, p_sqlstate: Option<&str>, p_message: Option<&str>) {
    let id = required(p_job_id, "p_job_id").or_raise();
    let text: String = p_message.unwrap_or("unknown error").chars().take(2000).collect();
    let code: String = p_sqlstate.unwrap_or("?").chars().take(5).collect();
    let message = format!("{text} (SQLSTATE {code})");
    let wait = runner::record_step_error(id, &message).or_raise();
    pgrx::warning!("vibe_ft: job {id}: {message}; next try in {}s", wait.as_secs());
}

/// Wait for the step in progress on a job, if any, and keep the runner off the
/// job until the current transaction ends.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn lock_job(p_job_id: Option<Uuid>) {
    runner::lock_job(required(p_job_id, "p_job_id").or_raise()).or_raise()
}

/// Delete a job's local JSONL files (in `vibe_ft.work_dir`), if any.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn remove_job_files(p_job_id: Option<Uuid>) {
    runner::remove_local_files(required(p_job_id, "p_job_id").or_raise());
}

/// Set the worker's latch when the current transaction commits (called by the
/// trigger on `vibe_ft.jobs`). Does nothing where the worker is not loaded.
#[pg_extern(parallel_unsafe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn wake_worker() {
    worker::wake_on_commit();
}

/// Whether this server runs the background worker (vibe_ft is in
/// `shared_preload_libraries`).
#[pg_extern(stable)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn worker_loaded() -> bool {
    worker::preloaded()
}

/// The background worker as `vibe_ft.status` shows it: no row where it is not
/// loaded or has not started. Times are seconds since the Unix epoch.
#[pg_extern(stable)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
#[allow(clippy::type_complexity)]
fn worker_info() -> TableIterator<
    'static,
    (
        name!(pid, Option<i32>),
        name!(started_at, f64),
        name!(heartbeat_at, f64),
        name!(last_error, Option<String>),
        name!(last_error_at, Option<f64>),
    ),
> {
    TableIterator::new(worker::info().map(|(pid, s, h, e, at)| ((pid != 0).then_some(pid), s, h, e, at)))
}

/// Where the API key for a provider would come from (`vault`, `setting`,
/// `environment`), or NULL when there is none. Never the key itself.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn provider_key_source(p_provider: Option<&str>) -> Option<&'static str> {
    let name = required(p_provider, "p_provider").or_raise();
    let flavor = crate::core::provider::Flavor::parse(name)
        .ok_or_else(|| {
            VibeError::InvalidArgument(format!(
                "p_provider: no provider module for '{name}'; expected openai, azure or together"
            ))
        })
        .or_raise();
    Spi::connect(|c| keys::find(c, flavor))
        .or_raise()
        .map(|(_, source)| source.as_str())
}

#[pg_schema]
mod public {
    use super::*;

    /// Cancel a fine-tuning job at the provider (when it has one there) and
    /// locally; returns the job's status. Cancelling a cancelled or failed job
    /// changes nothing; a succeeded job cannot be cancelled (55000).
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn cancel_finetuning_job(p_job_id: Option<Uuid>) -> String {
        let id = required(p_job_id, "p_job_id").or_raise();
        runner::cancel(id).or_raise()
    }
}
