//! Every vibe_ft setting lives here: one static, one doc comment and one typed
//! accessor per setting, and one `init()` called from `_PG_init`. Nothing else
//! touches settings directly.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Status changes, provider events and errors kept per job; older ones are
/// deleted as new ones arrive. `vibe_ft.job_events_per_job`.
static JOB_EVENTS_PER_JOB: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// Days job events are kept before the monthly check deletes them.
/// `vibe_ft.job_events_retention_days`.
static JOB_EVENTS_RETENTION_DAYS: GucSetting<i32> = GucSetting::<i32>::new(365);

pub fn job_events_per_job() -> i32 {
    JOB_EVENTS_PER_JOB.get()
}

pub fn job_events_retention_days() -> i32 {
    JOB_EVENTS_RETENTION_DAYS.get()
}

pub fn init() {
    GucRegistry::define_int_guc(
        c"vibe_ft.job_events_per_job",
        c"Job events kept per fine-tuning job.",
        c"When a job has more events than this, its oldest events are deleted.",
        &JOB_EVENTS_PER_JOB,
        10,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.job_events_retention_days",
        c"Days fine-tuning job events are kept.",
        c"vibe_ft.run_monthly_check() deletes job events older than this.",
        &JOB_EVENTS_RETENTION_DAYS,
        1,
        36_500,
        GucContext::Suset,
        GucFlags::default(),
    );
    // Reserve the prefix last, or settings defined after it are dropped.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"vibe_ft".as_ptr()) };
}
