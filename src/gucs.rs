//! Every vibe_ft setting lives here: one static, one doc comment and one typed
//! accessor per setting, and one `init()` called from `_PG_init`. Nothing else
//! touches settings directly.
//!
//! Settings that decide where requests go (base URLs, the kill switch) are
//! `sighup`: only the server configuration sets them, so no session can point a
//! key at another host. The API keys are `postmaster` settings (see `init`),
//! superuser-only and hidden from `SHOW ALL` / `pg_settings`; `keys.rs` has the
//! order in which keys are looked up.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::time::Duration;

/// Status changes, provider events and errors kept per job; older ones are
/// deleted as new ones arrive. `vibe_ft.job_events_per_job`.
static JOB_EVENTS_PER_JOB: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// Days job events are kept before the monthly check deletes them.
/// `vibe_ft.job_events_retention_days`.
static JOB_EVENTS_RETENTION_DAYS: GucSetting<i32> = GucSetting::<i32>::new(365);

/// Kill switch: when off, nothing calls a provider (worker or SQL).
static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// The database the background worker serves (postmaster start only).
static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));

/// Seconds the idle worker sleeps between looks (a queued job wakes it at once).
static WORKER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(10);

/// Minutes between monthly checks run by the worker itself; 0 = never (use pg_cron).
static WORKER_CHECK_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(0);
static EXPERIMENT_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);

/// Seconds between polls of a job that is validating or queued.
static POLL_INTERVAL_FAST: GucSetting<i32> = GucSetting::<i32>::new(15);

/// Seconds between polls of a running job (sooner when the provider's estimate says so).
static POLL_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(300);

/// Seconds before retrying a step after a transient failure; doubles up to an hour.
static RETRY_DELAY: GucSetting<i32> = GucSetting::<i32>::new(30);

/// Seconds to wait for a provider to connect or answer.
static HTTP_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(60);

static OPENAI_BASE_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"https://api.openai.com/v1"));
static OPENAI_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static AZURE_BASE_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static AZURE_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static TOGETHER_BASE_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"https://api.together.xyz/v1"));
static TOGETHER_API_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Where training files are written before upload (relative to the data directory).
static WORK_DIR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"vibe_ft_files"));

pub fn job_events_per_job() -> i32 {
    JOB_EVENTS_PER_JOB.get()
}

pub fn job_events_retention_days() -> i32 {
    JOB_EVENTS_RETENTION_DAYS.get()
}

pub fn enabled() -> bool {
    ENABLED.get()
}

fn string(s: &GucSetting<Option<CString>>) -> Option<String> {
    s.get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.trim().is_empty())
}

pub fn database() -> String {
    string(&DATABASE).unwrap_or_else(|| "postgres".into())
}

pub fn worker_naptime() -> Duration {
    Duration::from_secs(WORKER_NAPTIME.get().max(1) as u64)
}

pub fn worker_check_interval() -> Option<Duration> {
    let m = WORKER_CHECK_INTERVAL.get();
    (m > 0).then(|| Duration::from_secs(m as u64 * 60))
}

/// How often the worker evaluates running experiments (None: never).
pub fn experiment_interval() -> Option<Duration> {
    let m = EXPERIMENT_INTERVAL.get();
    (m > 0).then(|| Duration::from_secs(m as u64 * 60))
}

pub fn cadence() -> crate::core::runner::Cadence {
    crate::core::runner::Cadence {
        fast: Duration::from_secs(POLL_INTERVAL_FAST.get().max(1) as u64),
        slow: Duration::from_secs(POLL_INTERVAL.get().max(1) as u64),
    }
}

pub fn retry_delay() -> Duration {
    Duration::from_secs(RETRY_DELAY.get().max(1) as u64)
}

pub fn http_timeout() -> Duration {
    Duration::from_secs(HTTP_TIMEOUT.get().max(1) as u64)
}

pub fn base_url(flavor: crate::core::provider::Flavor) -> Option<String> {
    match flavor {
        crate::core::provider::Flavor::OpenAi => string(&OPENAI_BASE_URL),
        crate::core::provider::Flavor::Azure => string(&AZURE_BASE_URL),
        crate::core::provider::Flavor::Together => string(&TOGETHER_BASE_URL),
    }
}

