//! The job runner: moves one job one step along its state machine (see
//! `core::runner` for the steps and the decisions), used by the background
//! worker and by the SQL functions alike.
//!
//! Each step reads what it needs in a short transaction, talks to the
//! provider with no transaction open (in the worker; from SQL, inside the
//! caller's transaction but before it has written anything, so no row locks
//! are held during HTTP calls), and records the result in another short
//! transaction. One job is advanced by one process at a time: an advisory
//! lock on the job (session-level in the worker, transaction-level from SQL).
//!
//! Crash safety comes from the order of writes: a step records its intent
//! (`submitted` before a create request) and every step is repeatable: files are
//! found again by name, provider jobs by our id in their metadata.

use crate::core::check::{self, Checker, Rules};
use crate::core::provider::{self, Endpoint, Flavor, JobTag, Provider, ProviderError, JOB_ID_METADATA_KEY};
use crate::core::runner::{self as plan, JobState, Outcome, Step};
use crate::core::split::Split;
use crate::core::status::JobStatus;
use crate::core::tokens::Encoding;
use crate::error::{Result, VibeError};
use crate::store::{self, Event};
use crate::{gucs, keys};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{pg_sys, AnyNumeric, JsonB, Uuid};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Who is running the step, which decides how transactions and locks work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inside a SQL function: the caller's transaction; a transaction-level lock.
    Sql,
    /// The background worker: a transaction per read or write; a session lock.
    Worker,
}

/// First key of every vibe_ft advisory lock ("vft\0"); the second is from the job id.
const LOCK_CLASS: i32 = 0x7666_7400;

fn lock_key(job_id: Uuid) -> i32 {
    let b = job_id.as_bytes();
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Run `f` in a transaction. From SQL that is the caller's; in the worker a new
/// one, committed when `f` succeeds and rolled back when it fails or raises.
/// An error at commit (a deferred constraint, a serialization failure) is an
/// error like any other: the transaction is rolled back and the error returned,
/// never a dead worker.
pub fn tx<R>(mode: Mode, f: impl FnOnce() -> Result<R>) -> Result<R> {
    if mode == Mode::Sql {
        return f();
    }
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        // The runner reads what committed while it waited for a lock (see
        // export_step), whatever default_transaction_isolation says.
        pg_sys::XactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        let r = f()?;
        unsafe {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        }
        Ok(r)
    }))
    .catch_others(|e| {
        let msg = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
        };
        Err(VibeError::Internal(msg))
    })
    .execute();
    if result.is_err() {
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    result
}

/// The provider client for a step: every call runs on a helper thread (see
/// `core::provider::interruptible`), so a worker asked to stop, or a query
/// that is cancelled, stops waiting at once rather than after a large upload
/// or a retry sleep.
pub(crate) fn client(mode: Mode, ep: Endpoint) -> provider::interruptible::Interruptible {
    let inner = provider::client(ep);
    match mode {
        Mode::Worker => provider::interruptible::Interruptible::new(inner, crate::worker::stopping),
        // Raises the cancel (or terminate) error here when one is pending.
        Mode::Sql => provider::interruptible::Interruptible::new(inner, || {
            pg_sys::check_for_interrupts!();
            false
        }),
    }
}

/// Wait for any step in progress on a job and keep others off it until the
/// current transaction ends (the runner's own lock, in its transaction form).
pub fn lock_job(job_id: Uuid) -> Result<()> {
    Spi::connect(|c| {
        c.select(
            "SELECT pg_advisory_xact_lock($1, $2)",
            None,
            &[LOCK_CLASS.into(), lock_key(job_id).into()],
        )?;
        Ok(())
    })
}

/// Exports hold this lock shared; `vibe_ft.forget_user` takes it exclusively,
/// so no export can write rows that an erasure deletes (see `forget_user`).
const ERASURE_LOCK: (i32, i32) = (1_986_426_113, 2);

/// A job as the runner sees it.
struct Job {
    id: Uuid,
    status: JobStatus,
    provider: String,
    base_model: String,
    method: String,
    hyperparameters: serde_json::Value,
    suffix: Option<String>,
    seed: Option<i64>,
    dataset_id: Uuid,
    min_quality: Option<AnyNumeric>,
    validation_examples: i32,
    training_file_id: Option<String>,
    validation_file_id: Option<String>,
    provider_job_id: Option<String>,
    event_cursor: Option<String>,
    attempts: i32,
    /// Made by this installation (not a restored copy of another's).
    ours: bool,
    export_round: u32,
}

impl Job {
    fn state(&self) -> JobState {
        JobState {
            status: self.status,
            has_validation_split: self.validation_examples > 0,
            training_file: self.training_file_id.is_some(),
            validation_file: self.validation_file_id.is_some(),
            provider_job: self.provider_job_id.is_some(),
        }
    }
    /// What finds this job's provider job again.
    fn tag(&self) -> JobTag {
        JobTag {
            job_id: self.id.to_string(),
            training_file: self.training_file_id.clone(),
            suffix: self.suffix.clone(),
        }
    }
    /// The create request, as the provider would get it.
    fn new_job(&self) -> provider::NewJob {
        let mut metadata = BTreeMap::new();
        metadata.insert(JOB_ID_METADATA_KEY.to_string(), self.id.to_string());
        metadata.insert("vibe_ft_dataset_id".to_string(), self.dataset_id.to_string());
        provider::NewJob {
            model: self.base_model.clone(),
            training_file: self.training_file_id.clone().unwrap_or_default(),
            validation_file: self.validation_file_id.clone(),
            suffix: self.suffix.clone(),
            seed: self.seed,
            method: self.method.clone(),
            hyperparameters: self.hyperparameters.clone(),
            metadata,
        }
    }
    fn file_id(&self, split: Split) -> Option<&str> {
        match split {
            Split::Train => self.training_file_id.as_deref(),
            Split::Validation => self.validation_file_id.as_deref(),
        }
    }
}

