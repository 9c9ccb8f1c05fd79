//! The background worker (`shared_preload_libraries = 'vibe_ft'`).
//!
//! One worker serves the database named by `vibe_ft.database`. It sleeps on
//! its latch; a transaction that queues or changes a job sets that latch when
//! it commits (`wake_on_commit`), so work starts at once rather than at the
//! next poll. Each round it writes a heartbeat, advances every job that is
//! due, optionally runs the monthly check, and sleeps until the next job is
//! due or `vibe_ft.worker_naptime` passes. Every error becomes a recorded
//! failure (the job's events, the heartbeat's `last_error`), never a dead
//! worker. SIGHUP reloads settings; SIGTERM stops it between steps.

use crate::error::Result;
use crate::gucs;
use crate::runner::{self, Mode};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys, PgAtomic, Uuid};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

pub const NAME: &str = "vibe_ft worker";

/// The worker's `pgprocno`, so any backend can set its latch; -1 when none.
static WORKER_PROCNO: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"vibe_ft_worker_procno") };
/// Set in the postmaster when the shared memory above exists (preloaded).
static SHMEM_READY: AtomicBool = AtomicBool::new(false);

thread_local! {
    static WAKE_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Called from `_PG_init` while `shared_preload_libraries` loads.
pub fn register() {
    pg_shmem_init!(WORKER_PROCNO = AtomicI32::new(-1));
    SHMEM_READY.store(true, Ordering::Relaxed);
    BackgroundWorkerBuilder::new(NAME)
        .set_type(NAME)
        .set_library("vibe_ft")
        .set_function("vibe_ft_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
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
    unsafe {
        pg_sys::pgstat_report_appname(c"vibe_ft worker".as_ptr());
        WORKER_PROCNO.get().store((*pg_sys::MyProc).pgprocno, Ordering::Relaxed);
    }
    log!("vibe_ft worker started for database \"{database}\"");
    let started = Instant::now();
    let mut last_check: Option<Instant> = None;
    let mut said_not_ready = false;
    loop {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if BackgroundWorker::sigterm_received() {
            break;
        }
        let wait = match round(&mut last_check, started, &mut said_not_ready) {
            Ok(wait) => wait,
            Err(e) => {
                log!("vibe_ft worker: {e}");
                note_error(&e.to_string());
                gucs::worker_naptime()
            }
        };
        if !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
    }
    WORKER_PROCNO.get().store(-1, Ordering::Relaxed);
    log!("vibe_ft worker stopping");
}

enum Ready {
    Yes,
    NotInstalled,
    WrongVersion(String),
}

/// One round; returns how long to sleep.
fn round(last_check: &mut Option<Instant>, started: Instant, said_not_ready: &mut bool) -> Result<Duration> {
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
    heartbeat(started)?;
    if !gucs::enabled() {
        return Ok(naptime);
    }
    let due: Vec<Uuid> = runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            Ok(c.select(
                "SELECT id FROM vibe_ft.jobs
                  WHERE status NOT IN ('succeeded', 'failed', 'cancelled')
                    AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())
                  ORDER BY next_attempt_at NULLS FIRST, created_at
                  LIMIT 50",
                None,
                &[],
            )?
            .filter_map(|r| r.get::<Uuid>(1).ok().flatten())
            .collect())
        })
    })?;
    for id in &due {
        if BackgroundWorker::sigterm_received() {
            return Ok(Duration::ZERO);
        }
        // Keep going while the job moves (pending → ... → submitted in one round).
        for _ in 0..8 {
            match runner::advance(*id, Mode::Worker) {
                Ok(status) if is_waiting_on_us(&status) && still_due(*id)? => continue,
                Ok(_) => break,
                Err(e) => {
                    log!("vibe_ft worker: job {id}: {e}");
                    note_error(&format!("job {id}: {e}"));
                    break;
                }
            }
        }
    }
    if let Some(every) = gucs::worker_check_interval() {
        if last_check.is_none_or(|t| t.elapsed() >= every) {
            *last_check = Some(Instant::now());
            runner::tx(Mode::Worker, || crate::api::run_monthly_check_now().map(|_| ()))?;
        }
    }
    // Sleep until the next job is due, at most naptime.
    let next_in = runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            crate::store::first_value::<f64>(c.select(
                "SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - clock_timestamp()))::float8
                   FROM vibe_ft.jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')",
                None,
                &[],
            )?)
        })
    })?;
    Ok(match next_in {
        Some(s) if s.is_finite() => Duration::from_secs_f64(s).min(naptime).max(Duration::from_millis(50)),
        _ => naptime,
    })
}

fn is_waiting_on_us(status: &str) -> bool {
    matches!(status, "pending" | "exporting" | "uploading" | "submitted")
}

fn still_due(id: Uuid) -> Result<bool> {
    runner::tx(Mode::Worker, || {
        Spi::connect(|c| {
            Ok(crate::store::first_value::<bool>(c.select(
                "SELECT next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp() FROM vibe_ft.jobs WHERE id = $1",
                None,
                &[id.into()],
            )?)?
            .unwrap_or(false))
        })
    })
}

fn heartbeat(started: Instant) -> Result<()> {
    let pid = unsafe { pg_sys::MyProcPid };
    let up = started.elapsed().as_secs_f64();
    runner::tx(Mode::Worker, || {
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO vibe_ft.worker_heartbeat AS w (pid, started_at, heartbeat_at)
                 VALUES ($1, clock_timestamp() - make_interval(secs => $2), clock_timestamp())
                 ON CONFLICT (singleton) DO UPDATE
                    SET pid = EXCLUDED.pid, heartbeat_at = EXCLUDED.heartbeat_at,
                        started_at = CASE WHEN w.pid = EXCLUDED.pid THEN w.started_at ELSE EXCLUDED.started_at END",
                None,
                &[pid.into(), up.into()],
            )?;
            Ok(())
        })
    })
}

fn note_error(message: &str) {
    let _ = runner::tx(Mode::Worker, || {
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE vibe_ft.worker_heartbeat SET last_error = $1, last_error_at = clock_timestamp()",
                None,
                &[message.into()],
            )?;
            Ok(())
        })
    });
}
