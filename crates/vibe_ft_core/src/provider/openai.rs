//! OpenAI (and Azure OpenAI v1) fine-tuning objects, read tolerantly: unknown
//! fields are ignored, optional fields may be missing or null, `error` may be
//! `null`, `{}` or `{code, message, param}`, and the set of statuses is open.

use crate::status::JobStatus;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

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

/// A job's `error` when it carries anything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
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

/// An error response body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
}

/// Some providers send numeric codes; keep them as text.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The error of an error response, if the body is one (bodies that are not
/// JSON, or JSON of another shape, give `None`: report the HTTP status then).
pub fn parse_error_body(body: &str) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    serde_json::from_str::<Envelope>(body).ok().map(|e| e.error)
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

#[cfg(test)]
mod tests {
    use super::*;

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