fn load(c: &SpiClient<'_>, id: Uuid) -> Result<Job> {
    let t = c.select(
        "SELECT status, provider, base_model, method, hyperparameters, suffix, seed, dataset_id,
                min_quality_score, coalesce(validation_examples, 0), training_file_id, validation_file_id,
                provider_job_id, provider_event_cursor, attempts,
                installation_id IS NOT DISTINCT FROM vibe_ft.installation_id(), export_round
           FROM vibe_ft.jobs WHERE id = $1",
        None,
        &[id.into()],
    )?;
    if t.is_empty() {
        return Err(VibeError::NotFound(format!("job {id} does not exist (p_job_id)")));
    }
    let r = t.first();
    let status: String = r.get(1)?.unwrap_or_default();
    Ok(Job {
        id,
        status: JobStatus::parse(&status)
            .ok_or_else(|| VibeError::Internal(format!("job {id} has an unknown status {status}")))?,
        provider: r.get(2)?.unwrap_or_default(),
        base_model: r.get(3)?.unwrap_or_default(),
        method: r.get(4)?.unwrap_or_else(|| "supervised".into()),
        hyperparameters: r.get::<JsonB>(5)?.map(|j| j.0).unwrap_or_else(|| serde_json::json!({})),
        suffix: r.get(6)?,
        seed: r.get(7)?,
        dataset_id: r
            .get(8)?
            .ok_or_else(|| VibeError::Internal("job without dataset".into()))?,
        min_quality: r.get(9)?,
        validation_examples: r.get(10)?.unwrap_or(0),
        training_file_id: r.get(11)?,
        validation_file_id: r.get(12)?,
        provider_job_id: r.get(13)?,
        event_cursor: r.get(14)?,
        attempts: r.get(15)?.unwrap_or(0),
        ours: r.get(16)?.unwrap_or(false),
        export_round: r.get::<i32>(17)?.unwrap_or(0).max(0) as u32,
    })
}

fn event(c: &mut SpiClient<'_>, job: Uuid, kind: &str, message: &str, data: Option<serde_json::Value>) -> Result<()> {
    let e = Event {
        kind,
        from_status: None,
        to_status: None,
        message: Some(message),
        data: data.map(JsonB),
    };
    store::record_event(c, job, e, gucs::job_events_per_job())
}

/// Record an error a step raised (not a provider's answer: a local failure
/// such as an unwritable work_dir, a full disk, a database error) after the
/// step was rolled back, and leave the job alone for a while, doubling from
/// `vibe_ft.retry_delay` to an hour, as for a transient provider failure: a
/// broken job must not become a busy loop, nor hold up the others. Returns
/// the wait.
pub fn record_step_error(job: Uuid, message: &str) -> Result<Duration> {
    Spi::connect_mut(|c| {
        let Some(attempts) = store::first_value::<i32>(c.update(
            "UPDATE vibe_ft.jobs SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
            None,
            &[job.into()],
        )?)?
        else {
            // The job was deleted meanwhile: nothing to record, nothing to wait for.
            return Ok(Duration::ZERO);
        };
        let local = ProviderError::local(provider::retry::Disposition::Retry, "step_failed", message);
        let wait = match plan::on_failure(&local, attempts.max(1) as u32 - 1, gucs::retry_delay()) {
            Outcome::RetryAfter(d) | Outcome::Defer(d) => d,
            Outcome::Fail { .. } => gucs::retry_delay(),
        };
        c.update(
            "UPDATE vibe_ft.jobs SET next_attempt_at = clock_timestamp() + make_interval(secs => $2) WHERE id = $1",
            None,
            &[job.into(), wait.as_secs_f64().into()],
        )?;
        let msg = format!("step failed: {message} (next try in {}s)", wait.as_secs());
        event(c, job, "error", &msg, Some(serde_json::json!({"code": "step_failed"})))?;
        Ok(wait)
    })
}

fn error_data(e: &ProviderError) -> serde_json::Value {
    serde_json::json!({
        "code": e.code, "http_status": e.http_status, "request_id": e.request_id,
        "disposition": format!("{:?}", e.disposition).to_lowercase(),
    })
}

/// A job after one step.
pub struct Advanced {
    /// Its status, or `busy` when another process is advancing it right now.
    pub status: String,
    /// Whether its next step may run at once (no wait set by a retry or a poll).
    pub due: bool,
}

/// Advance a job by one step.
pub fn advance(job_id: Uuid, mode: Mode) -> Result<Advanced> {
    let key = lock_key(job_id);
    let locked = tx(mode, || {
        let sql = match mode {
            Mode::Sql => "SELECT pg_try_advisory_xact_lock($1, $2)",
            Mode::Worker => "SELECT pg_try_advisory_lock($1, $2)",
        };
        Spi::connect(|c| store::first_value::<bool>(c.select(sql, None, &[LOCK_CLASS.into(), key.into()])?))
    })?
    .unwrap_or(false);
    if !locked {
        return Ok(Advanced {
            status: "busy".into(),
            due: false,
        });
    }
    let result = step(job_id, mode);
    if mode == Mode::Worker {
        let unlocked = tx(mode, || {
            Spi::connect(|c| {
                c.select(
                    "SELECT pg_advisory_unlock($1, $2)",
                    None,
                    &[LOCK_CLASS.into(), key.into()],
                )?;
                Ok(())
            })
        });
        if let Err(e) = unlocked {
            // The lock goes when the worker does; say so rather than hide it.
            pgrx::warning!("vibe_ft: could not release the lock of job {job_id}: {e}");
        }
    }
    result
}

