//! Fine-tuning providers behind one interface.
//!
//! The job runner talks to a [`Provider`]; it never sees URLs, headers or JSON
//! shapes. OpenAI and Azure OpenAI (v1 surface) share one client (`openai`),
//! with the differences (paths, auth header, suffix rules) in [`Flavor`]. A
//! provider with a different shape (Together's flat `/fine-tunes`, Fireworks'
//! datasets) is one new module implementing [`Provider`].
//!
//! Every call returns a [`ProviderError`] that already says what to do next
//! (`retry::Disposition`); transient failures of idempotent calls are retried
//! inside the transport with backoff, non-idempotent ones (uploads, job
//! creation) are not: the runner looks before it creates again.

pub mod http;
pub mod interruptible;
pub mod multipart;
pub mod openai;
pub mod retry;

use retry::Disposition;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The metadata key carrying our job id on every provider job we create.
pub const JOB_ID_METADATA_KEY: &str = "vibe_ft_job_id";

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which provider a job goes to, by the name stored in `jobs.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Azure,
}

impl Flavor {
    pub fn parse(name: &str) -> Option<Flavor> {
        match name {
            "openai" => Some(Flavor::OpenAi),
            "azure" | "azure_openai" => Some(Flavor::Azure),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Flavor::OpenAi => "openai",
            Flavor::Azure => "azure",
        }
    }
    /// The provider's rule for `suffix`, checked before any money is spent.
    pub fn check_suffix(self, suffix: &str) -> std::result::Result<(), String> {
        match self {
            Flavor::OpenAi => {
                let n = suffix.chars().count();
                if (1..=64).contains(&n) {
                    Ok(())
                } else {
                    Err(format!("suffix must be 1 to 64 characters, got {n}"))
                }
            }
            Flavor::Azure => {
                let ok_chars = suffix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if suffix.is_empty() || suffix.len() > 40 || !ok_chars {
                    Err("Azure OpenAI suffixes are 1 to 40 characters of [a-zA-Z0-9-_]".into())
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// How to reach a provider.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub flavor: Flavor,
    /// Up to and including the version segment: `https://api.openai.com/v1`,
    /// `https://<resource>.openai.azure.com/openai/v1`.
    pub base_url: String,
    pub key: Secret,
    /// Per request: connecting, and waiting for each response.
    pub timeout: Duration,
    /// Attempts of an idempotent request before giving up for this step.
    pub max_attempts: u32,
}

/// A file as the provider stored it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Everything a job creation sends.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub model: String,
    pub training_file: String,
    pub validation_file: Option<String>,
    pub suffix: Option<String>,
    pub seed: Option<i64>,
    /// `supervised` or `dpo`.
    pub method: String,
    /// The method's hyperparameters object (`n_epochs`, `beta`, ... or `"auto"`).
    pub hyperparameters: serde_json::Value,
    pub metadata: BTreeMap<String, String>,
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobEvent {
    pub id: String,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// A training checkpoint with its metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Checkpoint {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub step_number: Option<i64>,
    #[serde(default)]
    pub metrics: Option<serde_json::Value>,
    #[serde(default)]
    pub fine_tuned_model_checkpoint: Option<String>,
}

pub use openai::FineTuningJob as Job;

/// A failed provider call, already classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub disposition: Disposition,
    /// `None`: no response (connection error, timeout, reset, bad body).
    pub http_status: Option<u16>,
    /// The provider's `error.code` (or ours: `connection`, `timeout`, `malformed_response`).
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    /// For `Defer`: how long the provider says to wait, when it says.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn local(disposition: Disposition, code: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            disposition,
            http_status: None,
            code: Some(code.to_string()),
            message: message.into(),
            request_id: None,
            retry_after: None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ProviderError>;

/// What the job runner needs from a fine-tuning provider.
pub trait Provider {
    fn flavor(&self) -> Flavor;
    /// Upload a JSONL file for fine-tuning, streamed from disk.
    fn upload_file(&self, path: &Path, filename: &str) -> Result<FileObject>;
    /// Fine-tuning files with this exact name (to reuse or clean up after a lost response).
    fn find_files(&self, filename: &str) -> Result<Vec<FileObject>>;
    fn delete_file(&self, file_id: &str) -> Result<()>;
    /// Not idempotent: the caller must have looked for an existing job first.
    fn create_job(&self, job: &NewJob) -> Result<Job>;
    fn retrieve_job(&self, job_id: &str) -> Result<Job>;
    /// Jobs whose metadata has `key = value`, newest first.
    fn find_jobs(&self, key: &str, value: &str) -> Result<Vec<Job>>;
    fn cancel_job(&self, job_id: &str) -> Result<Job>;
    /// Events newer than `last_seen` (an event id we stored), oldest first, at most `max`.
    fn job_events(&self, job_id: &str, last_seen: Option<&str>, max: usize) -> Result<Vec<JobEvent>>;
    fn checkpoints(&self, job_id: &str) -> Result<Vec<Checkpoint>>;
}

/// The client for a provider. OpenAI and Azure share one module; a provider
/// with another shape adds a module and a `Flavor` here.
pub fn client(endpoint: Endpoint) -> Box<dyn Provider + Send + Sync> {
    Box::new(openai::Client::new(endpoint))
}
