//! Every SQL-callable function, grouped by what the caller is doing. These are
//! thin: check arguments, call `store` / `core`, shape the result.

mod examples;
pub(crate) mod export;
mod jobs;
mod schedule;