fn step(job_id: Uuid, mode: Mode) -> Result<Advanced> {
    let job = tx(mode, || Spi::connect(|c| load(c, job_id)))?;
    let next = plan::next_step(&job.state());
    if !job.ours && next != Step::Done {
        return Err(foreign(job_id));
    }
    match next {
        Step::Done => {
            return Ok(Advanced {
                status: job.status.as_str().into(),
                due: false,
            })
        }
        Step::Claim => move_on(mode, job_id, JobStatus::Pending, JobStatus::Exporting)?,
        Step::Export => {
            tx(mode, || export_step(&job))?;
            if job.export_round > 0 {
                clean_up_after_local_failure(mode, job_id)?;
            }
        }
        Step::Upload(split) => upload(mode, &job, split)?,
        Step::MarkSubmitted => {
            move_on(mode, job_id, JobStatus::Uploading, JobStatus::Submitted)?;
            remove_local_files(job_id);
        }
        Step::Submit => submit(mode, &job)?,
        Step::Poll => poll(mode, &job)?,
    }
    tx(mode, || {
        Spi::connect(|c| {
            let t = c.select(
                "SELECT status, next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp()
                   FROM vibe_ft.jobs WHERE id = $1",
                None,
                &[job_id.into()],
            )?;
            if t.is_empty() {
                return Err(VibeError::NotFound(format!("job {job_id} does not exist (p_job_id)")));
            }
            let (status, due) = t.first().get_two::<String, bool>()?;
            Ok(Advanced {
                status: status.unwrap_or_default(),
                due: due.unwrap_or(false),
            })
        })
    })
}

/// A job another installation created (this database is a restored copy).
fn foreign(job: Uuid) -> VibeError {
    VibeError::State(format!(
        "job {job} was created by another installation of vibe_ft (this database was restored from a copy): \
         it is left alone here; SELECT vibe_ft.adopt_jobs('{job}') to run it from this one"
    ))
}

/// Move a job from `from` to `to` (nothing if it is no longer in `from`) and
/// make it due at once.
fn move_on(mode: Mode, job: Uuid, from: JobStatus, to: JobStatus) -> Result<()> {
    tx(mode, || {
        Spi::connect_mut(|c| {
            c.update(
                "UPDATE vibe_ft.jobs SET status = $3, attempts = 0, next_attempt_at = NULL
                  WHERE id = $1 AND status = $2",
                None,
                &[job.into(), from.as_str().into(), to.as_str().into()],
            )?;
            Ok(())
        })
    })
}

