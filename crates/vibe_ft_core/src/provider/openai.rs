//! OpenAI (and Azure OpenAI v1) fine-tuning objects, read tolerantly: unknown
//! fields are ignored, optional fields may be missing or null, `error` may be
//! `null`, `{}` or `{code, message, param}`, and the set of statuses is open.

use super::http::{encode, Repeat, Transport};
use super::retry::Disposition;
use super::{
    Checkpoint, Endpoint, FileObject, Flavor, Job, JobError, JobEvent, JobTag, NewJob, Provider, ProviderError,
    Result as PResult, JOB_ID_METADATA_KEY,
};
use crate::status::JobStatus;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;

/// A fine-tuning job as `GET /fine_tuning/jobs/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FineTuningJob {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub fine_tuned_model: Option<String>,
    #[serde(default)]
    pub trained_tokens: Option<i64>,
    #[serde(default, deserialize_with = "error_or_none")]
    pub error: Option<JobError>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub estimated_finish: Option<i64>,
    #[serde(default)]
    pub training_file: Option<String>,
    #[serde(default)]
    pub validation_file: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub result_files: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
}

/// `null` and `{}` (no code, no message) both mean "no error".
fn error_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JobError>, D::Error> {
    let e: Option<JobError> = Option::deserialize(d)?;
    Ok(e.filter(|e| e.code.is_some() || e.message.is_some()))
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{"object": "list", "data": [...], "has_more": bool}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// Our state for a provider status. Provider statuses form an open set: one we
/// do not know yet means the provider still has the job, so it maps to
/// `running` and the raw value is kept by the caller for display.
pub fn map_status(provider_status: &str) -> JobStatus {
    match provider_status {
        "validating_files" => JobStatus::ValidatingFiles,
        "queued" => JobStatus::Queued,
        "running" => JobStatus::Running,
        "paused" => JobStatus::Paused,
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        "cancelled" => JobStatus::Cancelled,
        _ => JobStatus::Running,
    }
}

impl FineTuningJob {
    /// In our words.
    pub fn into_job(self) -> Job {
        Job {
            state: map_status(&self.status),
            tagged: self.metadata.get(JOB_ID_METADATA_KEY).cloned(),
            id: self.id,
            status: self.status,
            model: self.fine_tuned_model,
            trained_tokens: self.trained_tokens,
            error: self.error,
            estimated_finish: self.estimated_finish,
            training_file: self.training_file,
            suffix: None,
            cost_usd: None,
        }
    }
}

/// The OpenAI / Azure OpenAI v1 client.
pub struct Client {
    http: Transport,
    /// Files above this size go through the Uploads API in parts.
    single_upload_max: u64,
    part_size: u64,
}

/// OpenAI's limit for `POST /files`, and its part size limit for uploads.
pub const SINGLE_UPLOAD_MAX: u64 = 512 * 1024 * 1024;
pub const UPLOAD_PART_MAX: u64 = 64 * 1024 * 1024;
/// Pages we follow when listing, so a huge account cannot stall a step.
const MAX_PAGES: usize = 50;

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            http: Transport::new(endpoint),
            single_upload_max: SINGLE_UPLOAD_MAX,
            part_size: UPLOAD_PART_MAX,
        }
    }

    /// Smaller limits, to exercise the Uploads API without 512 MB files.
    pub fn with_upload_limits(mut self, single_upload_max: u64, part_size: u64) -> Client {
        self.single_upload_max = single_upload_max;
        self.part_size = part_size.clamp(1, UPLOAD_PART_MAX);
        self
    }

    pub fn with_sleep(mut self, sleep: fn(std::time::Duration)) -> Client {
        self.http = self.http.with_sleep(sleep);
        self
    }

    fn upload_in_parts(&self, path: &Path, filename: &str, len: u64) -> PResult<FileObject> {
        #[derive(Deserialize)]
        struct Upload {
            id: String,
            #[serde(default)]
            file: Option<FileObject>,
            #[serde(default)]
            status: Option<String>,
        }
        #[derive(Deserialize)]
        struct Part {
            id: String,
        }
        let body = serde_json::json!({
            "filename": filename, "purpose": "fine-tune", "bytes": len, "mime_type": "application/jsonl"
        });
        let upload: Upload = self.http.post_json("/uploads", &body, Repeat::OnlyIfNotProcessed)?;
        let mut part_ids = Vec::new();
        let mut offset = 0;
        while offset < len {
            let n = self.part_size.min(len - offset);
            let part: Part = self.http.post_file(
                &format!("/uploads/{}/parts", encode(&upload.id)),
                &[],
                "data",
                filename,
                path,
                offset,
                n,
            )?;
            part_ids.push(part.id);
            offset += n;
        }
        let done: Upload = self.http.post_json(
            &format!("/uploads/{}/complete", encode(&upload.id)),
            &serde_json::json!({ "part_ids": part_ids }),
            Repeat::Safe,
        )?;
        done.file.ok_or_else(|| {
            ProviderError::local(
                Disposition::Retry,
                "malformed_response",
                format!("upload {} completed without a file (status {:?})", done.id, done.status),
            )
        })
    }

    fn list_all<T: serde::de::DeserializeOwned>(&self, path: &str, id_of: fn(&T) -> &str) -> PResult<Vec<T>> {
        let mut out: Vec<T> = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = path.to_string();
        for _ in 0..MAX_PAGES {
            let page: List<T> = self.http.get(&url)?;
            let more = page.has_more && !page.data.is_empty();
            out.extend(page.data);
            if !more {
                break;
            }
            url = format!(
                "{path}{sep}after={}",
                encode(id_of(out.last().expect("non-empty page")))
            );
        }
        Ok(out)
    }
}

