//! Every SQL-callable function, grouped by what the caller is doing. These are
//! thin: check arguments, call `store` / `core`, shape the result.

mod data;
mod examples;
mod experiments;
mod report;
pub(crate) mod json;
mod feedback;
pub(crate) mod export;
mod jobs;
mod runner;
mod serving;
pub(crate) mod schedule;

pub(crate) use schedule::monthly_check as run_monthly_check_now;

use crate::error::{Result, VibeError};
use pgrx::AnyNumeric;

/// A jsonb argument that must be a JSON object.
fn require_object(v: &serde_json::Value, arg: &str) -> Result<()> {
    if v.is_object() {
        return Ok(());
    }
    Err(VibeError::InvalidArgument(format!(
        "{arg} must be a JSON object, got {}",
        crate::core::messages::json_type_name(v)
    )))
}

/// A quality score or threshold: 0 to 10.
fn require_quality(n: &AnyNumeric, arg: &str) -> Result<()> {
    if (0.0..=10.0).contains(&crate::store::numeric_f64(n)) {
        return Ok(());
    }
    Err(VibeError::OutOfRange(format!(
        "{arg} must be between 0 and 10, got {n}"
    )))
}

thread_local! {
    /// Once the model registry (0.5.0) is seen in this backend, it stays.
    static REGISTRY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `vibe_ft.models` exists: not between installing this library and
/// `ALTER EXTENSION vibe_ft UPDATE` from 0.4.0.
pub(crate) fn registry_installed(c: &pgrx::spi::SpiClient<'_>) -> Result<bool> {
    if REGISTRY.with(|r| r.get()) {
        return Ok(true);
    }
    let found = crate::store::first_value::<bool>(c.select(
        "SELECT to_regclass('vibe_ft.models') IS NOT NULL",
        None,
        &[],
    )?)?
    .unwrap_or(false);
    REGISTRY.with(|r| r.set(found));
    Ok(found)
}