/// The key from the server configuration, if set there. Only `keys.rs` calls this.
pub(crate) fn configured_key(flavor: crate::core::provider::Flavor) -> Option<String> {
    match flavor {
        crate::core::provider::Flavor::OpenAi => string(&OPENAI_API_KEY),
        crate::core::provider::Flavor::Azure => string(&AZURE_API_KEY),
        crate::core::provider::Flavor::Together => string(&TOGETHER_API_KEY),
    }
}

pub fn work_dir() -> String {
    string(&WORK_DIR).unwrap_or_else(|| "vibe_ft_files".into())
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
    GucRegistry::define_bool_guc(
        c"vibe_ft.enabled",
        c"Whether vibe_ft calls fine-tuning providers at all.",
        c"Off: the worker idles and vibe_ft.run_jobs() does nothing; jobs wait where they are.",
        &ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"vibe_ft.database",
            c"The database the vibe_ft background worker serves.",
            c"Install the extension in this database. Changing it needs a restart.",
            &DATABASE,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"vibe_ft.worker_naptime",
        c"Seconds the idle vibe_ft worker sleeps between looks for work.",
        c"A job queued by a committed transaction wakes the worker at once; this bounds the wait otherwise.",
        &WORKER_NAPTIME,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.worker_check_interval",
        c"Minutes between monthly checks run by the worker itself (0: never).",
        c"Use this instead of vibe_ft.schedule_monthly_check() where pg_cron is not available.",
        &WORKER_CHECK_INTERVAL,
        0,
        60 * 24 * 366,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.experiment_interval",
        c"Minutes between evaluations of running experiments by the worker (0: never).",
        c"Without the worker: vibe_ft.schedule_experiment_evaluation() (pg_cron), or SELECT * FROM vibe_ft.evaluate_experiments().",
        &EXPERIMENT_INTERVAL,
        0,
        60 * 24,
        GucContext::Sighup,
        GucFlags::UNIT_MIN,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.poll_interval_fast",
        c"Seconds between polls of a provider job that is validating files or queued.",
        c"",
        &POLL_INTERVAL_FAST,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.poll_interval",
        c"Seconds between polls of a running provider job.",
        c"The provider's estimated finish time brings the next poll forward.",
        &POLL_INTERVAL,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.retry_delay",
        c"Seconds before a step that failed transiently is tried again; doubles up to an hour.",
        c"",
        &RETRY_DELAY,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"vibe_ft.http_timeout",
        c"Seconds to wait for a provider to accept a connection or answer a request.",
        c"",
        &HTTP_TIMEOUT,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    for (name, short, setting) in [
        (
            c"vibe_ft.openai_base_url",
            c"Base URL of the OpenAI API, up to /v1.",
            &OPENAI_BASE_URL,
        ),
        (
            c"vibe_ft.azure_base_url",
            c"Base URL of Azure OpenAI's v1 API: https://<resource>.openai.azure.com/openai/v1.",
            &AZURE_BASE_URL,
        ),
        (
            c"vibe_ft.together_base_url",
            c"Base URL of Together AI's API, up to /v1.",
            &TOGETHER_BASE_URL,
        ),
        (
            c"vibe_ft.work_dir",
            c"Directory for training files before upload, relative to the data directory.",
            &WORK_DIR,
        ),
    ] {
        GucRegistry::define_string_guc(name, short, c"", setting, GucContext::Sighup, GucFlags::default());
    }
    // API keys: superuser-only, hidden from SHOW ALL and pg_settings, and read
    // at server start only. (On a reload the postmaster logs every changed
    // setting with its new value, so a reloadable key would end up in the log.)
    // Postmaster settings exist only when the library is preloaded; without
    // preloading, keys come from Vault or the environment.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        let hidden = GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL | GucFlags::NO_RESET_ALL;
        for (name, short, setting) in [
            (
                c"vibe_ft.openai_api_key",
                c"OpenAI API key (superuser-only; read at server start).",
                &OPENAI_API_KEY,
            ),
            (
                c"vibe_ft.azure_api_key",
                c"Azure OpenAI API key (superuser-only; read at server start).",
                &AZURE_API_KEY,
            ),
            (
                c"vibe_ft.together_api_key",
                c"Together AI API key (superuser-only; read at server start).",
                &TOGETHER_API_KEY,
            ),
        ] {
            GucRegistry::define_string_guc(name, short, c"", setting, GucContext::Postmaster, hidden);
        }
    }
    // Reserve the prefix last, or settings defined after it are dropped.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"vibe_ft".as_ptr()) };
}
