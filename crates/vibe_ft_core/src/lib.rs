//! The pure core of vibe_ft: no pgrx, no SQL. Everything here is plain Rust,
//! tested with `cargo test`, and usable from benchmarks or fuzzers.

pub mod check;
pub mod experiment;
pub mod feedback;
pub mod jsonb;
pub mod jsonl;
pub mod messages;
pub mod policy;
pub mod provider;
pub mod redact;
pub mod report;
pub mod runner;
pub mod split;
pub mod status;
pub mod tokens;
