//! Data access over SPI. Every statement is a constant string with `$n`
//! parameters: no SQL is ever built from values.

use crate::core::policy::{Facts, Thresholds};
use crate::error::{Result, VibeError};
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::{datum::DatumWithOid, AnyNumeric, JsonB, PgOid, Uuid};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Plans of the hot read-only statements, prepared once per backend. SPI keeps
    /// them in the plan cache, which re-plans them after DDL on the tables.
    static PLANS: RefCell<HashMap<&'static str, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Run a read-only statement through a plan prepared once per backend (for the
/// calls that are frequent and cheap, where planning would dominate).
fn select_prepared<'c>(c: &SpiClient<'c>, sql: &'static str, args: &[DatumWithOid<'_>]) -> Result<SpiTupleTable<'c>> {
    PLANS.with_borrow_mut(|plans| {
        if !plans.contains_key(sql) {
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            plans.insert(sql, c.prepare(sql, &types)?.keep());
        }
        Ok(c.select(&plans[sql], None, args)?)
    })
}

/// A dataset's fine-tuning policy, read under a row lock.
pub struct Dataset {
    pub id: Uuid,
    pub name: String,
    pub base_model: String,
    pub hyperparameters: JsonB,
    pub thresholds: Thresholds,
}

/// The first column of the first row, or `None` when there is no row (SPI's own
/// `get_one` is an error on an empty result).
pub fn first_value<T: pgrx::FromDatum + pgrx::IntoDatum>(t: pgrx::spi::SpiTupleTable<'_>) -> Result<Option<T>> {
    if t.is_empty() {
        return Ok(None);
    }
    Ok(t.first().get_one::<T>()?)
}

fn not_found_dataset(id: Uuid) -> VibeError {
    VibeError::NotFound(format!("dataset {id} does not exist (p_dataset_id)"))
}

/// Ok when the dataset exists, a 42704 error naming `p_dataset_id` otherwise.
pub fn require_dataset(c: &SpiClient<'_>, id: Uuid) -> Result<()> {
    let t = select_prepared(c, "SELECT 1 FROM vibe_ft.datasets WHERE id = $1", &[id.into()])?;
    if t.is_empty() {
        return Err(not_found_dataset(id));
    }
    Ok(())
}

/// Lock the dataset row so that deciding and creating a job is serialised per
/// dataset. `FOR NO KEY UPDATE` does not block inserts of examples (their
/// foreign-key check takes only a key-share lock).
pub fn lock_dataset(c: &mut SpiClient<'_>, id: Uuid) -> Result<Dataset> {
    let t = c.update(
        "SELECT id, name, base_model, hyperparameters, min_new_examples, min_days_between_jobs
           FROM vibe_ft.datasets WHERE id = $1 FOR NO KEY UPDATE",
        None,
        &[id.into()],
    )?;
    if t.is_empty() {
        return Err(not_found_dataset(id));
    }
    let row = t.first();
    Ok(Dataset {
        id: row.get::<Uuid>(1)?.unwrap_or(id),
        name: row.get::<String>(2)?.unwrap_or_default(),
        base_model: row.get::<String>(3)?.unwrap_or_default(),
        hyperparameters: row.get::<JsonB>(4)?.unwrap_or(JsonB(serde_json::json!({}))),
        thresholds: Thresholds {
            min_new_examples: row.get::<i32>(5)?.unwrap_or(0),
            min_days_since_last_job: row.get::<i32>(6)?.unwrap_or(0),
        },
    })
}

/// The facts `should_create_finetuning_job` decides on, or `None` when the
/// dataset does not exist. Index lookups on datasets and jobs and one
/// index-only count of the examples newer than the last successful job: no scan
/// grows with the size of the examples table. Two statements, planned once per
/// backend.
pub fn decision_facts(c: &SpiClient<'_>, dataset_id: Uuid) -> Result<Option<Facts>> {
    let t = select_prepared(
        c,
        "SELECT
           (SELECT j.last_example_id FROM vibe_ft.jobs j
             WHERE j.dataset_id = d.id AND j.status = 'succeeded'
             ORDER BY j.created_at DESC LIMIT 1),
           (SELECT floor(extract(epoch FROM now() - j.created_at) / 86400)::bigint FROM vibe_ft.jobs j
             WHERE j.dataset_id = d.id AND j.status NOT IN ('failed', 'cancelled')
             ORDER BY j.created_at DESC LIMIT 1),
           a.id, a.status
           FROM vibe_ft.datasets d
           LEFT JOIN vibe_ft.jobs a
             ON a.dataset_id = d.id AND a.status NOT IN ('succeeded', 'failed', 'cancelled')
          WHERE d.id = $1",
        &[dataset_id.into()],
    )?;
    if t.is_empty() {
        return Ok(None);
    }
    let row = t.first();
    let last_example_id = row.get::<i64>(1)?.unwrap_or(0);
    let days = row.get::<i64>(2)?;
    let active_id = row.get::<Uuid>(3)?;
    let active_status = row.get::<String>(4)?;
    let new_examples = first_value::<i64>(select_prepared(
        c,
        // One exact range scan per split on (dataset_id, split, id): only the new
        // rows are read. (With `split IN (...)` the planner may filter on split
        // and walk every entry of the dataset instead.)
        "SELECT (SELECT count(*) FROM vibe_ft.examples
                  WHERE dataset_id = $1 AND split = 'train' AND id > $2)
              + (SELECT count(*) FROM vibe_ft.examples
                  WHERE dataset_id = $1 AND split = 'validation' AND id > $2)",
        &[dataset_id.into(), last_example_id.into()],
    )?)?
    .unwrap_or(0);
    Ok(Some(Facts {
        new_examples,
        days_since_last_job: days,
        active_job: active_id.map(|id| (id.to_string(), active_status.unwrap_or_default())),
    }))
}

