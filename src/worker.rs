//! The background worker (`shared_preload_libraries = 'vibe_ft'`).
//!
//! One worker serves the database named by `vibe_ft.database`. It sleeps on
//! its latch; a transaction that queues or changes a job sets that latch when
//! it commits (`wake_on_commit`), so work starts at once rather than at the
//! next poll. Each round it writes a heartbeat, advances every job that is
//! due, optionally runs the monthly check, and sleeps until the next job is
//! due or `vibe_ft.worker_naptime` passes. Every error becomes a recorded
//! failure (the job's events, the worker's `last_error` in shared memory), never
//! a dead worker. SIGHUP reloads settings; SIGTERM stops it between steps.

use crate::error::Result;
use crate::gucs;
use crate::runner::{self, Mode};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys, PGRXSharedMemory, PgAtomic, PgLwLock, Uuid};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

pub const NAME: &str = "vibe_ft worker";

/// The worker's `pgprocno`, so any backend can set its latch; -1 when none.
static WORKER_PROCNO: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"vibe_ft_worker_procno") };
/// Set in the postmaster when the shared memory above exists (preloaded).
static SHMEM_READY: AtomicBool = AtomicBool::new(false);

/// What `vibe_ft.status` shows about the worker. In shared memory, not a
/// table: an idle worker writes no WAL (a table heartbeat would, every round,
/// keeping an idle server's archiving and checkpoints busy).
static INFO: PgLwLock<Info> = unsafe { PgLwLock::new(c"vibe_ft_worker_info") };

const ERROR_MAX: usize = 1024;

#[derive(Clone, Copy)]
pub struct Info {
    pid: i32,
    /// Seconds since the Unix epoch; 0 = never.
    started_at: f64,
    heartbeat_at: f64,
    last_error_at: f64,
    error_len: usize,
    error: [u8; ERROR_MAX],
}

impl Default for Info {
    fn default() -> Self {
        Info {
            pid: 0,
            started_at: 0.0,
            heartbeat_at: 0.0,
            last_error_at: 0.0,
            error_len: 0,
            error: [0; ERROR_MAX],
        }
    }
}

unsafe impl PGRXSharedMemory for Info {}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The worker's pid, start, heartbeat (epoch seconds), last error and its
/// time, as `vibe_ft.worker_info()` returns them.
pub type InfoRow = (i32, f64, f64, Option<String>, Option<f64>);

/// `None` where the worker is not loaded or has never run.
pub fn info() -> Option<InfoRow> {
    if !preloaded() {
        return None;
    }
    let i = *INFO.share();
    if i.started_at == 0.0 {
        return None;
    }
    let error = (i.error_len > 0).then(|| String::from_utf8_lossy(&i.error[..i.error_len]).into_owned());
    Some((
        i.pid,
        i.started_at,
        i.heartbeat_at,
        error,
        (i.last_error_at > 0.0).then_some(i.last_error_at),
    ))
}