impl Provider for Client {
    fn flavor(&self) -> Flavor {
        self.http.endpoint().flavor
    }

    fn upload_file(&self, path: &Path, filename: &str) -> PResult<FileObject> {
        let len = std::fs::metadata(path)
            .map_err(|e| ProviderError::local(Disposition::Retry, "local_file", format!("{}: {e}", path.display())))?
            .len();
        if len > self.single_upload_max {
            return self.upload_in_parts(path, filename, len);
        }
        self.http
            .post_file("/files", &[("purpose", "fine-tune")], "file", filename, path, 0, len)
    }

    fn find_files(&self, filename: &str) -> PResult<Vec<FileObject>> {
        let all: Vec<FileObject> = self.list_all("/files?purpose=fine-tune&limit=10000", |f: &FileObject| &f.id)?;
        Ok(all
            .into_iter()
            .filter(|f| f.filename.as_deref() == Some(filename))
            .collect())
    }

    fn delete_file(&self, file_id: &str) -> PResult<()> {
        let _: serde_json::Value = self.http.delete(&format!("/files/{}", encode(file_id)))?;
        Ok(())
    }

    fn create_job(&self, job: &NewJob) -> PResult<Job> {
        if let Some(s) = &job.suffix {
            self.flavor()
                .check_suffix(s)
                .map_err(|m| ProviderError::local(Disposition::Fail, "invalid_suffix", m))?;
        }
        let body = create_body(self.flavor(), job);
        let created: FineTuningJob = self
            .http
            .post_json("/fine_tuning/jobs", &body, Repeat::OnlyIfNotProcessed)?;
        Ok(created.into_job())
    }

    fn retrieve_job(&self, job_id: &str) -> PResult<Job> {
        let j: FineTuningJob = self.http.get(&format!("/fine_tuning/jobs/{}", encode(job_id)))?;
        Ok(j.into_job())
    }

    fn find_jobs(&self, tag: &JobTag) -> PResult<Vec<Job>> {
        let (key, value) = (JOB_ID_METADATA_KEY, tag.job_id.as_str());
        let path = format!(
            "/fine_tuning/jobs?limit=100&metadata%5B{}%5D={}",
            encode(key),
            encode(value)
        );
        let jobs: Vec<FineTuningJob> = self.list_all(&path, |j: &FineTuningJob| &j.id)?;
        // A provider that ignores the filter must not make us adopt a stranger's job.
        Ok(jobs
            .into_iter()
            .filter(|j| j.metadata.get(key).map(String::as_str) == Some(value))
            .map(FineTuningJob::into_job)
            .collect())
    }