/// Like [`decision_facts`], for a dataset known to exist.
pub fn require_decision_facts(c: &SpiClient<'_>, dataset_id: Uuid) -> Result<Facts> {
    decision_facts(c, dataset_id)?.ok_or_else(|| not_found_dataset(dataset_id))
}

/// Create a `pending` job for a dataset the caller has locked with
/// [`lock_dataset`], snapshotting the examples that pass the dataset's quality
/// threshold. Fails with a conflict if the dataset has an unfinished job.
pub fn insert_job(
    c: &mut SpiClient<'_>,
    dataset_id: Uuid,
    base_model: &str,
    hyperparameters: JsonB,
    suffix: Option<&str>,
) -> Result<Uuid> {
    let active = c.select(
        "SELECT id, status FROM vibe_ft.jobs
          WHERE dataset_id = $1 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
        Some(1),
        &[dataset_id.into()],
    )?;
    if !active.is_empty() {
        let (id, status) = active.first().get_two::<Uuid, String>()?;
        return Err(VibeError::Conflict(format!(
            "dataset {dataset_id} already has an unfinished job {} ({})",
            id.map(|u| u.to_string()).unwrap_or_default(),
            status.unwrap_or_default()
        )));
    }
    let args: [DatumWithOid; 4] = [
        dataset_id.into(),
        base_model.into(),
        hyperparameters.into(),
        suffix.into(),
    ];
    let id = first_value::<Uuid>(c.update(
            "INSERT INTO vibe_ft.jobs (dataset_id, provider, base_model, hyperparameters, suffix,
                   min_quality_score, train_examples, validation_examples,
                   avg_train_quality, avg_validation_quality, last_example_id)
             SELECT d.id, d.provider, $2, $3, $4, d.min_quality_score,
                    s.train, s.validation, s.avg_train, s.avg_validation, s.last_id
               FROM vibe_ft.datasets d
              CROSS JOIN LATERAL (
                    SELECT count(*) FILTER (WHERE e.split = 'train' AND e.quality_score >= d.min_quality_score)::int AS train,
                           count(*) FILTER (WHERE e.split = 'validation' AND e.quality_score >= d.min_quality_score)::int AS validation,
                           round(avg(e.quality_score) FILTER (WHERE e.split = 'train' AND e.quality_score >= d.min_quality_score), 2) AS avg_train,
                           round(avg(e.quality_score) FILTER (WHERE e.split = 'validation' AND e.quality_score >= d.min_quality_score), 2) AS avg_validation,
                           max(e.id) AS last_id
                      FROM vibe_ft.examples e WHERE e.dataset_id = d.id) s
              WHERE d.id = $1
             RETURNING id",
        None,
        &args,
    )?)?;
    let id = id.ok_or_else(|| not_found_dataset(dataset_id))?;
    let created = Event {
        kind: "status",
        from_status: None,
        to_status: Some("pending"),
        message: Some("job created"),
        data: None,
    };
    record_event(c, id, created, crate::gucs::job_events_per_job())?;
    Ok(id)
}

/// One entry of a job's history.
pub struct Event<'a> {
    pub kind: &'a str,
    pub from_status: Option<&'a str>,
    pub to_status: Option<&'a str>,
    pub message: Option<&'a str>,
    pub data: Option<JsonB>,
}

/// Record a job event and keep at most `keep` events for that job.
pub fn record_event(c: &mut SpiClient<'_>, job_id: Uuid, e: Event<'_>, keep: i32) -> Result<()> {
    let args: [DatumWithOid; 6] = [
        job_id.into(),
        e.kind.into(),
        e.from_status.into(),
        e.to_status.into(),
        e.message.into(),
        e.data.into(),
    ];
    c.update(
        "INSERT INTO vibe_ft.job_events (job_id, kind, from_status, to_status, message, data)
         VALUES ($1, $2, $3, $4, $5, $6)",
        None,
        &args,
    )?;
    c.update(
        "DELETE FROM vibe_ft.job_events
          WHERE job_id = $1
            AND id <= (SELECT id FROM vibe_ft.job_events WHERE job_id = $1
                        ORDER BY id DESC OFFSET $2 LIMIT 1)",
        None,
        &[job_id.into(), (keep as i64).into()],
    )?;
    Ok(())
}

/// Delete job events older than `days` days; returns how many.
pub fn prune_events_older_than(c: &mut SpiClient<'_>, days: i32) -> Result<i64> {
    let t = c.update(
        "WITH gone AS (DELETE FROM vibe_ft.job_events
                        WHERE created_at < now() - make_interval(days => $1) RETURNING 1)
         SELECT count(*) FROM gone",
        None,
        &[days.into()],
    )?;
    Ok(first_value::<i64>(t)?.unwrap_or(0))
}

/// A numeric argument as f64, for range checks.
pub fn numeric_f64(n: &AnyNumeric) -> f64 {
    f64::try_from(n.clone()).unwrap_or(f64::NAN)
}