/// The provider endpoint for a job, or `None` after recording why there is none
/// (no key, no URL: the job waits, retried with backoff, until configured).
fn endpoint_or_wait(mode: Mode, job: &Job) -> Result<Option<Endpoint>> {
    let found = tx(mode, || Spi::connect(|c| keys::endpoint(c, &job.provider)));
    match found {
        Ok(ep) => Ok(Some(ep)),
        Err(e @ VibeError::Unsupported { .. }) => {
            let msg = match &e {
                VibeError::Unsupported { message, hint } => format!("{message}. {hint}"),
                _ => e.to_string(),
            };
            if mode == Mode::Sql {
                pgrx::warning!("vibe_ft: job {}: {msg}", job.id);
            }
            let wait = plan::on_failure(
                &ProviderError::local(provider::retry::Disposition::Retry, "not_configured", msg.clone()),
                job.attempts as u32,
                gucs::retry_delay(),
            );
            record_failure(mode, job, "configure", &msg, None, wait)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Fail a job before it reaches the provider (bad data, unsupported method).
fn fail_locally(c: &mut SpiClient<'_>, job: Uuid, code: &str, message: &str) -> Result<()> {
    c.update(
        "UPDATE vibe_ft.jobs SET status = 'failed', error_code = $2, error_message = $3, next_attempt_at = NULL
          WHERE id = $1",
        None,
        &[job.into(), code.into(), message.into()],
    )?;
    event(c, job, "error", message, Some(serde_json::json!({ "code": code })))
}

// ---------------------------------------------------------------------------
// exporting: snapshot again and write the files
// ---------------------------------------------------------------------------

fn work_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(gucs::work_dir());
    std::fs::create_dir_all(&dir)
        .map_err(|e| VibeError::Internal(format!("cannot create vibe_ft.work_dir {}: {e}", dir.display())))?;
    Ok(dir)
}

fn local_file(job: Uuid, split: Split) -> Result<PathBuf> {
    Ok(work_dir()?.join(format!("{job}-{}.jsonl", split.as_str())))
}

pub fn remove_local_files(job: Uuid) {
    for split in [Split::Train, Split::Validation] {
        if let Ok(p) = local_file(job, split) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The export, under the erasure lock (shared): an erasure in flight commits
/// first, and what it deleted is not read, because the data is read with a
/// snapshot taken after the lock (which needs READ COMMITTED).
fn export_step(job: &Job) -> Result<()> {
    Spi::connect(|c| -> Result<()> {
        let iso = store::first_value::<String>(c.select("SELECT current_setting('transaction_isolation')", None, &[])?)?;
        if iso.as_deref() != Some("read committed") {
            return Err(VibeError::WrongIsolation(
                "exporting a job needs READ COMMITTED (it must read what committed while it waited)".into(),
            ));
        }
        c.select(
            "SELECT pg_advisory_xact_lock_shared($1, $2)",
            None,
            &[ERASURE_LOCK.0.into(), ERASURE_LOCK.1.into()],
        )?;
        Ok(())
    })?;
    // SAFETY: a snapshot pushed and popped around our own reads; should they
    // raise, the (sub)transaction's abort pops it.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let result = Spi::connect_mut(|c| export(c, job));
    unsafe { pg_sys::PopActiveSnapshot() };
    result
}

fn export(c: &mut SpiClient<'_>, job: &Job) -> Result<()> {
    let Some(flavor) = Flavor::parse(&job.provider) else {
        return fail_locally(
            c,
            job.id,
            "unsupported_provider",
            &format!("no provider module for '{}'", job.provider),
        );
    };
    let Some(data) = store::Data::for_method(&job.method) else {
        return fail_locally(
            c,
            job.id,
            "unsupported_method",
            &format!("no export for method '{}' (supervised or dpo)", job.method),
        );
    };
    if let Some(s) = &job.suffix {
        if let Err(m) = flavor.check_suffix(s) {
            return fail_locally(c, job.id, "invalid_suffix", &m);
        }
    }
    if let Err((code, m)) = provider::check_job(flavor, &job.new_job()) {
        return fail_locally(c, job.id, code, &m);
    }
    let retired = store::first_value::<String>(c.select(
        "SELECT format('%s (%s) takes no fine-tuning jobs since %s: %s', $2, $1,
                       to_char(l.training_ends AT TIME ZONE 'UTC', 'YYYY-MM-DD'), coalesce(l.note, 'vibe_ft.model_lifecycle'))
           FROM vibe_ft.model_lifecycle_of($1, $2) l WHERE l.training_ends <= now()",
        None,
        &[job.provider.as_str().into(), job.base_model.as_str().into()],
    )?)?;
    if let Some(m) = retired {
        return fail_locally(c, job.id, "model_retired", &m);
    }
    // The snapshot again, now: what is exported is what the job records.
    let min_quality = job.min_quality.clone().unwrap_or_else(|| AnyNumeric::from(0));
    let t = c.update(
        &format!(
            "UPDATE vibe_ft.jobs j SET
                train_examples = s.train, validation_examples = s.validation,
                avg_train_quality = s.avg_train, avg_validation_quality = s.avg_validation,
                last_example_id = s.last_id
           FROM (SELECT count(*) FILTER (WHERE e.split = 'train' AND e.quality_score >= $3)::int AS train,
                        count(*) FILTER (WHERE e.split = 'validation' AND e.quality_score >= $3)::int AS validation,
                        round(avg(e.quality_score) FILTER (WHERE e.split = 'train' AND e.quality_score >= $3), 2) AS avg_train,
                        round(avg(e.quality_score) FILTER (WHERE e.split = 'validation' AND e.quality_score >= $3), 2) AS avg_validation,
                        coalesce(max(e.id), 0) AS last_id
                   FROM {} e WHERE e.dataset_id = $2) s
          WHERE j.id = $1
         RETURNING j.train_examples, j.validation_examples, j.last_example_id",
            data.table()
        ),
        None,
        &[job.id.into(), job.dataset_id.into(), min_quality.clone().into()],
    )?;
    let (train, validation, last_id) = t.first().get_three::<i32, i32, i64>()?;
    let (train, validation, last_id) = (train.unwrap_or(0), validation.unwrap_or(0), last_id.unwrap_or(0));
    if (train as i64) < plan::MIN_TRAINING_EXAMPLES {
        return fail_locally(
            c,
            job.id,
            "invalid_n_examples",
            &format!(
                "the training split has {train} example(s) with quality >= {min_quality}; providers need at least {}",
                plan::MIN_TRAINING_EXAMPLES
            ),
        );
    }
    // Write the files, checking every line as it is written: what is checked
    // is exactly what would be uploaded and paid for.
    let encoding = Encoding::for_model(&job.base_model);
    let exact = Encoding::exact_for(&job.base_model);
    let mut written = Vec::new();
    let mut reports = Vec::new();
    for (split, n) in [(Split::Train, train), (Split::Validation, validation)] {
        if n > 0 {
            let mut checker = Checker::new(encoding, data.format()).with_rules(Rules::for_provider(&job.provider));
            written.push(write_split(job, data, split, &min_quality, last_id, &mut checker)?);
            reports.push((split, checker.finish()));
        }
    }
    let report_json = serde_json::Value::Object(
        reports
            .iter()
            .map(|(split, r)| (split.as_str().to_string(), r.to_json(encoding, exact)))
            .collect(),
    );
    if let Some((split, bad)) = reports.iter().find(|(_, r)| !r.is_valid()) {
        remove_local_files(job.id);
        let what = format!("{} file failed validation", split.as_str());
        fail_locally(c, job.id, "invalid_training_data", &bad.summary(&what))?;
        return event(c, job.id, "note", "validation report (nothing was uploaded)", Some(report_json));
    }
    let tokens = |s: Split| reports.iter().find(|r| r.0 == s).map(|r| r.1.billable_tokens as i64);
    let (train_tokens, validation_tokens) = (tokens(Split::Train).unwrap_or(0), tokens(Split::Validation));
    let epochs = check::epochs(&job.hyperparameters, train as u64) as i64;
    c.update(
        "UPDATE vibe_ft.jobs SET status = 'uploading', attempts = 0, next_attempt_at = NULL,
                training_tokens = $2, validation_tokens = $3,
                estimated_cost_usd = round($2::numeric * $4 * vibe_ft.training_price(provider, base_model) / 1000000, 2),
                estimated_cost_source = 'prices table'
          WHERE id = $1",
        None,
        &[job.id.into(), train_tokens.into(), validation_tokens.into(), epochs.into()],
    )?;
    let bytes: u64 = written.iter().map(|w| w.1).sum();
    event(
        c,
        job.id,
        "note",
        &format!(
            "exported and checked {train} training and {validation} validation examples ({bytes} bytes, {}{train_tokens} training tokens)",
            if exact { "" } else { "an estimated " }
        ),
        Some(serde_json::json!({
            "train": train, "validation": validation, "bytes": bytes, "last_example_id": last_id,
            "epochs": epochs, "validation_report": report_json,
        })),
    )
}

/// Write one split's JSONL to the work directory (via a temporary name, so a
/// file that exists is complete), feeding each line to `checker`.
/// Returns its path and size.
fn write_split(
    job: &Job,
    data: store::Data,
    split: Split,
    min_quality: &AnyNumeric,
    last_id: i64,
    checker: &mut Checker,
) -> Result<(PathBuf, u64)> {
    let path = local_file(job.id, split)?;
    let tmp = path.with_extension("jsonl.partial");
    let io = |e: std::io::Error| VibeError::Internal(format!("writing {}: {e}", tmp.display()));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    let mut bytes = 0u64;
    store::for_each_line(data, job.dataset_id, split, min_quality, last_id, |id, line| {
        checker.line(id, line);
        out.write_all(line).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        bytes += line.len() as u64 + 1;
        Ok(())
    })?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok((path, bytes))
}

// ---------------------------------------------------------------------------
// uploading: one split's file; a lost upload is found again by its name
// ---------------------------------------------------------------------------

fn upload(mode: Mode, job: &Job, split: Split) -> Result<()> {
    let path = local_file(job.id, split)?;
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(_) => {
            // The file is gone (a restore, a new disk, a crash before the rename):
            // export again, under new names, so no upload of the old file is reused.
            return tx(mode, || {
                Spi::connect_mut(|c| {
                    c.update(
                        "UPDATE vibe_ft.jobs SET status = 'exporting', training_file_id = NULL, validation_file_id = NULL,
                                export_round = export_round + 1, attempts = 0, next_attempt_at = NULL
                          WHERE id = $1 AND status = 'uploading'",
                        None,
                        &[job.id.into()],
                    )?;
                    event(c, job.id, "note", &format!("{} is gone: exporting again", path.display()), None)
                })
            });
        }
    };
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let name = plan::provider_filename(&job.id.to_string(), split, job.export_round);
    let attempt = (|| -> provider::Result<(provider::FileObject, &'static str, Vec<String>)> {
        let mut deleted = Vec::new();
        // Uploads of earlier exports of this job (its data changed since) go first.
        for round in 0..job.export_round {
            for f in p.find_files(&plan::provider_filename(&job.id.to_string(), split, round))? {
                p.delete_file(&f.id)?;
                deleted.push(f.id);
            }
        }
        let found = p.find_files(&name)?;
        let mut keep = None;
        for f in found {
            if keep.is_none() && f.bytes == Some(size) && f.status.as_deref() != Some("error") {
                keep = Some(f);
            } else {
                p.delete_file(&f.id)?;
                deleted.push(f.id);
            }
        }
        match keep {
            Some(f) => Ok((f, "reused", deleted)),
            None => Ok((p.upload_file(&path, &name)?, "uploaded", deleted)),
        }
    })();
    match attempt {
        Ok((file, how, deleted)) => {
            let recorded = tx(mode, || {
                Spi::connect_mut(|c| {
                    let sql = match split {
                        Split::Train => {
                            "UPDATE vibe_ft.jobs SET training_file_id = $2, attempts = 0, next_attempt_at = NULL
                                          WHERE id = $1 AND status = 'uploading' RETURNING 1"
                        }
                        Split::Validation => {
                            "UPDATE vibe_ft.jobs SET validation_file_id = $2, attempts = 0, next_attempt_at = NULL
                                               WHERE id = $1 AND status = 'uploading' RETURNING 1"
                        }
                    };
                    let t = c.update(sql, None, &[job.id.into(), file.id.as_str().into()])?;
                    if t.is_empty() {
                        return Ok(false);
                    }
                    let mut msg = format!("{how} {} file {} ({size} bytes)", split.as_str(), file.id);
                    if !deleted.is_empty() {
                        msg.push_str(&format!(
                            "; deleted incomplete or duplicate uploads {}",
                            deleted.join(", ")
                        ));
                    }
                    event(
                        c,
                        job.id,
                        "note",
                        &msg,
                        Some(serde_json::json!({ "file_id": file.id, "bytes": size })),
                    )?;
                    Ok(true)
                })
            })?;
            if !recorded {
                // Cancelled while we uploaded: do not leave the file behind.
                let _ = p.delete_file(&file.id);
            }
            Ok(())
        }
        Err(e) => {
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            record_failure(
                mode,
                job,
                &format!("upload {}", split.as_str()),
                &e.message,
                Some(&e),
                outcome.clone(),
            )?;
            if matches!(outcome, Outcome::Fail { .. }) {
                delete_uploaded(mode, job, &p);
            }
            Ok(())
        }
    }
}

/// Record a failed step: wait and retry, defer, or fail the job.
fn record_failure(
    mode: Mode,
    job: &Job,
    what: &str,
    message: &str,
    e: Option<&ProviderError>,
    outcome: Outcome,
) -> Result<()> {
    if e.and_then(|e| e.code.as_deref()) == Some(provider::interruptible::INTERRUPTED) {
        // Not the provider's doing: the worker is stopping. The step runs again later.
        return Ok(());
    }
    let data = e.map(error_data).unwrap_or_else(|| serde_json::json!({}));
    tx(mode, || {
        Spi::connect_mut(|c| match &outcome {
            Outcome::RetryAfter(d) | Outcome::Defer(d) => {
                c.update(
                    "UPDATE vibe_ft.jobs SET attempts = attempts + 1,
                                next_attempt_at = clock_timestamp() + make_interval(secs => $2)
                          WHERE id = $1",
                    None,
                    &[job.id.into(), d.as_secs_f64().into()],
                )?;
                let verb = if matches!(outcome, Outcome::Defer(_)) {
                    "deferred"
                } else {
                    "will retry"
                };
                let msg = format!("{what}: {message} ({verb} in {}s)", d.as_secs());
                event(c, job.id, "error", &msg, Some(data.clone()))
            }
            Outcome::Fail { code, message } => {
                fail_locally(c, job.id, code, &format!("{what}: {message}"))?;
                Ok(())
            }
        })
    })
}

/// A job that exported again (an erasure) and then failed before reaching the
/// provider still has uploads of its earlier exports there: delete them (best
/// effort; without a key or URL they stay, and the events say so).
fn clean_up_after_local_failure(mode: Mode, job_id: Uuid) -> Result<()> {
    let job = tx(mode, || Spi::connect(|c| load(c, job_id)))?;
    if job.status != JobStatus::Failed {
        return Ok(());
    }
    let notes = match tx(mode, || Spi::connect(|c| keys::endpoint(c, &job.provider))) {
        Ok(ep) => sweep_files(&client(mode, ep), &job),
        Err(e) => vec![format!("could not delete uploads of earlier exports: {e}")],
    };
    tx(mode, || {
        Spi::connect_mut(|c| {
            for note in &notes {
                event(c, job_id, "note", note, None)?;
            }
            Ok(())
        })
    })
}

/// Best effort: delete a job's uploaded files (a job that failed or was
/// cancelled before the provider had a job for them).
fn delete_uploaded(mode: Mode, job: &Job, p: &dyn Provider) {
    let Ok(current) = tx(mode, || Spi::connect(|c| load(c, job.id))) else {
        return;
    };
    if current.provider_job_id.is_some() {
        return;
    }
    for split in [Split::Train, Split::Validation] {
        if let Some(id) = current.file_id(split) {
            let result = p.delete_file(id);
            let msg = match &result {
                Ok(()) => format!("deleted uploaded {} file {id}", split.as_str()),
                Err(e) => format!("could not delete uploaded {} file {id}: {e}", split.as_str()),
            };
            let _ = tx(mode, || Spi::connect_mut(|c| event(c, job.id, "note", &msg, None)));
        }
    }
    remove_local_files(job.id);
}

// ---------------------------------------------------------------------------
// submitted: adopt the job our id tags, or create it
// ---------------------------------------------------------------------------

fn submit(mode: Mode, job: &Job) -> Result<()> {
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let found = match p.find_jobs(&job.tag()) {
        Ok(found) => found,
        Err(mut e) => {
            // We cannot know whether an earlier create went through: never fail here.
            e.disposition = provider::retry::Disposition::Retry;
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            return record_failure(mode, job, "look up provider job", &e.message.clone(), Some(&e), outcome);
        }
    };
    // Adopt a provider job of ours made from these files (a create whose answer
    // was lost). One made from files of an earlier export (before an erasure)
    // is not ours to train: a new one is created, and the poll cancels that
    // one as a duplicate.
    let made_from_these = |pj: &provider::Job| {
        pj.training_file.is_none() || pj.training_file.as_deref() == job.training_file_id.as_deref()
    };
    let (pj, how) = match found.into_iter().find(made_from_these) {
        Some(existing) => {
            let how = if existing.tagged.is_some() {
                "adopted provider job found by its metadata"
            } else {
                "adopted provider job found by its training file"
            };
            (existing, how)
        }
        None => {
            let new = job.new_job();
            if !price_allows(mode, job, &p, &new)? {
                return Ok(());
            }
            match p.create_job(&new) {
                Ok(created) => (created, "created provider job"),
                Err(e) => {
                    let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
                    record_failure(mode, job, "create job", &e.message, Some(&e), outcome.clone())?;
                    if matches!(outcome, Outcome::Fail { .. }) {
                        delete_uploaded(mode, job, &p);
                    }
                    return Ok(());
                }
            }
        }
    };
    let mapped = pj.state;
    // A job found already finished is finished by the next poll, which records its results.
    let status = if mapped.is_final() {
        JobStatus::Submitted
    } else {
        mapped
    };
    let delay = if mapped.is_final() {
        Duration::ZERO
    } else {
        plan::poll_delay(mapped, gucs::cadence(), None)
    };
    let linked = tx(mode, || {
        Spi::connect_mut(|c| {
            let t = c.update(
                "UPDATE vibe_ft.jobs SET provider_job_id = $2, provider_status = $3, status = $4, attempts = 0,
                        next_attempt_at = clock_timestamp() + make_interval(secs => $5)
                  WHERE id = $1 AND status = 'submitted' AND provider_job_id IS NULL RETURNING 1",
                None,
                &[
                    job.id.into(),
                    pj.id.as_str().into(),
                    pj.status.as_str().into(),
                    status.as_str().into(),
                    delay.as_secs_f64().into(),
                ],
            )?;
            if t.is_empty() {
                return Ok(false);
            }
            event(
                c,
                job.id,
                "provider",
                &format!("{how} {}", pj.id),
                Some(serde_json::json!({ "provider_job_id": pj.id, "status": pj.status })),
            )?;
            Ok(true)
        })
    })?;
    if !linked {
        // Cancelled while we created it: cancel it at the provider too.
        let r = p.cancel_job(&pj.id);
        let msg = match r {
            Ok(_) => format!(
                "cancelled provider job {} created while the job was being cancelled",
                pj.id
            ),
            Err(e) => format!("could not cancel provider job {}: {e}", pj.id),
        };
        tx(mode, || Spi::connect_mut(|c| event(c, job.id, "error", &msg, None)))?;
    }
    Ok(())
}

/// Before creating a job at a provider with an estimate API (Together): its
/// price, recorded as the job's estimate. The job fails, with its uploads
/// deleted, when the provider would refuse it (over the account's limit) or
/// when it would take the dataset over its monthly budget. `false`: do not
/// create. A failed estimate is not a reason to stop: the prices table's
/// estimate stands.
fn price_allows(mode: Mode, job: &Job, p: &dyn Provider, new: &provider::NewJob) -> Result<bool> {
    let estimate = match p.estimate(new) {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(true),
        Err(e) if e.code.as_deref() == Some(provider::interruptible::INTERRUPTED) => return Ok(false),
        // The file is still being processed (or the provider rejected it): the
        // step runs again, or the job fails, as a create would.
        Err(e) if matches!(e.code.as_deref(), Some("file_processing") | Some("invalid_training_file")) => {
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            record_failure(mode, job, "price estimate", &e.message, Some(&e), outcome.clone())?;
            if matches!(outcome, Outcome::Fail { .. }) {
                delete_uploaded(mode, job, p);
            }
            return Ok(false);
        }
        Err(e) => {
            let msg = format!("the provider's price estimate failed ({e}); the prices table's estimate stands");
            tx(mode, || Spi::connect_mut(|c| event(c, job.id, "note", &msg, None)))?;
            return Ok(true);
        }
    };
    let source = format!("{} estimate", p.flavor().name());
    let refusal = tx(mode, || {
        Spi::connect_mut(|c| {
            let t = c.update(
                "UPDATE vibe_ft.jobs j SET estimated_cost_usd = round($2::numeric, 4), estimated_cost_source = $3
                  WHERE j.id = $1
                 RETURNING (SELECT d.monthly_budget_usd::float8 FROM vibe_ft.datasets d WHERE d.id = j.dataset_id),
                           (SELECT coalesce(sum(CASE
                                WHEN o.cost_usd IS NOT NULL THEN o.cost_usd
                                WHEN o.trained_tokens IS NOT NULL THEN
                                     o.trained_tokens * vibe_ft.training_price(o.provider, o.base_model) / 1000000
                                WHEN o.status IN ('failed', 'cancelled') THEN 0
                                ELSE o.estimated_cost_usd END), 0)::float8
                              FROM vibe_ft.jobs o
                             WHERE o.dataset_id = j.dataset_id AND o.id <> j.id
                               AND o.created_at >= date_trunc('month', now()))",
                None,
                &[job.id.into(), estimate.total_usd.into(), source.as_str().into()],
            )?;
            let (budget, spent) = t.first().get_two::<f64, f64>()?;
            event(
                c,
                job.id,
                "note",
                &format!("{source}: ${:.2}", estimate.total_usd),
                Some(serde_json::json!({
                    "estimated_total_usd": estimate.total_usd, "train_tokens": estimate.train_tokens,
                    "allowed_to_proceed": estimate.allowed, "user_limit_usd": estimate.user_limit_usd,
                })),
            )?;
            let spent = spent.unwrap_or(0.0);
            Ok(if !estimate.allowed {
                Some((
                    "over_provider_limit",
                    format!(
                        "{} would not run it: its estimate ${:.2} is over the account's limit{}",
                        p.flavor().name(),
                        estimate.total_usd,
                        estimate.user_limit_usd.map(|l| format!(" (${l:.2})")).unwrap_or_default()
                    ),
                ))
            } else if let Some(b) = budget.filter(|b| spent + estimate.total_usd > *b) {
                Some((
                    "over_budget",
                    format!(
                        "{source} ${:.2} plus ${spent:.2} spent this month is over the dataset's monthly budget ${b:.2}",
                        estimate.total_usd
                    ),
                ))
            } else {
                None
            })
        })
    })?;
    match refusal {
        None => Ok(true),
        Some((code, message)) => {
            tx(mode, || Spi::connect_mut(|c| fail_locally(c, job.id, code, &message)))?;
            delete_uploaded(mode, job, p);
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------
// the provider's states: poll, store events and metrics, record the result
// ---------------------------------------------------------------------------

fn poll(mode: Mode, job: &Job) -> Result<()> {
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let pid = job.provider_job_id.clone().unwrap_or_default();
    let fetched = (|| -> provider::Result<_> {
        let pj = p.retrieve_job(&pid)?;
        let events = p.job_events(&pid, job.event_cursor.as_deref(), 500)?;
        let checkpoints = if pj.state == JobStatus::Succeeded {
            p.checkpoints(&pid)?
        } else {
            Vec::new()
        };
        let status = pj.state;
        let mut notes = Vec::new();
        if matches!(status, JobStatus::ValidatingFiles | JobStatus::Queued) || status.is_final() {
            notes.extend(cancel_duplicates(&p, job, &pid));
        }
        if status.is_final() {
            notes.extend(sweep_files(&p, job));
        }
        Ok((pj, events, checkpoints, notes))
    })();
    let (pj, events, checkpoints, swept) = match fetched {
        Ok(v) => v,
        Err(mut e) => {
            // A paid job is still out there: only "it does not exist" ends our interest.
            if e.http_status != Some(404) {
                e.disposition = provider::retry::Disposition::Retry;
            }
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            return record_failure(mode, job, "poll", &e.message.clone(), Some(&e), outcome);
        }
    };
    let status = pj.state;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let finish_in = plan::seconds_until(pj.estimated_finish, now);
    let delay = plan::poll_delay(status, gucs::cadence(), finish_in);
    tx(mode, || {
        Spi::connect_mut(|c| {
            let mut latest_metrics = None;
            for e in &events {
                if e.kind.as_deref() == Some("metrics") {
                    latest_metrics = e.data.clone();
                }
                let data = serde_json::json!({
                    "id": e.id, "created_at": e.created_at, "level": e.level, "type": e.kind, "data": e.data,
                });
                event(c, job.id, "provider", e.message.as_deref().unwrap_or(""), Some(data))?;
            }
            for note in &swept {
                event(c, job.id, "note", note, None)?;
            }
            let mut metrics = serde_json::Map::new();
            if let Some(m) = latest_metrics {
                metrics.insert("latest".into(), m);
            }
            if !checkpoints.is_empty() {
                let mut cps: Vec<_> = checkpoints.iter().collect();
                cps.sort_by_key(|c| c.step_number.unwrap_or(0));
                if let Some(last) = cps.last().and_then(|c| c.metrics.clone()) {
                    metrics.insert("final".into(), last);
                }
                metrics.insert(
                    "checkpoints".into(),
                    cps.iter()
                        .map(|c| serde_json::json!({ "step": c.step_number, "model": c.fine_tuned_model_checkpoint, "metrics": c.metrics }))
                        .collect(),
                );
            }
            let (err_code, err_msg) = match (&status, &pj.error) {
                (JobStatus::Failed, Some(e)) => (e.code.clone(), e.message.clone()),
                (JobStatus::Failed, None) => (
                    None,
                    Some("the provider reported the job failed without a reason".into()),
                ),
                _ => (None, None),
            };
            let cursor = events.last().map(|e| e.id.clone()).or(job.event_cursor.clone());
            let finish_at = finish_in.and(pj.estimated_finish).filter(|_| !status.is_final());
            c.update(
                "UPDATE vibe_ft.jobs SET
                        status = $2, provider_status = $3, provider_event_cursor = $4, attempts = 0,
                        next_attempt_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN NULL
                                               ELSE clock_timestamp() + make_interval(secs => $5) END,
                        estimated_finish_at = to_timestamp($6),
                        fine_tuned_model = coalesce($7, fine_tuned_model),
                        trained_tokens = coalesce($8, trained_tokens),
                        metrics = metrics || $9,
                        error_code = coalesce($10, error_code),
                        error_message = coalesce($11, error_message),
                        cost_usd = coalesce($12, cost_usd)
                  WHERE id = $1",
                None,
                &[
                    job.id.into(),
                    status.as_str().into(),
                    pj.status.as_str().into(),
                    cursor.as_deref().into(),
                    delay.as_secs_f64().into(),
                    finish_at.map(|t| t as f64).into(),
                    pj.model.as_deref().into(),
                    pj.trained_tokens.into(),
                    JsonB(serde_json::Value::Object(metrics)).into(),
                    err_code.as_deref().into(),
                    err_msg.as_deref().into(),
                    pj.cost_usd.map(|c| AnyNumeric::try_from(c).unwrap_or_else(|_| AnyNumeric::from(0))).into(),
                ],
            )?;
            Ok(())
        })
    })
}

/// Cancel provider jobs tagged with our id other than the one we track. A
/// create request can outlive our timeout and complete after we looked and
/// created again; such a duplicate shows up while ours is still validating or
/// queued, and is cancelled before it trains. Best effort; returns notes.
fn cancel_duplicates(p: &dyn Provider, job: &Job, ours: &str) -> Vec<String> {
    match p.find_jobs(&job.tag()) {
        Ok(found) => found
            .iter()
            .filter(|j| j.id != ours && !j.state.is_final())
            .map(|j| match p.cancel_job(&j.id) {
                Ok(_) => format!(
                    "cancelled duplicate provider job {} (a create request that outlived its timeout)",
                    j.id
                ),
                Err(e) => format!("could not cancel duplicate provider job {}: {e}", j.id),
            })
            .collect(),
        Err(e) => vec![format!("could not look for duplicate provider jobs: {e}")],
    }
}

/// When a job is over: delete uploads of its files other than the ones it used.
/// (An upload that timed out on our side may still complete at the provider
/// after we listed its files and reused or re-sent one.) Best effort; returns
/// notes for the job's events.
fn sweep_files(p: &dyn Provider, job: &Job) -> Vec<String> {
    let mut notes = Vec::new();
    for (split, round) in [Split::Train, Split::Validation]
        .into_iter()
        .flat_map(|s| (0..=job.export_round).map(move |r| (s, r)))
    {
        let name = plan::provider_filename(&job.id.to_string(), split, round);
        match p.find_files(&name) {
            Ok(files) => {
                for f in files.iter().filter(|f| Some(f.id.as_str()) != job.file_id(split)) {
                    notes.push(match p.delete_file(&f.id) {
                        Ok(()) => format!("deleted duplicate upload {} of the {} file", f.id, split.as_str()),
                        Err(e) => format!("could not delete duplicate upload {}: {e}", f.id),
                    });
                }
            }
            Err(e) => notes.push(format!("could not look for duplicate uploads: {e}")),
        }
    }
    notes
}

// ---------------------------------------------------------------------------
// cancel
// ---------------------------------------------------------------------------

/// Cancel a job at the provider (when it has one there, or may have) and
/// locally. Waits for a step in progress on the job to finish first.
pub fn cancel(job_id: Uuid) -> Result<String> {
    lock_job(job_id)?;
    let job = Spi::connect(|c| load(c, job_id))?;
    match job.status {
        JobStatus::Succeeded => {
            return Err(VibeError::Transition(crate::core::status::TransitionError::Finished {
                from: JobStatus::Succeeded,
                to: JobStatus::Cancelled,
            }))
        }
        JobStatus::Failed | JobStatus::Cancelled => return Ok(job.status.as_str().into()),
        _ => {}
    }
    // A job of another installation (a restored copy) is cancelled here only:
    // its provider objects are the original's.
    let touched_provider = job.ours
        && (job.training_file_id.is_some()
            || job.provider_job_id.is_some()
            || job.status == JobStatus::Submitted
            || job.export_round > 0);
    let mut provider_status = None;
    if touched_provider {
        let ep = Spi::connect(|c| keys::endpoint(c, &job.provider))?;
        let p = client(Mode::Sql, ep);
        let provider_err = |e: ProviderError| VibeError::Provider(format!("cancelling at the provider failed: {e}"));
        let mut targets: Vec<String> = job.provider_job_id.iter().cloned().collect();
        if targets.is_empty() && job.status == JobStatus::Submitted {
            targets = p
                .find_jobs(&job.tag())
                .map_err(provider_err)?
                .into_iter()
                .map(|j| j.id)
                .collect();
        }
        for t in &targets {
            match p.cancel_job(t) {
                Ok(pj) => provider_status = Some(pj.status),
                Err(e) if e.http_status == Some(400) => {
                    // Already finished there: record what it is and leave it.
                    let pj = p.retrieve_job(t).map_err(provider_err)?;
                    if pj.state == JobStatus::Succeeded {
                        return Err(VibeError::State(format!(
                            "provider job {t} already succeeded, and a succeeded job cannot be cancelled; \
                             the next poll records its model"
                        )));
                    }
                    provider_status = Some(pj.status);
                }
                Err(e) => return Err(provider_err(e)),
            }
        }
        if targets.is_empty() {
            delete_uploaded(Mode::Sql, &job, &p);
            if job.export_round > 0 {
                for note in sweep_files(&p, &job) {
                    Spi::connect_mut(|c| event(c, job_id, "note", &note, None))?;
                }
            }
        }
    }
    remove_local_files(job_id);
    Spi::connect_mut(|c| {
        c.update(
            "UPDATE vibe_ft.jobs SET status = 'cancelled', provider_status = coalesce($2, provider_status),
                    next_attempt_at = NULL
              WHERE id = $1",
            None,
            &[job_id.into(), provider_status.as_deref().into()],
        )?;
        let who = store::first_value::<String>(c.select("SELECT current_user::text", None, &[])?)?.unwrap_or_default();
        let note = if job.ours {
            format!("cancelled by {who}")
        } else {
            format!("cancelled by {who}, here only: the job belongs to another installation, whose provider objects are left alone")
        };
        event(c, job_id, "note", &note, None)
    })?;
    Ok("cancelled".into())
}
