//! The seed's job functions: decide, create, update, and find the model to serve.

use crate::core::policy::{self, Thresholds};
use crate::core::status::{self, JobStatus};
use crate::error::{required, OrRaise, Result, VibeError};
use crate::{gucs, store};
use pgrx::prelude::*;
use super::json::Json;
use pgrx::{datum::DatumWithOid, AnyNumeric, JsonB, Uuid};

const SUFFIX_MAX: usize = 64;

fn non_negative(v: Option<i32>, arg: &'static str) -> Result<i32> {
    let v = required(v, arg)?;
    if v < 0 {
        return Err(VibeError::OutOfRange(format!("{arg} must be >= 0, got {v}")));
    }
    Ok(v)
}

fn decide(dataset_id: Option<Uuid>, min_new: Option<i32>, min_days: Option<i32>) -> Result<policy::Decision> {
    let dataset_id = required(dataset_id, "p_dataset_id")?;
    let thresholds = Thresholds {
        min_new_examples: non_negative(min_new, "p_min_new_examples")?,
        min_days_since_last_job: non_negative(min_days, "p_min_days_since_last_job")?,
    };
    Spi::connect(|c| {
        Ok(policy::decide(
            &store::require_decision_facts(c, dataset_id)?,
            thresholds,
        ))
    })
}

fn create(
    dataset_id: Option<Uuid>,
    base_model: Option<&str>,
    hyperparameters: Option<Json>,
    suffix: Option<&str>,
) -> Result<Uuid> {
    let dataset_id = required(dataset_id, "p_dataset_id")?;
    let base_model = required(base_model, "p_base_model")?;
    if base_model.trim().is_empty() {
        return Err(VibeError::InvalidArgument("p_base_model must not be empty".into()));
    }
    let hyperparameters = required(hyperparameters, "p_hyperparameters")?;
    super::require_object(&hyperparameters.0, "p_hyperparameters")?;
    if let Some(s) = suffix {
        let n = s.chars().count();
        if n == 0 || n > SUFFIX_MAX {
            return Err(VibeError::InvalidArgument(format!(
                "p_suffix must be 1 to {SUFFIX_MAX} characters, got {n}"
            )));
        }
    }
    Spi::connect_mut(|c| {
        store::lock_dataset(c, dataset_id)?;
        store::insert_job(c, dataset_id, base_model, JsonB(hyperparameters.0), suffix)
    })
}