thread_local! {
    static WAKE_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Called from `_PG_init` while `shared_preload_libraries` loads.
pub fn register() {
    pg_shmem_init!(WORKER_PROCNO = AtomicI32::new(-1));
    pg_shmem_init!(INFO);
    SHMEM_READY.store(true, Ordering::Relaxed);
    BackgroundWorkerBuilder::new(NAME)
        .set_type(NAME)
        .set_library("vibe_ft")
        .set_function("vibe_ft_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// This process's index in `ProcGlobal->allProcs`.
#[cfg(any(feature = "pg15", feature = "pg16"))]
unsafe fn my_proc_number() -> i32 {
    unsafe { (*pg_sys::MyProc).pgprocno }
}

/// This process's index in `ProcGlobal->allProcs`. PostgreSQL 17 removed
/// `PGPROC.pgprocno` in favour of the global `MyProcNumber`.
#[cfg(any(feature = "pg17", feature = "pg18"))]
unsafe fn my_proc_number() -> i32 {
    unsafe { pg_sys::MyProcNumber }
}

/// Whether this server runs the worker (the library was preloaded).
pub fn preloaded() -> bool {
    SHMEM_READY.load(Ordering::Relaxed)
}

/// Wake the worker when the current transaction commits (not before: it would
/// look and not yet see the job). A no-op without the worker.
pub fn wake_on_commit() {
    if !preloaded() || unsafe { !pg_sys::MyBgworkerEntry.is_null() } || WAKE_PENDING.get() {
        return;
    }
    WAKE_PENDING.set(true);
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, || {
        WAKE_PENDING.set(false);
        let procno = WORKER_PROCNO.get().load(Ordering::Relaxed);
        if procno >= 0 && (procno as u32) < unsafe { (*pg_sys::ProcGlobal).allProcCount } {
            unsafe { pg_sys::SetLatch(&raw mut (*(*pg_sys::ProcGlobal).allProcs.add(procno as usize)).procLatch) };
        }
    });
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Abort, || WAKE_PENDING.set(false));
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn vibe_ft_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // Everything the worker runs resolves names in pg_catalog (then its own
    // temporary schema), never in a schema another role can write, whatever
    // the server, database or role settings say.
    unsafe {
        pg_sys::SetConfigOption(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        );
    }
    unsafe {
        pg_sys::pgstat_report_appname(c"vibe_ft worker".as_ptr());
        WORKER_PROCNO.get().store(my_proc_number(), Ordering::Relaxed);
    }
    log!("vibe_ft worker started for database \"{database}\"");
    {
        let mut i = INFO.exclusive();
        i.pid = unsafe { pg_sys::MyProcPid };
        i.started_at = now();
        i.heartbeat_at = i.started_at;
    }
    let mut last_check: Option<Instant> = None;
    let mut last_refresh: Option<Instant> = None;
    let mut last_evaluation: Option<Instant> = None;
    let mut said_not_ready = false;
    let mut backoff = HashMap::new();
    loop {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if stopping() {
            break;
        }
        INFO.exclusive().heartbeat_at = now();
        let wait = match round(&mut last_check, &mut last_refresh, &mut last_evaluation, &mut said_not_ready, &mut backoff) {
            Ok(wait) => wait,
            Err(e) => {
                log!("vibe_ft worker: {e}");
                note_error(&e.to_string());
                gucs::worker_naptime()
            }
        };
        if !BackgroundWorker::wait_latch(Some(wait)) || stopping() {
            break;
        }
    }
    WORKER_PROCNO.get().store(-1, Ordering::Relaxed);
    INFO.exclusive().pid = 0;
    log!("vibe_ft worker stopping");
}

enum Ready {
    Yes,
    NotInstalled,
    WrongVersion(String),
}

/// One round; returns how long to sleep.
/// A job whose step raised a database error, left alone until `until`.
struct Backoff {
    until: Instant,
    failures: u32,
}

fn round(
    last_check: &mut Option<Instant>,
    last_refresh: &mut Option<Instant>,
    last_evaluation: &mut Option<Instant>,
    said_not_ready: &mut bool,
    backoff: &mut HashMap<Uuid, Backoff>,
) -> Result<Duration> {
    let naptime = gucs::worker_naptime();
    let ready = runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            let v = crate::store::first_value::<String>(c.select(
                "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vibe_ft'",
                None,
                &[],
            )?)?;
            Ok(match v {
                None => Ready::NotInstalled,
                Some(v) if v != env!("CARGO_PKG_VERSION") => Ready::WrongVersion(v),
                Some(_) => Ready::Yes,
            })
        })
    })?;
    match ready {
        Ready::Yes => *said_not_ready = false,
        other => {
            if !*said_not_ready {
                match other {
                    Ready::NotInstalled => log!(
                        "vibe_ft worker: the extension is not installed in database \"{}\"; waiting (CREATE EXTENSION vibe_ft)",
                        gucs::database()
                    ),
                    Ready::WrongVersion(v) => log!(
                        "vibe_ft worker: the extension is at version {v}, the library is {}; waiting (ALTER EXTENSION vibe_ft UPDATE)",
                        env!("CARGO_PKG_VERSION")
                    ),
                    Ready::Yes => {}
                }
                *said_not_ready = true;
            }
            return Ok(naptime);
        }
    }
    if !gucs::enabled() {
        return Ok(naptime);
    }
    let due: Vec<Uuid> = runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            Ok(c.select(
                // The same rule as CALL vibe_ft.run_jobs: due, unfinished, this installation's.
                "SELECT d.id FROM unnest(vibe_ft.due_jobs('infinity', '{}')) WITH ORDINALITY AS d(id, n)
                  ORDER BY d.n LIMIT 50",
                None,
                &[],
            )?
            .filter_map(|r| r.get::<Uuid>(1).ok().flatten())
            .collect())
        })
    })?;
    let now = Instant::now();
    let ready: Vec<Uuid> = due
        .iter()
        .copied()
        .filter(|id| backoff.get(id).is_none_or(|b| b.until <= now))
        .collect();
    for id in &ready {
        if stopping() {
            return Ok(Duration::ZERO);
        }
        // Keep going while the job moves (pending → ... → submitted in one round).
        for _ in 0..8 {
            match runner::advance(*id, Mode::Worker) {
                Ok(after) => {
                    backoff.remove(id);
                    if !(is_waiting_on_us(&after.status) && after.due) {
                        break;
                    }
                }
                Err(_) if stopping() => return Ok(Duration::ZERO),
                Err(e) => {
                    // Not a provider failure (those are recorded by the runner):
                    // a database error. Record it, and leave the job alone for a
                    // while, doubling, so a broken job cannot become a busy loop.
                    let failures = backoff.get(id).map_or(0, |b| b.failures) + 1;
                    let wait = (gucs::retry_delay() * 2u32.pow(failures.min(7) - 1)).min(Duration::from_secs(3600));
                    backoff.insert(
                        *id,
                        Backoff {
                            until: Instant::now() + wait,
                            failures,
                        },
                    );
                    let msg = format!("job {id}: {e} (next try in {}s)", wait.as_secs());
                    log!("vibe_ft worker: {msg}");
                    note_error(&msg);
                    let _ = runner::tx(Mode::Worker, || runner::record_step_error(*id, &e.to_string()));
                    break;
                }
            }
        }
    }
    backoff.retain(|id, _| due.contains(id));
    if let Some(every) = gucs::worker_check_interval() {
        if last_check.is_none_or(|t| t.elapsed() >= every) {
            *last_check = Some(Instant::now());
            runner::tx(Mode::Worker, || crate::api::run_monthly_check_now().map(|_| ()))?;
        }
    }
    // Dedicated endpoints: how each is doing (an idle one is stopped by its
    // provider, and its model can no longer be called), at the polling cadence.
    // While one is starting or stopping, look again soon (and sleep no longer).
    let mut changing = false;
    if last_refresh.is_none_or(|t| t.elapsed() >= gucs::cadence().slow) {
        *last_refresh = Some(Instant::now());
        match crate::serving::refresh(Mode::Worker) {
            Ok(r) => {
                changing = r.changing;
                if changing {
                    *last_refresh = Some(Instant::now() - gucs::cadence().slow + gucs::cadence().fast);
                }
            }
            Err(e) => {
                let msg = format!("checking deployments: {e}");
                log!("vibe_ft worker: {msg}");
                note_error(&msg);
            }
        }
    }
    // Experiments: ramp, promote or roll back on the ratings so far.
    if let Some(every) = gucs::experiment_interval() {
        if last_evaluation.is_none_or(|t| t.elapsed() >= every) {
            *last_evaluation = Some(Instant::now());
            let evaluated = runner::tx(Mode::Worker, || Spi::connect_mut(|c| crate::experiments::evaluate_all(c)));
            match evaluated {
                Ok(rows) => {
                    for r in rows.iter().filter(|r| r.decision != "wait") {
                        log!("vibe_ft worker: experiment {} ({}): {}: {}", r.experiment_id, r.dataset_name, r.decision, r.reason);
                    }
                }
                Err(e) => {
                    let msg = format!("evaluating experiments: {e}");
                    log!("vibe_ft worker: {msg}");
                    note_error(&msg);
                }
            }
        }
    }
    let naptime = if changing { naptime.min(gucs::cadence().fast) } else { naptime };
    // Sleep until the next job is due, at most naptime.
    let next_in = runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            crate::store::first_value::<f64>(c.select(
                // NULL (not 0) when nothing is waiting: greatest() would turn NULL into 0.
                "SELECT extract(epoch FROM min(next_attempt_at) - clock_timestamp())::float8
                   FROM vibe_ft.jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')
                    AND installation_id = vibe_ft.installation_id()",
                None,
                &[],
            )?)
        })
    })?;
    let held_back = backoff
        .values()
        .map(|b| b.until.saturating_duration_since(Instant::now()))
        .min();
    Ok(match next_in {
        // Something is due now, but every due job is held back: sleep until the first may go.
        Some(s) if s < 0.05 && held_back.is_some() => held_back.unwrap_or(naptime).min(naptime),
        Some(s) if s.is_finite() => Duration::from_secs_f64(s.max(0.0))
            .min(naptime)
            .max(Duration::from_millis(50)),
        _ => naptime,
    })
}

/// Whether the worker has been asked to stop (SIGTERM: a fast or smart
/// shutdown). Read from Postgres' own flag, which stays set: pgrx's
/// `sigterm_received()` clears its flag when read, so a second look would
/// miss the request.
pub fn stopping() -> bool {
    // SAFETY: a sig_atomic_t the signal handler sets and nothing clears.
    unsafe { (&raw const pg_sys::ShutdownRequestPending).read_volatile() != 0 }
}

fn is_waiting_on_us(status: &str) -> bool {
    matches!(status, "pending" | "exporting" | "uploading" | "submitted")
}

fn note_error(message: &str) {
    let mut i = INFO.exclusive();
    let bytes = message.as_bytes();
    let mut n = bytes.len().min(ERROR_MAX);
    while !message.is_char_boundary(n) {
        n -= 1;
    }
    i.error[..n].copy_from_slice(&bytes[..n]);
    i.error_len = n;
    i.last_error_at = now();
}
