//! Together AI's fine-tuning API (`https://api.together.xyz/v1`).
//!
//! Its shape differs from OpenAI's in ways that matter to the runner:
//!
//! - uploads are `POST /files/upload` (multipart with `file_name`), and a file
//!   is processed after the upload: a job may only be created from a file
//!   whose processing completed (`Processed`, `processing_status`);
//! - jobs are `POST /fine-tunes` with flat fields (`n_epochs`, an absolute
//!   `learning_rate`, `training_type` LoRA/Full, `training_method` sft/dpo);
//! - there is no metadata and no idempotency key: the job made for one of ours
//!   is found by what we control, the training file (uploaded for that job
//!   alone, under a name carrying its id) and the suffix;
//! - timestamps are ISO-8601 strings, prices integers in nano-dollars, and the
//!   model's name (`model_output_name`) is opaque: read, never built;
//! - a fine-tuned model is served from a dedicated endpoint, billed per
//!   minute, whose *name* is what an app passes as `model`.

use super::http::{encode, Repeat, Transport};
use super::retry::Disposition;
use super::{
    Checkpoint, DeployRequest, Deployment, Endpoint, Estimate, FileObject, Flavor, Job, JobError, JobEvent, JobTag,
    NewJob, Provider, ProviderError, Result as PResult,
};
use crate::status::JobStatus;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Duration;

/// `total_price` is in nano-dollars.
pub const NANODOLLARS: f64 = 1e9;

/// How long a job creation waits for Together to finish processing its files
/// before it gives the step back (it runs again later).
const PROCESSING_WAIT: Duration = Duration::from_secs(30);

/// Our state for a Together job status. Unknown statuses mean the job is
/// still there: keep polling.
pub fn map_status(status: &str) -> JobStatus {
    match status {
        "pending" | "queued" => JobStatus::Queued,
        "running" | "compressing" | "uploading" | "cancel_requested" => JobStatus::Running,
        "completed" => JobStatus::Succeeded,
        "error" | "user_error" => JobStatus::Failed,
        "cancelled" => JobStatus::Cancelled,
        _ => JobStatus::Running,
    }
}

/// A file as `GET /files/{id}` returns it (note the capitalised keys).
#[derive(Debug, Clone, Deserialize)]
pub struct TgFile {
    pub id: String,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default, rename = "Processed")]
    pub processed: Option<bool>,
    #[serde(default)]
    pub processing_status: Option<String>,
    #[serde(default)]
    pub validation_report: Option<Value>,
}

/// Where a file's processing stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processing {
    Done,
    Pending,
    Invalid(String),
}

impl TgFile {
    pub fn processing(&self) -> Processing {
        match self.processing_status.as_deref() {
            Some("COMPLETED") => Processing::Done,
            Some("INVALID_FORMAT") | Some("FAILED") => {
                let report = self
                    .validation_report
                    .as_ref()
                    .and_then(|r| r.get("error").or_else(|| r.get("message")))
                    .and_then(Value::as_str)
                    .unwrap_or("no report");
                Processing::Invalid(format!(
                    "Together could not process file {} ({}): {report}",
                    self.id,
                    self.processing_status.as_deref().unwrap_or("")
                ))
            }
            // Older answers carry only `Processed`.
            _ if self.processing_status.is_none() && self.processed == Some(true) => Processing::Done,
            _ => Processing::Pending,
        }
    }

    fn into_file(self) -> FileObject {
        let status = match self.processing() {
            Processing::Done => "processed",
            Processing::Pending => "pending",
            Processing::Invalid(_) => "error",
        };
        FileObject {
            id: self.id,
            bytes: self.bytes,
            filename: self.filename,
            purpose: self.purpose,
            status: Some(status.into()),
        }
    }
}

/// A job as `GET /fine-tunes/{id}` (or the list, truncated) returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct TgJob {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub model_output_name: Option<String>,
    #[serde(default)]
    pub training_file: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub token_count: Option<i64>,
    #[serde(default)]
    pub total_price: Option<Value>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub progress: Option<Value>,
}