fn update(
    job_id: Option<Uuid>,
    provider_job_id: Option<&str>,
    status_arg: Option<&str>,
    model: Option<&str>,
    metrics: Option<Json>,
    error_message: Option<&str>,
) -> Result<()> {
    if job_id.is_none() && provider_job_id.is_none() {
        return Err(VibeError::NullArgument("p_job_id or p_openai_job_id"));
    }
    if provider_job_id.is_some_and(|p| p.trim().is_empty()) {
        return Err(VibeError::InvalidArgument("p_openai_job_id must not be empty".into()));
    }
    let new_status = status_arg
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                VibeError::InvalidArgument(format!(
                    "p_status '{s}' is not a known job status; expected one of: {}",
                    JobStatus::all_names()
                ))
            })
        })
        .transpose()?;
    if let Some(m) = &metrics {
        super::require_object(&m.0, "p_training_metrics")?;
    }
    Spi::connect_mut(|c| {
        // Find and lock the job.
        let t = match job_id {
            Some(id) => c.update(
                "SELECT id, status, provider_job_id FROM vibe_ft.jobs WHERE id = $1 FOR UPDATE",
                None,
                &[id.into()],
            )?,
            None => c.update(
                "SELECT id, status, provider_job_id FROM vibe_ft.jobs WHERE provider_job_id = $1 FOR UPDATE",
                None,
                &[provider_job_id.into()],
            )?,
        };
        if t.is_empty() {
            return Err(VibeError::NotFound(match job_id {
                Some(id) => format!("job {id} does not exist (p_job_id)"),
                None => format!(
                    "no job has provider job id '{}' (p_openai_job_id)",
                    provider_job_id.unwrap_or("")
                ),
            }));
        }
        let (id, current, linked) = t.first().get_three::<Uuid, String, String>()?;
        let id = id.ok_or_else(|| VibeError::Internal("job without id".into()))?;
        let current = current
            .as_deref()
            .and_then(JobStatus::parse)
            .ok_or_else(|| VibeError::Internal(format!("job {id} has an unknown stored status {current:?}")))?;
        if let (Some(linked), Some(given)) = (linked.as_deref(), provider_job_id) {
            if linked != given {
                return Err(VibeError::Conflict(format!(
                    "job {id} is linked to provider job '{linked}', not '{given}'"
                )));
            }
        }
        if linked.is_none() {
            if let Some(given) = provider_job_id {
                let other = c.select(
                    "SELECT id FROM vibe_ft.jobs WHERE provider_job_id = $1 AND id <> $2",
                    Some(1),
                    &[given.into(), id.into()],
                )?;
                if !other.is_empty() {
                    return Err(VibeError::Conflict(format!(
                        "provider job '{given}' is already linked to job {}",
                        store::first_value::<Uuid>(other)?
                            .map(|u| u.to_string())
                            .unwrap_or_default()
                    )));
                }
            }
        }
        // The state machine, checked here for a clear message (the trigger on
        // vibe_ft.jobs enforces the same rule for every other writer).
        if let Some(to) = new_status {
            status::transition(current, to)?;
        }
        let args: [DatumWithOid; 6] = [
            id.into(),
            new_status.map(|s| s.as_str()).into(),
            provider_job_id.into(),
            model.into(),
            metrics.map(|m| JsonB(m.0)).into(),
            error_message.into(),
        ];
        c.update(
            "UPDATE vibe_ft.jobs SET
                 status           = coalesce($2, status),
                 provider_job_id  = coalesce(provider_job_id, $3),
                 fine_tuned_model = coalesce($4, fine_tuned_model),
                 metrics          = CASE WHEN $5::jsonb IS NULL THEN metrics ELSE metrics || $5::jsonb END,
                 trained_tokens   = CASE WHEN jsonb_typeof($5::jsonb -> 'trained_tokens') = 'number'
                                         THEN ($5::jsonb ->> 'trained_tokens')::numeric::bigint
                                         ELSE trained_tokens END,
                 error_message    = coalesce($6, error_message)
             WHERE id = $1",
            None,
            &args,
        )?;
        if let Some(msg) = error_message {
            let event = store::Event {
                kind: "error",
                from_status: None,
                to_status: None,
                message: Some(msg),
                data: None,
            };
            store::record_event(c, id, event, gucs::job_events_per_job())?;
        }
        Ok(())
    })
}

/// Raise if the state machine forbids moving a job from `p_from` to `p_to`.
/// Called by the trigger on `vibe_ft.jobs`, so every writer obeys it.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn check_job_transition(p_from: Option<&str>, p_to: Option<&str>) {
    let parse = |s: Option<&str>, arg: &'static str| -> Result<JobStatus> {
        let s = required(s, arg)?;
        JobStatus::parse(s).ok_or_else(|| {
            VibeError::InvalidArgument(format!(
                "'{s}' is not a known job status; expected one of: {}",
                JobStatus::all_names()
            ))
        })
    };
    let from = parse(p_from, "p_from").or_raise();
    let to = parse(p_to, "p_to").or_raise();
    status::transition(from, to).or_raise();
}

/// Append an event to a job's history, keeping at most
/// `vibe_ft.job_events_per_job` events per job.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
fn record_job_event(
    p_job_id: Option<Uuid>,
    p_kind: Option<&str>,
    p_from_status: default!(Option<&str>, "NULL"),
    p_to_status: default!(Option<&str>, "NULL"),
    p_message: default!(Option<&str>, "NULL"),
    p_data: default!(Option<Json>, "NULL"),
) {
    let job_id = required(p_job_id, "p_job_id").or_raise();
    let kind = required(p_kind, "p_kind").or_raise();
    if !["status", "provider", "error", "note"].contains(&kind) {
        VibeError::InvalidArgument(format!("p_kind must be status, provider, error or note, got '{kind}'")).raise();
    }
    let event = store::Event {
        kind,
        from_status: p_from_status,
        to_status: p_to_status,
        message: p_message,
        data: p_data.map(|d| JsonB(d.0)),
    };
    Spi::connect_mut(|c| {
        let t = c.select("SELECT 1 FROM vibe_ft.jobs WHERE id = $1", None, &[job_id.into()])?;
        if t.is_empty() {
            return Err(VibeError::NotFound(format!("job {job_id} does not exist (p_job_id)")));
        }
        store::record_event(c, job_id, event, gucs::job_events_per_job())
    })
    .or_raise()
}

/// The seed's caller-facing functions, created in schema `public` so that
/// `supabase.rpc(...)` and existing SQL find them unchanged.
#[pg_schema]
#[allow(clippy::type_complexity)] // pgrx's named result columns
mod public {
    use super::*;

