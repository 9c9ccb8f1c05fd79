//! Which model to call, and serving the ones that need dedicated hardware:
//! `vibe_ft.deploy_model` / `vibe_ft.stop_deployment` (money: never granted by
//! `grant_access`), `vibe_ft.refresh_deployments`, and what an app reads to
//! call a provider (`vibe_ft.provider_base_url`; `vibe_ft.serving_model` and
//! the `vibe_ft.models` view are in `sql/finalize.sql`).

use crate::core::provider::Flavor;
use crate::error::{required, OrRaise};
use crate::runner::Mode;
use crate::{gucs, serving};
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

/// The base URL an app calls a provider's models at (the same setting the
/// runner uses; not a secret). NULL for a provider vibe_ft has no module for,
/// or whose URL is not set (Azure). Runs no SQL: no search_path to pin.
#[pg_extern(stable, parallel_safe)]
fn provider_base_url(p_provider: Option<&str>) -> Option<String> {
    Flavor::parse(p_provider?).and_then(gucs::base_url)
}

/// Whether a provider's fine-tuned models need a deployment (dedicated
/// hardware) before they can be called. Runs no SQL: no search_path to pin.
#[pg_extern(immutable, parallel_safe)]
fn needs_deployment(p_provider: Option<&str>) -> Option<bool> {
    Flavor::parse(p_provider?).map(Flavor::needs_deployment)
}

/// Serve a succeeded job's model on a dedicated endpoint (Together). It bills
/// per minute while it runs, idle or not: the caller states the most it may
/// cost per hour (replicas x the hardware's price in vibe_ft.hardware_prices),
/// and the provider stops it after p_inactive_timeout_minutes without requests.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn deploy_model(
    p_job_id: Option<Uuid>,
    p_max_hourly_usd: Option<AnyNumeric>,
    p_hardware: default!(Option<&str>, "'1x_nvidia_h100_80gb_sxm'"),
    p_inactive_timeout_minutes: default!(Option<i32>, "60"),
    p_min_replicas: default!(Option<i32>, "1"),
    p_max_replicas: default!(Option<i32>, "1"),
) -> TableIterator<
    'static,
    (
        name!(endpoint_name, Option<String>),
        name!(state, String),
        name!(hourly_usd, AnyNumeric),
    ),
> {
    let d = serving::deploy(serving::Request {
        job_id: required(p_job_id, "p_job_id").or_raise(),
        max_hourly_usd: required(p_max_hourly_usd, "p_max_hourly_usd").or_raise(),
        hardware: required(p_hardware, "p_hardware").or_raise(),
        inactive_timeout_minutes: required(p_inactive_timeout_minutes, "p_inactive_timeout_minutes").or_raise(),
        min_replicas: required(p_min_replicas, "p_min_replicas").or_raise(),
        max_replicas: required(p_max_replicas, "p_max_replicas").or_raise(),
    })
    .or_raise();
    TableIterator::once((d.endpoint_name, d.state, d.hourly_usd))
}

/// Stop a job's endpoint: billing stops, the model stays (deploy it again later).
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn stop_deployment(p_job_id: Option<Uuid>) -> String {
    serving::stop(required(p_job_id, "p_job_id").or_raise()).or_raise()
}

/// Record how each endpoint is doing at the provider (the worker does this on
/// its own; without it, schedule this with pg_cron). Returns how many were checked.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn refresh_deployments() -> i64 {
    serving::refresh(Mode::Sql).or_raise().checked
}