impl TgJob {
    pub fn into_job(self) -> Job {
        let state = map_status(&self.status);
        let cost_usd = self
            .total_price
            .as_ref()
            .and_then(Value::as_f64)
            .filter(|p| *p >= 0.0)
            .map(|nano| nano / NANODOLLARS);
        let estimated_finish = self
            .progress
            .as_ref()
            .filter(|p| p.get("estimate_available").and_then(Value::as_bool) == Some(true))
            .and_then(|p| p.get("seconds_remaining"))
            .and_then(Value::as_i64)
            .map(|s| now_unix() + s);
        Job {
            id: self.id,
            state,
            status: self.status,
            model: self.model_output_name.filter(|m| !m.is_empty()),
            trained_tokens: self.token_count,
            error: None,
            estimated_finish,
            training_file: self.training_file,
            suffix: self.suffix,
            cost_usd,
            tagged: None,
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2026-12-02T06:01:02.123Z` (or with `+hh:mm`) as Unix seconds.
pub fn iso_to_unix(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (time, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut t = time.splitn(3, ':');
    let (hh, mm): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let ss: f64 = t.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 {
        return None;
    }
    let off = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let o = offset[1..].replace(':', "");
            let (oh, om): (i64, i64) = (o.get(..2)?.parse().ok()?, o.get(2..4).unwrap_or("00").parse().ok()?);
            sign * (oh * 3600 + om * 60)
        }
        _ => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss as i64 - off)
}

#[derive(Debug, Deserialize)]
struct DataList<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct TgEvent {
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl TgEvent {
    fn is_error(&self) -> bool {
        self.level.as_deref() == Some("error")
            || matches!(self.kind.as_deref(), Some("JOB_ERROR") | Some("JOB_USER_ERROR"))
    }
}

/// The hyperparameters a dataset or job may set for Together, and how they
/// map onto its flat request. OpenAI's `learning_rate_multiplier` has no
/// meaning here (Together takes an absolute rate) and is refused rather than
/// guessed.
const PASSTHROUGH: [&str; 7] = [
    "n_evals",
    "n_checkpoints",
    "warmup_ratio",
    "max_grad_norm",
    "weight_decay",
    "lr_scheduler",
    "max_seq_length",
];
const LORA: [&str; 4] = ["lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules"];

/// The body of `POST /fine-tunes` for a job, or why the job cannot be sent
/// (checked when the job exports, before anything is uploaded or paid for).
pub fn create_body(job: &NewJob) -> std::result::Result<Value, String> {
    let hp = job.hyperparameters.as_object().cloned().unwrap_or_default();
    let mut body = Map::new();
    body.insert("model".into(), job.model.clone().into());
    body.insert("training_file".into(), job.training_file.clone().into());
    if let Some(v) = &job.validation_file {
        body.insert("validation_file".into(), v.clone().into());
        // A validation file is only used with evaluations.
        body.insert("n_evals".into(), hp.get("n_evals").cloned().unwrap_or(json!(1)));
    }
    if let Some(s) = &job.suffix {
        body.insert("suffix".into(), s.clone().into());
    }
    if let Some(seed) = job.seed {
        body.insert("random_seed".into(), seed.into());
    }
    let mut lora = Map::new();
    lora.insert("type".into(), "Lora".into());
    let mut full = false;
    let mut method = Map::new();
    let dpo = job.method == "dpo";
    method.insert("method".into(), if dpo { "dpo" } else { "sft" }.into());
    if !dpo {
        method.insert("train_on_inputs".into(), "auto".into());
    }
    for (k, v) in &hp {
        let auto = v.as_str() == Some("auto");
        match k.as_str() {
            "n_epochs" if auto => {}
            "n_epochs" => match v.as_u64() {
                Some(n @ 1..=20) => {
                    body.insert("n_epochs".into(), n.into());
                }
                _ => {
                    return Err(format!(
                        "n_epochs must be an integer from 1 to 20 for Together, got {v}"
                    ))
                }
            },
            "batch_size" if auto => {
                body.insert("batch_size".into(), "max".into());
            }
            "batch_size" => match v {
                Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => {
                    body.insert("batch_size".into(), v.clone());
                }
                Value::String(s) if s == "max" => {
                    body.insert("batch_size".into(), v.clone());
                }
                _ => return Err(format!("batch_size must be a positive integer or \"max\", got {v}")),
            },
            "learning_rate" => match v.as_f64() {
                Some(lr) if lr > 0.0 && lr <= 0.01 => {
                    body.insert("learning_rate".into(), v.clone());
                }
                _ => {
                    return Err(format!(
                        "learning_rate must be an absolute rate above 0 and at most 0.01 (e.g. 1e-5), got {v}"
                    ))
                }
            },
            "learning_rate_multiplier" if auto => {}
            "learning_rate_multiplier" => {
                return Err(
                    "Together takes an absolute learning_rate (e.g. 1e-5), not OpenAI's learning_rate_multiplier: \
                     set hyperparameters.learning_rate instead"
                        .into(),
                )
            }
            "beta" | "dpo_beta" if auto => {}
            "beta" | "dpo_beta" if dpo => match v.as_f64() {
                Some(b) if b > 0.0 => {
                    method.insert("dpo_beta".into(), v.clone());
                }
                _ => return Err(format!("beta must be a positive number, got {v}")),
            },
            "train_on_inputs" if !dpo => {
                method.insert("train_on_inputs".into(), v.clone());
            }
            "lora" => match v.as_bool() {
                Some(on) => full = !on,
                None => return Err(format!("lora must be true or false, got {v}")),
            },
            k if LORA.contains(&k) => {
                lora.insert(k.into(), v.clone());
            }
            k if PASSTHROUGH.contains(&k) => {
                body.insert(k.into(), v.clone());
            }
            other => return Err(format!(
                "hyperparameter '{other}' is not one vibe_ft sends to Together (n_epochs, learning_rate, batch_size, \
                     beta, lora, {}, {}, train_on_inputs)",
                LORA.join(", "),
                PASSTHROUGH.join(", ")
            )),
        }
    }
    if full {
        body.insert("training_type".into(), json!({ "type": "Full" }));
    } else {
        body.insert("training_type".into(), Value::Object(lora));
    }
    body.insert("training_method".into(), Value::Object(method));
    Ok(Value::Object(body))
}

/// The Together client.
pub struct Client {
    http: Transport,
    sleep: fn(Duration),
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            http: Transport::new(endpoint),
            sleep: std::thread::sleep,
        }
    }

    pub fn with_sleep(mut self, sleep: fn(Duration)) -> Client {
        self.http = self.http.with_sleep(sleep);
        self.sleep = sleep;
        self
    }

    fn file(&self, id: &str) -> PResult<TgFile> {
        self.http.get(&format!("/files/{}", encode(id)))
    }

    /// Wait (a while) for Together to finish processing a file. A file it
    /// found invalid fails the job with its report; one still processing
    /// gives the step back, to run again later.
    fn wait_processed(&self, id: &str) -> PResult<()> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            match self.file(id)?.processing() {
                Processing::Done => return Ok(()),
                Processing::Invalid(msg) => {
                    return Err(ProviderError::local(Disposition::Fail, "invalid_training_file", msg))
                }
                Processing::Pending if start.elapsed() >= PROCESSING_WAIT => {
                    let mut e = ProviderError::local(
                        Disposition::Retry,
                        "file_processing",
                        format!("Together is still processing file {id}"),
                    );
                    e.retry_after = Some(Duration::from_secs(30));
                    return Err(e);
                }
                Processing::Pending => {
                    (self.sleep)(pause);
                    pause = (pause * 2).min(Duration::from_secs(4));
                }
            }
        }
    }

    fn error_message(&self, job_id: &str) -> Option<String> {
        let events: DataList<TgEvent> = self.http.get(&format!("/fine-tunes/{}/events", encode(job_id))).ok()?;
        events
            .data
            .into_iter()
            .rev()
            .find(|e| e.is_error())
            .and_then(|e| e.message)
    }

    fn job(&self, j: TgJob) -> Job {
        let mut job = j.into_job();
        if job.state == JobStatus::Failed {
            job.error = Some(JobError {
                code: Some(job.status.clone()),
                message: Some(
                    self.error_message(&job.id)
                        .unwrap_or_else(|| format!("Together reports the job as {}", job.status)),
                ),
                param: None,
            });
        }
        job
    }

    fn endpoint_body(req: &DeployRequest) -> Value {
        let mut b = json!({
            "model": req.model,
            "hardware": req.hardware,
            "autoscaling": { "min_replicas": req.min_replicas, "max_replicas": req.max_replicas },
            "inactive_timeout": req.inactive_timeout_minutes,
        });
        if let Some(n) = &req.display_name {
            b["display_name"] = n.clone().into();
        }
        b
    }
}

impl Provider for Client {
    fn flavor(&self) -> Flavor {
        Flavor::Together
    }

    fn upload_file(&self, path: &Path, filename: &str) -> PResult<FileObject> {
        let len = std::fs::metadata(path)
            .map_err(|e| ProviderError::local(Disposition::Retry, "local_file", format!("{}: {e}", path.display())))?
            .len();
        let f: TgFile = self.http.post_file(
            "/files/upload",
            &[
                ("purpose", "fine-tune"),
                ("file_name", filename),
                ("file_type", "jsonl"),
            ],
            "file",
            filename,
            path,
            0,
            len,
        )?;
        Ok(f.into_file())
    }

    fn find_files(&self, filename: &str) -> PResult<Vec<FileObject>> {
        let all: DataList<TgFile> = self.http.get("/files")?;
        Ok(all
            .data
            .into_iter()
            .filter(|f| f.filename.as_deref() == Some(filename) && f.purpose.as_deref() != Some("eval"))
            .map(TgFile::into_file)
            .collect())
    }

    fn delete_file(&self, file_id: &str) -> PResult<()> {
        let _: Value = self.http.delete(&format!("/files/{}", encode(file_id)))?;
        Ok(())
    }

    fn create_job(&self, job: &NewJob) -> PResult<Job> {
        if let Some(s) = &job.suffix {
            Flavor::Together
                .check_suffix(s)
                .map_err(|m| ProviderError::local(Disposition::Fail, "invalid_suffix", m))?;
        }
        let body =
            create_body(job).map_err(|m| ProviderError::local(Disposition::Fail, "invalid_hyperparameters", m))?;
        self.wait_processed(&job.training_file)?;
        if let Some(v) = &job.validation_file {
            self.wait_processed(v)?;
        }
        let created: TgJob = self.http.post_json("/fine-tunes", &body, Repeat::OnlyIfNotProcessed)?;
        Ok(self.job(created))
    }

    fn retrieve_job(&self, job_id: &str) -> PResult<Job> {
        let j: TgJob = self.http.get(&format!("/fine-tunes/{}", encode(job_id)))?;
        Ok(self.job(j))
    }

    /// Together keeps no metadata: the job made for ours is the one made from
    /// our training file (uploaded for that job alone) with our suffix. The
    /// list has no paging.
    fn find_jobs(&self, tag: &JobTag) -> PResult<Vec<Job>> {
        let Some(file) = tag.training_file.as_deref() else {
            return Ok(Vec::new());
        };
        let all: DataList<TgJob> = self.http.get("/fine-tunes")?;
        let mut found: Vec<TgJob> = all
            .data
            .into_iter()
            .filter(|j| j.training_file.as_deref() == Some(file))
            .filter(|j| match (&tag.suffix, &j.suffix) {
                (Some(ours), Some(theirs)) => ours == theirs,
                _ => true,
            })
            .collect();
        found.sort_by_key(|j| std::cmp::Reverse(j.created_at.as_deref().and_then(iso_to_unix).unwrap_or(0)));
        Ok(found.into_iter().map(TgJob::into_job).collect())
    }

    fn cancel_job(&self, job_id: &str) -> PResult<Job> {
        let j: TgJob = self.http.post_json(
            &format!("/fine-tunes/{}/cancel", encode(job_id)),
            &json!({}),
            Repeat::Safe,
        )?;
        Ok(j.into_job())
    }

    /// Together's events have no ids and come all at once, oldest first: the
    /// cursor is how many we have stored.
    fn job_events(&self, job_id: &str, last_seen: Option<&str>, max: usize) -> PResult<Vec<JobEvent>> {
        let all: DataList<TgEvent> = self.http.get(&format!("/fine-tunes/{}/events", encode(job_id)))?;
        let seen: usize = last_seen.and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(all
            .data
            .into_iter()
            .enumerate()
            .skip(seen)
            .take(max)
            .map(|(i, e)| JobEvent {
                id: (i + 1).to_string(),
                created_at: e.created_at.as_deref().and_then(iso_to_unix),
                level: e.level.clone(),
                message: e.message.clone(),
                kind: e.kind.clone(),
                data: (!e.rest.is_empty()).then(|| Value::Object(e.rest.clone())),
            })
            .collect())
    }

    fn checkpoints(&self, job_id: &str) -> PResult<Vec<Checkpoint>> {
        #[derive(Deserialize)]
        struct Cp {
            #[serde(default)]
            step: Option<i64>,
            #[serde(default)]
            checkpoint_type: Option<String>,
            #[serde(default)]
            path: Option<String>,
            #[serde(default)]
            name: Option<String>,
        }
        let all: DataList<Cp> = self.http.get(&format!("/fine-tunes/{}/checkpoints", encode(job_id)))?;
        Ok(all
            .data
            .into_iter()
            .map(|c| Checkpoint {
                id: c.checkpoint_type,
                step_number: c.step,
                metrics: None,
                fine_tuned_model_checkpoint: c.name.or(c.path),
            })
            .collect())
    }

    fn estimate(&self, job: &NewJob) -> PResult<Option<Estimate>> {
        #[derive(Deserialize)]
        struct Price {
            #[serde(default)]
            estimated_total_price: Option<f64>,
            #[serde(default)]
            user_limit: Option<f64>,
            #[serde(default)]
            estimated_train_token_count: Option<f64>,
            #[serde(default)]
            allowed_to_proceed: Option<bool>,
        }
        let full =
            create_body(job).map_err(|m| ProviderError::local(Disposition::Fail, "invalid_hyperparameters", m))?;
        // Together prices a file once it has processed it.
        self.wait_processed(&job.training_file)?;
        if let Some(v) = &job.validation_file {
            self.wait_processed(v)?;
        }
        let mut body = Map::new();
        for k in [
            "training_file",
            "validation_file",
            "model",
            "n_epochs",
            "n_evals",
            "training_type",
            "training_method",
        ] {
            if let Some(v) = full.get(k) {
                body.insert(k.into(), v.clone());
            }
        }
        let p: Price = self
            .http
            .post_json("/fine-tunes/estimate-price", &Value::Object(body), Repeat::Safe)?;
        Ok(p.estimated_total_price.map(|total| Estimate {
            total_usd: total,
            train_tokens: p.estimated_train_token_count.map(|t| t as i64),
            allowed: p.allowed_to_proceed.unwrap_or(true),
            user_limit_usd: p.user_limit,
        }))
    }

    /// Not idempotent: the caller looks for its endpoint by display name
    /// (`find_deployment`) before it asks for another.
    fn deploy(&self, req: &DeployRequest) -> PResult<Deployment> {
        self.http
            .post_json("/endpoints", &Self::endpoint_body(req), Repeat::OnlyIfNotProcessed)
    }

    fn deployment(&self, id: &str) -> PResult<Deployment> {
        self.http.get(&format!("/endpoints/{}", encode(id)))
    }

    fn start_deployment(&self, id: &str, req: &DeployRequest) -> PResult<Deployment> {
        let body = json!({
            "state": "STARTED",
            "autoscaling": { "min_replicas": req.min_replicas, "max_replicas": req.max_replicas },
            "inactive_timeout": req.inactive_timeout_minutes,
        });
        self.http.patch_json(&format!("/endpoints/{}", encode(id)), &body)
    }

    fn stop_deployment(&self, id: &str) -> PResult<Deployment> {
        self.http
            .patch_json(&format!("/endpoints/{}", encode(id)), &json!({ "state": "STOPPED" }))
    }

    fn find_deployments(&self, display_name: &str) -> PResult<Vec<Deployment>> {
        let all: DataList<Deployment> = self.http.get("/endpoints?type=dedicated")?;
        Ok(all
            .data
            .into_iter()
            .filter(|d| d.display_name.as_deref() == Some(display_name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn job(method: &str, hp: Value) -> NewJob {
        NewJob {
            model: "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference".into(),
            training_file: "file-t".into(),
            validation_file: Some("file-v".into()),
            suffix: Some("coach".into()),
            seed: None,
            method: method.into(),
            hyperparameters: hp,
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn statuses_map_onto_the_job_state_machine() {
        for (s, want) in [
            ("pending", JobStatus::Queued),
            ("queued", JobStatus::Queued),
            ("running", JobStatus::Running),
            ("compressing", JobStatus::Running),
            ("uploading", JobStatus::Running),
            ("cancel_requested", JobStatus::Running),
            ("completed", JobStatus::Succeeded),
            ("error", JobStatus::Failed),
            ("user_error", JobStatus::Failed),
            ("cancelled", JobStatus::Cancelled),
            ("something_new", JobStatus::Running),
        ] {
            assert_eq!(map_status(s), want, "{s}");
        }
    }

    #[test]
    fn reads_a_finished_job() {
        let j: TgJob = serde_json::from_str(
            r#"{"id":"ft-1b2c","status":"completed","user_id":"u","model":"Qwen/Qwen3-8B",
                "model_output_name":"acct/Qwen3-8B:coach:ft-1b2c","training_file":"file-t","suffix":"coach",
                "token_count":120000,"total_price":57600000,"created_at":"2026-12-02T06:01:02.123Z",
                "events":[],"training_type":{"type":"Lora","lora_r":8}}"#,
        )
        .unwrap();
        let job = j.into_job();
        assert_eq!(job.state, JobStatus::Succeeded);
        assert_eq!(job.model.as_deref(), Some("acct/Qwen3-8B:coach:ft-1b2c"));
        assert_eq!(job.trained_tokens, Some(120000));
        assert!((job.cost_usd.unwrap() - 0.0576).abs() < 1e-12);
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(iso_to_unix("2026-12-02T06:01:02.123Z"), Some(1_796_191_262));
        assert_eq!(iso_to_unix("2026-12-02T07:01:02+01:00"), Some(1_796_191_262));
        assert_eq!(iso_to_unix("2024-02-29 00:00:00"), Some(1_709_164_800));
        assert_eq!(iso_to_unix("yesterday"), None);
    }

    #[test]
    fn files_report_processing() {
        let f = |s: &str| serde_json::from_str::<TgFile>(s).unwrap().processing();
        assert_eq!(
            f(r#"{"id":"file-1","Processed":false,"processing_status":"PENDING"}"#),
            Processing::Pending
        );
        assert_eq!(f(r#"{"id":"file-1","Processed":true}"#), Processing::Done);
        assert_eq!(
            f(r#"{"id":"file-1","Processed":true,"processing_status":"COMPLETED","FileType":"jsonl"}"#),
            Processing::Done
        );
        match f(
            r#"{"id":"file-1","processing_status":"INVALID_FORMAT","validation_report":{"valid":false,"error":"Line 7: roles must alternate"}}"#,
        ) {
            Processing::Invalid(m) => assert!(m.contains("Line 7: roles must alternate"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_request_is_flat() {
        let b = create_body(&job(
            "supervised",
            json!({"n_epochs": 3, "learning_rate": 2e-5, "batch_size": "auto"}),
        ))
        .unwrap();
        assert_eq!(b["n_epochs"], 3);
        assert_eq!(b["learning_rate"], 2e-5);
        assert_eq!(b["batch_size"], "max");
        assert_eq!(b["training_type"], json!({"type": "Lora"}));
        assert_eq!(
            b["training_method"],
            json!({"method": "sft", "train_on_inputs": "auto"})
        );
        assert_eq!(b["n_evals"], 1, "a validation file needs evaluations");
        assert!(b.get("metadata").is_none() && b.get("method").is_none());
        let d = create_body(&job("dpo", json!({"beta": 0.2, "lora": false}))).unwrap();
        assert_eq!(d["training_method"], json!({"method": "dpo", "dpo_beta": 0.2}));
        assert_eq!(d["training_type"], json!({"type": "Full"}));
        let e = create_body(&job("supervised", json!({"learning_rate_multiplier": 2}))).unwrap_err();
        assert!(e.contains("absolute learning_rate"), "{e}");
        assert!(create_body(&job("supervised", json!({"n_epochs": 0}))).is_err());
        assert!(create_body(&job("supervised", json!({"temperature": 1}))).is_err());
        // OpenAI's "auto" values mean "the provider's default".
        let a = create_body(&job(
            "supervised",
            json!({"n_epochs": "auto", "learning_rate_multiplier": "auto"}),
        ))
        .unwrap();
        assert!(a.get("n_epochs").is_none() && a.get("learning_rate").is_none());
    }
}