    /// Is it time to fine-tune this dataset? Exactly one row; see `core::policy`.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn should_create_finetuning_job(
        p_dataset_id: Option<Uuid>,
        p_min_new_examples: default!(Option<i32>, 100),
        p_min_days_since_last_job: default!(Option<i32>, 30),
    ) -> TableIterator<
        'static,
        (
            name!(should_finetune, bool),
            name!(reason, String),
            name!(new_examples, i32),
            name!(days_since_last_job, i32),
        ),
    > {
        let d = decide(p_dataset_id, p_min_new_examples, p_min_days_since_last_job).or_raise();
        TableIterator::once((d.should_finetune, d.reason, d.new_examples, d.days_since_last_job))
    }

    /// Record a new `pending` job for a dataset and snapshot its counts. At most one
    /// unfinished job per dataset: a second call while one is unfinished fails with
    /// SQLSTATE 23505.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn create_finetuning_job(
        p_dataset_id: Option<Uuid>,
        p_base_model: default!(Option<&str>, "'gpt-4o-2024-08-06'"),
        p_hyperparameters: default!(Option<Json>, "'{}'"),
        p_suffix: default!(Option<&str>, "NULL"),
    ) -> Uuid {
        create(p_dataset_id, p_base_model, p_hyperparameters, p_suffix).or_raise()
    }

    /// Move a job along its state machine and record what the provider reported.
    /// Finds the job by `p_job_id`, or by the provider's id alone; given both, links
    /// them.
    #[pg_extern]
    #[search_path(pg_catalog, pg_temp)]
    pub fn update_finetuning_job_status(
        p_job_id: default!(Option<Uuid>, "NULL"),
        p_openai_job_id: default!(Option<&str>, "NULL"),
        p_status: default!(Option<&str>, "NULL"),
        p_fine_tuned_model: default!(Option<&str>, "NULL"),
        p_training_metrics: default!(Option<Json>, "NULL"),
        p_error_message: default!(Option<&str>, "NULL"),
    ) {
        update(
            p_job_id,
            p_openai_job_id,
            p_status,
            p_fine_tuned_model,
            p_training_metrics,
            p_error_message,
        )
        .or_raise()
    }

    /// The newest succeeded job's model for a base model (any when NULL) that
    /// can be called now: not retired (vibe_ft.model_lifecycle), and, where
    /// the provider needs one, on a running endpoint, whose name is then the
    /// model_id an app passes. No row when there is none: the caller falls
    /// back to the base model.
    #[pg_extern(stable)]
    #[search_path(pg_catalog, pg_temp)]
    pub fn get_latest_finetuned_model(
        p_base_model: default!(Option<&str>, "NULL"),
    ) -> TableIterator<
        'static,
        (
            name!(model_id, String),
            name!(job_id, Uuid),
            name!(created_at, pgrx::datum::TimestampWithTimeZone),
            name!(training_examples, Option<i32>),
            name!(avg_quality_score, Option<AnyNumeric>),
        ),
    > {
        let row = Spi::connect(|c| -> Result<_> {
            let sql = if crate::api::registry_installed(c)? {
                // The model vibe_ft.serving_model gives: one rule for both.
                "SELECT s.model, j.id, j.finished_at, j.train_examples, j.avg_train_quality
                   FROM vibe_ft.serving_model($1) s JOIN vibe_ft.jobs j ON j.id = s.job_id"
            } else {
                // 0.4.0's schema (this library installed, ALTER EXTENSION ... UPDATE
                // not run yet): what 0.4.0 answered, rather than an error per chat request.
                "SELECT fine_tuned_model, id, finished_at, train_examples, avg_train_quality
                   FROM vibe_ft.jobs
                  WHERE status = 'succeeded' AND fine_tuned_model IS NOT NULL
                    AND ($1::text IS NULL OR base_model = $1)
                  ORDER BY finished_at DESC, created_at DESC
                  LIMIT 1"
            };
            let t = c.select(sql, None, &[p_base_model.into()])?;
            if t.is_empty() {
                return Ok(None);
            }
            let r = t.first();
            Ok(Some((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<Uuid>(2)?
                    .ok_or_else(|| VibeError::Internal("job without id".into()))?,
                r.get::<pgrx::datum::TimestampWithTimeZone>(3)?
                    .ok_or_else(|| VibeError::Internal("succeeded job without finished_at".into()))?,
                r.get::<i32>(4)?,
                r.get::<AnyNumeric>(5)?,
            )))
        })
        .or_raise();
        TableIterator::new(row)
    }
}
