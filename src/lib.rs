//! vibe_ft: fine-tune a model on your users' feedback without leaving PostgreSQL.
//!
//! - `core`: pure Rust (JSONL encoding, message validation, decision policy, job
//!   state machine, split). No pgrx.
//! - `api`: every SQL-callable function, grouped by what the caller is doing.
//! - `runner`: moves a job along its state machine; `worker`: the background
//!   worker that runs it; `keys`: where provider API keys come from.
//! - `experiments`: evaluating which model to serve (the rule is in
//!   `core::experiment`).
//! - `gucs`: every setting. `error`: the one error type.
//! - `sql/`: hand-written DDL (tables, triggers, view, grants) included below.

pub use vibe_ft_core as core;

pub(crate) mod api;
mod error;
mod experiments;
mod gucs;
mod keys;
mod runner;
mod serving;
mod store;
mod tests;
mod worker;

::pgrx::pg_module_magic!();

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        worker::register();
    }
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
