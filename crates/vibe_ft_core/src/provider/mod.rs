//! Fine-tuning providers behind one interface.
//!
//! The job runner talks to a [`Provider`]; it never sees URLs, headers or JSON
//! shapes, only the neutral types here ([`Job`], [`FileObject`], [`JobTag`]).
//! `http` is the transport and knows no provider. OpenAI and Azure OpenAI (v1
//! surface) share one client (`openai`), with the differences (paths, auth
//! header, suffix rules) in [`Flavor`]; Together's flat `/fine-tunes` API is
//! `together`. A new provider is one module implementing [`Provider`] and a
//! line in [`client`] and [`Flavor`].
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
pub mod together;

use crate::status::JobStatus;
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
    Together,
}

/// How a provider wants its key sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone, in this header (Azure's `api-key`).
    Header(&'static str),
}

impl Flavor {
    pub fn parse(name: &str) -> Option<Flavor> {
        match name {
            "openai" => Some(Flavor::OpenAi),
            "azure" | "azure_openai" => Some(Flavor::Azure),
            "together" => Some(Flavor::Together),
            _ => None,
        }
    }
    pub const ALL: [Flavor; 3] = [Flavor::OpenAi, Flavor::Azure, Flavor::Together];
    pub fn auth(self) -> Auth {
        match self {
            Flavor::OpenAi | Flavor::Together => Auth::Bearer,
            Flavor::Azure => Auth::Header("api-key"),
        }
    }
    /// Where the key is found in the server's environment.
    pub fn env_key(self) -> &'static str {
        match self {
            Flavor::OpenAi => "OPENAI_API_KEY",
            Flavor::Azure => "AZURE_OPENAI_API_KEY",
            Flavor::Together => "TOGETHER_API_KEY",
        }
    }
    /// Whether a fine-tuned model needs a deployment before it can be called
    /// (Together: a dedicated endpoint, billed per minute) or is served per
    /// token as soon as it exists (OpenAI; Azure deploys through ARM, outside
    /// vibe_ft, and its deployment name is the model's).
    pub fn needs_deployment(self) -> bool {
        self == Flavor::Together
    }
    /// Whether the provider keeps our job id on its jobs. Without it (Together)
    /// a duplicate is found by training file and suffix, and looked for at every
    /// poll until the job ends (its jobs start running at once).
    pub fn keeps_metadata(self) -> bool {
        self != Flavor::Together
    }
    pub fn name(self) -> &'static str {
        match self {
            Flavor::OpenAi => "openai",
            Flavor::Azure => "azure",
            Flavor::Together => "together",
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
            Flavor::Together => {
                let ok_chars = suffix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
                if suffix.is_empty() || suffix.len() > 40 || !ok_chars {
                    Err("Together suffixes are 1 to 40 characters of [a-zA-Z0-9-_.]".into())
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

impl Endpoint {
    pub fn auth(&self) -> Auth {
        self.flavor.auth()
    }
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

/// A provider job, in our words.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    /// The provider's own status word (kept for display).
    pub status: String,
    /// What it means for us.
    pub state: JobStatus,
    /// The fine-tuned model's name, as the provider gives it (never built).
    pub model: Option<String>,
    pub trained_tokens: Option<i64>,
    pub error: Option<JobError>,
    /// Unix seconds.
    pub estimated_finish: Option<i64>,
    pub training_file: Option<String>,
    pub suffix: Option<String>,
    /// What the provider charged for it, when it says (Together's `total_price`).
    pub cost_usd: Option<f64>,
    /// Our job id in the provider's metadata, when the provider keeps metadata.
    pub tagged: Option<String>,
}

/// Why a provider job failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

/// What identifies the provider job of one of our jobs: our id (in metadata,
/// where the provider keeps it) and what we control in the request (the
/// training file, uploaded for this job alone, and the suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTag {
    pub job_id: String,
    pub training_file: Option<String>,
    pub suffix: Option<String>,
}

/// A provider's price for a job before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub total_usd: f64,
    pub train_tokens: Option<i64>,
    /// The provider would refuse it (over the account's limit).
    pub allowed: bool,
    pub user_limit_usd: Option<f64>,
}

/// A request to serve a fine-tuned model on dedicated hardware.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployRequest {
    pub model: String,
    pub hardware: String,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Minutes without requests before the provider stops it (0: never).
    pub inactive_timeout_minutes: u32,
    pub display_name: Option<String>,
}

