//! Data access over SPI. Every statement is a constant string with `$n`
//! parameters: no SQL is ever built from values.

use crate::core::policy::{Budget, Facts, Thresholds};
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

pub fn not_found_dataset(id: Uuid) -> VibeError {
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
           a.id, a.status, d.method, d.monthly_budget_usd::float8
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
    let data = Data::for_method(&row.get::<String>(5)?.unwrap_or_default()).unwrap_or(Data::Chat);
    let cap = row.get::<f64>(6)?;
    // One exact range scan per split on (dataset_id, split, id): only the new
    // rows are read. (With `split IN (...)` the planner may filter on split
    // and walk every entry of the dataset instead.)
    let count_sql = match data {
        Data::Chat => {
            "SELECT (SELECT count(*) FROM vibe_ft.examples
                      WHERE dataset_id = $1 AND split = 'train' AND id > $2)
                  + (SELECT count(*) FROM vibe_ft.examples
                      WHERE dataset_id = $1 AND split = 'validation' AND id > $2)"
        }
        Data::Preference => {
            "SELECT (SELECT count(*) FROM vibe_ft.preference_examples
                      WHERE dataset_id = $1 AND split = 'train' AND id > $2)
                  + (SELECT count(*) FROM vibe_ft.preference_examples
                      WHERE dataset_id = $1 AND split = 'validation' AND id > $2)"
        }
    };
    let new_examples = first_value::<i64>(select_prepared(
        c,
        count_sql,
        &[dataset_id.into(), last_example_id.into()],
    )?)?
    .unwrap_or(0);
    let budget = match cap {
        Some(cap_usd) => Some(budget_facts(c, dataset_id, data, cap_usd, new_examples)?),
        None => None,
    };
    Ok(Some(Facts {
        new_examples,
        days_since_last_job: days,
        active_job: active_id.map(|id| (id.to_string(), active_status.unwrap_or_default())),
        budget,
    }))
}

/// What a job (aliased `o`) takes from its dataset's monthly budget: what the
/// provider charged, else its billed tokens at the price in effect, else its
/// estimate; nothing for one that failed or was cancelled before any of that.
/// One expression for the monthly decision and the runner's check before it
/// creates a job.
macro_rules! job_spend_usd {
    () => {
        "CASE WHEN o.cost_usd IS NOT NULL THEN o.cost_usd
              WHEN o.trained_tokens IS NOT NULL AND vibe_ft.training_price(o.provider, o.base_model) IS NOT NULL
                   THEN o.trained_tokens * vibe_ft.training_price(o.provider, o.base_model) / 1000000
              WHEN o.status IN ('failed', 'cancelled') THEN 0
              ELSE o.estimated_cost_usd END"
    };
}
pub(crate) use job_spend_usd;

