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

/// Set the worker's latch when the current transaction commits (called by the
/// trigger on `vibe_ft.jobs`). Does nothing where the worker is not loaded.
#[pg_extern(parallel_unsafe)]
fn wake_worker() {
    worker::wake_on_commit();
}

/// Whether this server runs the background worker (vibe_ft is in
/// `shared_preload_libraries`).
#[pg_extern(stable)]
fn worker_loaded() -> bool {
    worker::preloaded()
}

/// The background worker as `vibe_ft.status` shows it: no row where it is not
/// loaded or has not started. Times are seconds since the Unix epoch.
#[pg_extern(stable)]
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
fn provider_key_source(p_provider: Option<&str>) -> Option<&'static str> {
    let name = required(p_provider, "p_provider").or_raise();
    let flavor = crate::core::provider::Flavor::parse(name)
        .ok_or_else(|| {
            VibeError::InvalidArgument(format!(
                "p_provider: no provider module for '{name}'; expected openai or azure"
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
    pub fn cancel_finetuning_job(p_job_id: Option<Uuid>) -> String {
        let id = required(p_job_id, "p_job_id").or_raise();
        runner::cancel(id).or_raise()
    }
}