    fn cancel_job(&self, job_id: &str) -> PResult<Job> {
        let j: FineTuningJob = self.http.post_json(
            &format!("/fine_tuning/jobs/{}/cancel", encode(job_id)),
            &serde_json::json!({}),
            Repeat::Safe,
        )?;
        Ok(j.into_job())
    }

    fn job_events(&self, job_id: &str, last_seen: Option<&str>, max: usize) -> PResult<Vec<JobEvent>> {
        // Newest first, paged backwards with `after`; stop at the last event we have.
        let base = format!("/fine_tuning/jobs/{}/events?limit=100", encode(job_id));
        let mut url = base.clone();
        let mut out: Vec<JobEvent> = Vec::new();
        'pages: for _ in 0..MAX_PAGES {
            let page: List<JobEvent> = self.http.get(&url)?;
            let more = page.has_more && !page.data.is_empty();
            for e in page.data {
                if Some(e.id.as_str()) == last_seen || out.len() >= max {
                    break 'pages;
                }
                out.push(e);
            }
            if !more {
                break;
            }
            url = format!("{base}&after={}", encode(&out.last().expect("non-empty page").id));
        }
        out.reverse();
        Ok(out)
    }

    fn checkpoints(&self, job_id: &str) -> PResult<Vec<Checkpoint>> {
        let page: List<Checkpoint> = self
            .http
            .get(&format!("/fine_tuning/jobs/{}/checkpoints?limit=100", encode(job_id)))?;
        Ok(page.data)
    }
}

/// Azure's open-weight models (Llama, Qwen, Ministral, gpt-oss) train on
/// global standard capacity, and their jobs fail without saying so.
pub fn azure_open_weight(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    ["llama", "meta-llama", "qwen", "ministral", "mistral", "gpt-oss", "phi-"]
        .iter()
        .any(|p| m.starts_with(p))
}