/// This month's spend and an estimate of the next job, for a dataset with a
/// monthly budget. Cheap on purpose (it runs inside the decision): the next
/// job's training tokens are its examples (the last successful job's plus the
/// new ones) times the tokens per example measured at the last export, or, for
/// a dataset never exported, counted on its newest 200 examples.
fn budget_facts(c: &SpiClient<'_>, dataset_id: Uuid, data: Data, cap_usd: f64, new_examples: i64) -> Result<Budget> {
    let t = select_prepared(
        c,
        concat!(
            "SELECT d.base_model, vibe_ft.training_price(d.provider, d.base_model)::float8,
                (SELECT coalesce(sum(",
            job_spend_usd!(),
            "), 0)::float8
                   FROM vibe_ft.jobs o
                  WHERE o.dataset_id = d.id AND o.created_at >= date_trunc('month', now())),
                (SELECT (j.training_tokens::float8 / nullif(j.train_examples, 0))
                   FROM vibe_ft.jobs j
                  WHERE j.dataset_id = d.id AND j.training_tokens IS NOT NULL
                  ORDER BY j.created_at DESC LIMIT 1),
                (SELECT coalesce(j.train_examples, 0) + coalesce(j.validation_examples, 0) FROM vibe_ft.jobs j
                  WHERE j.dataset_id = d.id AND j.status = 'succeeded'
                  ORDER BY j.created_at DESC LIMIT 1),
                d.hyperparameters, d.validation_share::float8, d.provider
           FROM vibe_ft.datasets d WHERE d.id = $1"
        ),
        &[dataset_id.into()],
    )?;
    let row = t.first();
    let base_model = row.get::<String>(1)?.unwrap_or_default();
    let price = row.get::<f64>(2)?;
    let spent_usd = row.get::<f64>(3)?.unwrap_or(0.0);
    let measured = row.get::<f64>(4)?;
    let previous = row.get::<i32>(5)?.unwrap_or(0) as i64;
    let hyper = row.get::<JsonB>(6)?.map(|j| j.0).unwrap_or_default();
    let share = row.get::<f64>(7)?.unwrap_or(0.0);
    let provider = row.get::<String>(8)?.unwrap_or_default();
    let per_example = match measured {
        Some(m) => m,
        None => {
            let sql = match data {
                Data::Chat => {
                    "SELECT avg(vibe_ft.count_message_tokens(e.messages, $2))::float8
                       FROM (SELECT messages FROM vibe_ft.examples WHERE dataset_id = $1 ORDER BY id DESC LIMIT 200) e"
                }
                Data::Preference => {
                    "SELECT avg(vibe_ft.count_tokens(vibe_ft.preference_line(e.input, e.preferred, e.non_preferred), $2))::float8
                       FROM (SELECT input, preferred, non_preferred FROM vibe_ft.preference_examples
                              WHERE dataset_id = $1 ORDER BY id DESC LIMIT 200) e"
                }
            };
            first_value::<f64>(select_prepared(c, sql, &[dataset_id.into(), base_model.as_str().into()])?)?
                .unwrap_or(0.0)
        }
    };
    let train = ((previous + new_examples) as f64 * (1.0 - share)).round().max(0.0);
    let epochs = crate::core::check::epochs_for(&provider, &hyper, train as u64) as f64;
    Ok(Budget {
        cap_usd,
        spent_usd,
        next_job_usd: price.map(|p| train * per_example * epochs * p / 1_000_000.0),
        base_model,
    })
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
            "INSERT INTO vibe_ft.jobs (dataset_id, provider, base_model, hyperparameters, suffix, method,
                   min_quality_score, train_examples, validation_examples,
                   avg_train_quality, avg_validation_quality, last_example_id)
             SELECT d.id, d.provider,
                    -- create_finetuning_job's default (the seed's OpenAI model) means the
                    -- dataset's own model on a provider that does not serve OpenAI's
                    CASE WHEN $2 = 'gpt-4o-2024-08-06' AND d.provider NOT IN ('openai', 'azure')
                         THEN d.base_model ELSE $2 END,
                    $3, $4, d.method, d.min_quality_score,
                    s.train, s.validation, s.avg_train, s.avg_validation, s.last_id
               FROM vibe_ft.datasets d
              CROSS JOIN LATERAL (
                    SELECT count(*) FILTER (WHERE e.split = 'train' AND e.quality_score >= d.min_quality_score)::int AS train,
                           count(*) FILTER (WHERE e.split = 'validation' AND e.quality_score >= d.min_quality_score)::int AS validation,
                           round(avg(e.quality_score) FILTER (WHERE e.split = 'train' AND e.quality_score >= d.min_quality_score), 2) AS avg_train,
                           round(avg(e.quality_score) FILTER (WHERE e.split = 'validation' AND e.quality_score >= d.min_quality_score), 2) AS avg_validation,
                           max(e.id) AS last_id
                      FROM (SELECT x.split, x.quality_score, x.id FROM vibe_ft.examples x
                             WHERE x.dataset_id = d.id AND d.method = 'supervised'
                            UNION ALL
                            SELECT p.split, p.quality_score, p.id FROM vibe_ft.preference_examples p
                             WHERE p.dataset_id = d.id AND d.method = 'dpo') e) s
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

/// Where a method's training data lives and how a row becomes a JSONL line.
/// Constant SQL fragments only: never built from values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// `vibe_ft.examples`, chat lines (method `supervised`).
    Chat,
    /// `vibe_ft.preference_examples`, preference lines (method `dpo`).
    Preference,
}