/// A dedicated endpoint as the provider reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deployment {
    pub id: String,
    /// The name an app passes as `model`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub hardware: Option<String>,
    /// PENDING, STARTING, STARTED, STOPPING, STOPPED, FAILED, ERROR.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Autoscaling {
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
}

impl Deployment {
    /// A deployment that cannot serve and will not by itself.
    pub fn is_broken(&self) -> bool {
        matches!(self.state.as_deref(), Some("FAILED") | Some("ERROR"))
    }
}

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
    /// The provider jobs made for `tag` (by metadata where the provider keeps
    /// it, else by training file and suffix), newest first.
    fn find_jobs(&self, tag: &JobTag) -> Result<Vec<Job>>;
    fn cancel_job(&self, job_id: &str) -> Result<Job>;
    /// Events newer than `last_seen` (an event id we stored), oldest first, at most `max`.
    fn job_events(&self, job_id: &str, last_seen: Option<&str>, max: usize) -> Result<Vec<JobEvent>>;
    fn checkpoints(&self, job_id: &str) -> Result<Vec<Checkpoint>>;
    /// The provider's own price for a job, where it has an estimate API.
    fn estimate(&self, _job: &NewJob) -> Result<Option<Estimate>> {
        Ok(None)
    }
    /// Start serving a model on dedicated hardware (paid per minute).
    fn deploy(&self, _req: &DeployRequest) -> Result<Deployment> {
        Err(not_offered(self.flavor(), "dedicated deployments"))
    }
    fn deployment(&self, _id: &str) -> Result<Deployment> {
        Err(not_offered(self.flavor(), "dedicated deployments"))
    }
    /// The deployments asked for under this display name (after a lost answer).
    fn find_deployments(&self, _display_name: &str) -> Result<Vec<Deployment>> {
        Err(not_offered(self.flavor(), "dedicated deployments"))
    }
    /// Start a deployment again (or keep it running) with `req`'s replicas and
    /// idle timeout: what runs is always what the caller's cap was checked for.
    fn start_deployment(&self, _id: &str, _req: &DeployRequest) -> Result<Deployment> {
        Err(not_offered(self.flavor(), "dedicated deployments"))
    }
    fn stop_deployment(&self, _id: &str) -> Result<Deployment> {
        Err(not_offered(self.flavor(), "dedicated deployments"))
    }
}

/// What can be known about a job before anything is uploaded: whether this
/// provider can take it (its method for this model, its hyperparameters).
pub fn check_job(flavor: Flavor, job: &NewJob) -> std::result::Result<(), (&'static str, String)> {
    match flavor {
        Flavor::Together => together::create_body(job)
            .map(|_| ())
            .map_err(|m| ("invalid_hyperparameters", m)),
        Flavor::Azure if openai::azure_open_weight(&job.model) && job.method != "supervised" => Err((
            "unsupported_method",
            format!(
                "Azure fine-tunes open-weight models ({}) with supervised training only",
                job.model
            ),
        )),
        _ => Ok(()),
    }
}

fn not_offered(flavor: Flavor, what: &str) -> ProviderError {
    ProviderError::local(
        Disposition::Fail,
        "not_supported",
        format!("{} has no {what} in vibe_ft", flavor.name()),
    )
}

/// The client for a provider. OpenAI and Azure share one module; a provider
/// with another shape adds a module and a `Flavor` here.
pub fn client(endpoint: Endpoint) -> Box<dyn Provider + Send + Sync> {
    match endpoint.flavor {
        Flavor::OpenAi | Flavor::Azure => Box::new(openai::Client::new(endpoint)),
        Flavor::Together => Box::new(together::Client::new(endpoint)),
    }
}