/// The JSON body of `POST /fine_tuning/jobs` (method object, not the
/// deprecated top-level `hyperparameters`).
pub fn create_body(flavor: Flavor, job: &NewJob) -> serde_json::Value {
    let mut body = serde_json::json!({
        "model": job.model,
        "training_file": job.training_file,
        "method": { "type": job.method },
        "metadata": job.metadata,
    });
    body["method"][job.method.as_str()] = serde_json::json!({ "hyperparameters": job.hyperparameters });
    let obj = body.as_object_mut().expect("object");
    if let Some(v) = &job.validation_file {
        obj.insert("validation_file".into(), v.clone().into());
    }
    if let Some(s) = &job.suffix {
        obj.insert("suffix".into(), s.clone().into());
    }
    if let Some(seed) = job.seed {
        obj.insert("seed".into(), seed.into());
    }
    if flavor == Flavor::Azure && azure_open_weight(&job.model) {
        obj.insert("trainingType".into(), "globalStandard".into());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::http::parse_error_body;

    #[test]
    fn reads_a_running_job_with_unknown_fields() {
        let j: FineTuningJob = serde_json::from_str(
            r#"{"object":"fine_tuning.job","id":"ftjob-abc","model":"gpt-4o-2024-08-06","created_at":1721764800,
                "finished_at":null,"fine_tuned_model":null,"organization_id":"org-1","result_files":[],"status":"running",
                "validation_file":null,"training_file":"file-1","hyperparameters":{"n_epochs":"auto"},"trained_tokens":null,
                "error":{},"estimated_finish":1721768400,"metadata":{"vibe_ft_job_id":"9b1d"},"seed":42,
                "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":3}}},"integrations":null}"#,
        )
        .unwrap();
        assert_eq!(j.id, "ftjob-abc");
        assert_eq!(j.error, None, "{{}} means no error");
        assert_eq!(j.estimated_finish, Some(1721768400));
        assert_eq!(j.metadata.get("vibe_ft_job_id").map(String::as_str), Some("9b1d"));
        assert_eq!(map_status(&j.status), JobStatus::Running);
    }

    #[test]
    fn reads_success_and_failure() {
        let ok: FineTuningJob = serde_json::from_str(
            r#"{"id":"ftjob-1","status":"succeeded","fine_tuned_model":"ft:gpt-4o-2024-08-06:org:coach:abc",
                "trained_tokens":52000,"error":null,"result_files":["file-r"],"metadata":null}"#,
        )
        .unwrap();
        assert_eq!(
            ok.fine_tuned_model.as_deref(),
            Some("ft:gpt-4o-2024-08-06:org:coach:abc")
        );
        assert_eq!(ok.trained_tokens, Some(52000));
        assert!(ok.metadata.is_empty());
        let failed: FineTuningJob = serde_json::from_str(
            r#"{"id":"ftjob-2","status":"failed","error":{"code":"invalid_n_examples","message":"Training file has 5 example(s), but must have at least 10 examples","param":"training_file"}}"#,
        )
        .unwrap();
        assert_eq!(failed.error.unwrap().code.as_deref(), Some("invalid_n_examples"));
        assert_eq!(map_status("failed"), JobStatus::Failed);
    }

    #[test]
    fn unknown_statuses_mean_still_in_progress() {
        assert_eq!(map_status("validating_files"), JobStatus::ValidatingFiles);
        assert_eq!(map_status("cancelled"), JobStatus::Cancelled);
        assert_eq!(map_status("compressing"), JobStatus::Running);
        assert_eq!(map_status(""), JobStatus::Running);
    }

    #[test]
    fn create_body_uses_the_method_object() {
        let job = NewJob {
            model: "gpt-4o-mini-2024-07-18".into(),
            training_file: "file-t".into(),
            validation_file: None,
            suffix: Some("coach".into()),
            seed: Some(7),
            method: "dpo".into(),
            hyperparameters: serde_json::json!({"beta": "auto"}),
            metadata: [("vibe_ft_job_id".to_string(), "j1".to_string())].into(),
        };
        let b = create_body(Flavor::OpenAi, &job);
        assert_eq!(b["method"]["type"], "dpo");
        assert_eq!(b["method"]["dpo"]["hyperparameters"]["beta"], "auto");
        assert_eq!(b["metadata"]["vibe_ft_job_id"], "j1");
        assert_eq!(b["seed"], 7);
        assert!(b.get("validation_file").is_none() && b.get("hyperparameters").is_none());
        assert!(b.get("trainingType").is_none());
        assert_eq!(encode("a b/[c]"), "a%20b%2F%5Bc%5D");
        // Azure's open-weight models need the training type; its GPT models must not get it.
        let oss = NewJob { model: "Ministral-3B".into(), ..job.clone() };
        assert_eq!(create_body(Flavor::Azure, &oss)["trainingType"], "globalStandard");
        assert!(create_body(Flavor::Azure, &job).get("trainingType").is_none());
        assert!(create_body(Flavor::OpenAi, &oss).get("trainingType").is_none());
    }

    #[test]
    fn lists_and_error_bodies() {
        let l: List<FineTuningJob> =
            serde_json::from_str(r#"{"object":"list","data":[{"id":"ftjob-1","status":"queued"}],"has_more":true}"#)
                .unwrap();
        assert_eq!(l.data.len(), 1);
        assert!(l.has_more);
        let e = parse_error_body(
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
        .unwrap();
        assert_eq!(e.code.as_deref(), Some("insufficient_quota"));
        assert_eq!(e.kind.as_deref(), Some("insufficient_quota"));
        assert_eq!(
            parse_error_body(r#"{"error":{"message":"x","code":429}}"#)
                .unwrap()
                .code
                .as_deref(),
            Some("429")
        );
        assert_eq!(parse_error_body("<html>502 Bad Gateway</html>"), None);
        assert_eq!(parse_error_body(r#"{"detail":"nope"}"#), None);
    }
}
