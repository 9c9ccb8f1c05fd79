//! Checked before money is spent: `vibe_ft.validate_dataset` reads a dataset's
//! JSONL exactly as the runner would upload it and reports the provider's
//! format rules, special tokens and real token counts per example and in total.
//! (`vibe_ft.estimate_cost` in `sql/finalize.sql` prices its totals.)

use crate::core::check::{Checker, Rules, MIN_EXAMPLES};
use crate::core::split::Split;
use crate::core::tokens::Encoding;
use crate::error::{required, OrRaise, Result, VibeError};
use crate::store::{self, Data};
use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};

type Row = (
    String,
    bool,
    i64,
    i64,
    i64,
    i32,
    i64,
    i64,
    JsonB,
    String,
    bool,
);

/// One row per split: whether it passes, examples, tokens (all, and what
/// training reads: each example capped at the limit), the largest example,
/// examples over the limit, examples with problems, the first problems as
/// `[{"example_id","line","problem"}]`, the encoding used, and whether the
/// token counts are the provider's own (`tokens_exact`: OpenAI's models) or
/// estimates (open-weight models, whose tokenizers do not ship with vibe_ft).
/// The rules are the dataset's provider's (Together's are stricter). NULL
/// arguments take the dataset's own base model, method and quality threshold.
#[pg_extern(name = "validate_dataset")]
#[search_path(pg_catalog, pg_temp)]
fn validate_dataset_for_provider(
    p_dataset_id: Option<Uuid>,
    p_base_model: default!(Option<&str>, "NULL"),
    p_method: default!(Option<&str>, "NULL"),
    p_min_quality_score: default!(Option<AnyNumeric>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(split, String),
        name!(valid, bool),
        name!(examples, i64),
        name!(tokens, i64),
        name!(billable_tokens, i64),
        name!(max_example_tokens, i32),
        name!(examples_over_limit, i64),
        name!(examples_with_problems, i64),
        name!(problems, JsonB),
        name!(encoding, String),
        name!(tokens_exact, bool),
    ),
> {
    TableIterator::new(validate(p_dataset_id, p_base_model, p_method, p_min_quality_score).or_raise())
}

/// 0.4.0's `validate_dataset` (without `tokens_exact`), kept as a symbol only
/// (no SQL): between installing this library and ALTER EXTENSION ... UPDATE,
/// 0.4.0's definition still gets the ten columns it declares.
#[pg_extern(sql = false)]
#[search_path(pg_catalog, pg_temp)]
fn validate_dataset(
    p_dataset_id: Option<Uuid>,
    p_base_model: default!(Option<&str>, "NULL"),
    p_method: default!(Option<&str>, "NULL"),
    p_min_quality_score: default!(Option<AnyNumeric>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(split, String),
        name!(valid, bool),
        name!(examples, i64),
        name!(tokens, i64),
        name!(billable_tokens, i64),
        name!(max_example_tokens, i32),
        name!(examples_over_limit, i64),
        name!(examples_with_problems, i64),
        name!(problems, JsonB),
        name!(encoding, String),
    ),
> {
    let rows = validate(p_dataset_id, p_base_model, p_method, p_min_quality_score).or_raise();
    TableIterator::new(rows.into_iter().map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9)))
}

fn validate(
    dataset_id: Option<Uuid>,
    base_model: Option<&str>,
    method: Option<&str>,
    min_quality: Option<AnyNumeric>,
) -> Result<Vec<Row>> {
    let dataset_id = required(dataset_id, "p_dataset_id")?;
    if let Some(q) = &min_quality {
        super::require_quality(q, "p_min_quality_score")?;
    }
    let (ds_model, ds_method, ds_quality, provider) = Spi::connect(|c| -> Result<(String, String, AnyNumeric, String)> {
        let t = c.select(
            "SELECT base_model, method, min_quality_score, provider FROM vibe_ft.datasets WHERE id = $1",
            None,
            &[dataset_id.into()],
        )?;
        if t.is_empty() {
            return Err(store::not_found_dataset(dataset_id));
        }
        let r = t.first();
        Ok((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<AnyNumeric>(3)?.unwrap_or_else(|| AnyNumeric::from(0)),
            r.get::<String>(4)?.unwrap_or_default(),
        ))
    })?;
    let model = base_model.map(str::to_string).unwrap_or(ds_model);
    let method = method.map(str::to_string).unwrap_or(ds_method);
    let data = Data::for_method(&method).ok_or_else(|| {
        VibeError::InvalidArgument(format!("p_method must be 'supervised' or 'dpo', got '{method}'"))
    })?;
    let min_quality = min_quality.unwrap_or(ds_quality);
    let encoding = Encoding::for_model(&model);
    let exact = Encoding::exact_for(&model);
    let rules = Rules::for_provider(&provider);
    let mut rows = Vec::new();
    for split in [Split::Train, Split::Validation] {
        let mut checker = Checker::new(encoding, data.format()).with_rules(rules);
        store::for_each_line(data, dataset_id, split, &min_quality, i64::MAX, |id, line| {
            checker.line(id, line);
            Ok(())
        })?;
        let r = checker.finish();
        let mut problems = r.problems_json();
        let mut valid = r.is_valid();
        if split == Split::Train && r.examples < MIN_EXAMPLES {
            valid = false;
            if let serde_json::Value::Array(a) = &mut problems {
                a.insert(
                    0,
                    serde_json::json!({"example_id": null, "line": null, "problem": format!(
                        "{} training example(s) with quality >= {min_quality}; the provider needs at least {MIN_EXAMPLES}",
                        r.examples
                    )}),
                );
            }
        }
        rows.push((
            split.as_str().to_string(),
            valid,
            r.examples as i64,
            r.tokens as i64,
            r.billable_tokens as i64,
            r.max_example_tokens.min(i32::MAX as u64) as i32,
            r.over_limit as i64,
            r.with_problems as i64,
            JsonB(problems),
            if exact {
                encoding.name().to_string()
            } else {
                format!("{} (an estimate: {model}'s own tokenizer does not ship with vibe_ft)", encoding.name())
            },
            exact,
        ));
    }
    Ok(rows)
}