impl Data {
    pub fn for_method(method: &str) -> Option<Data> {
        match method {
            "supervised" => Some(Data::Chat),
            "dpo" => Some(Data::Preference),
            _ => None,
        }
    }
    pub fn table(self) -> &'static str {
        match self {
            Data::Chat => "vibe_ft.examples",
            Data::Preference => "vibe_ft.preference_examples",
        }
    }
    pub fn format(self) -> crate::core::check::Format {
        match self {
            Data::Chat => crate::core::check::Format::Chat,
            Data::Preference => crate::core::check::Format::Preference,
        }
    }
    /// The JSONL line of a row `e` of `table()`.
    fn line_sql(self) -> &'static str {
        match self {
            Data::Chat => "vibe_ft.openai_chat_line(e.messages)",
            Data::Preference => "vibe_ft.preference_line(e.input, e.preferred, e.non_preferred)",
        }
    }
}

/// Call `f(id, line)` for every JSONL line of a dataset's split (quality at
/// least `min_quality`, id at most `last_id`), in id order. One page of 5,000
/// rows per SPI connection: what a page allocates is freed with it, so memory
/// stays flat however large the dataset. Values are read as raw datums, not
/// with `row.get()`, which copies every value into the SPI context's parent
/// (in the worker: the transaction, alive for the whole export).
pub fn for_each_line(
    data: Data,
    dataset_id: Uuid,
    split: crate::core::split::Split,
    min_quality: &AnyNumeric,
    last_id: i64,
    mut f: impl FnMut(i64, &[u8]) -> Result<()>,
) -> Result<()> {
    let page_sql = format!(
        "SELECT e.id, {} FROM {} e
          WHERE e.dataset_id = $1 AND e.split = $2 AND e.quality_score >= $3 AND e.id > $4 AND e.id <= $5
          ORDER BY e.id LIMIT 5000",
        data.line_sql(),
        data.table()
    );
    let mut after = 0i64;
    loop {
        // A large export takes a while: a worker asked to stop stops here (the
        // transaction rolls back; the export runs again later), a query that is
        // cancelled is cancelled here.
        if unsafe { !pgrx::pg_sys::MyBgworkerEntry.is_null() } && crate::worker::stopping() {
            return Err(VibeError::Internal("the export was interrupted: the worker is stopping".into()));
        }
        pgrx::pg_sys::check_for_interrupts!();
        let (rows, last) = pgrx::spi::Spi::connect(|c| -> Result<(usize, i64)> {
            let mut t = c.select(
                &page_sql,
                None,
                &[
                    dataset_id.into(),
                    split.as_str().into(),
                    min_quality.clone().into(),
                    after.into(),
                    last_id.into(),
                ],
            )?;
            let (mut rows, mut last) = (0, after);
            while t.next().is_some() {
                rows += 1;
                if let Some(id) = t.get_datum_by_ordinal(1)? {
                    last = id.value() as i64;
                }
                if let Some(line) = t.get_datum_by_ordinal(2)? {
                    // SAFETY: column 2 is text (a varlena) of a tuple SPI keeps until the page ends.
                    let line = unsafe {
                        let v = pgrx::pg_sys::pg_detoast_datum_packed(line.cast_mut_ptr());
                        std::slice::from_raw_parts(
                            pgrx::varlena::vardata_any(v) as *const u8,
                            pgrx::varlena::varsize_any_exhdr(v),
                        )
                    };
                    f(last, line)?;
                }
            }
            Ok((rows, last))
        })?;
        if rows == 0 {
            return Ok(());
        }
        after = last;
    }
}
