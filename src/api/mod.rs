//! Every SQL-callable function, grouped by what the caller is doing. These are
//! thin: check arguments, call `store` / `core`, shape the result.

mod data;
mod examples;
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
