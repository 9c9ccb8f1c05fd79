//! Adding training examples.

use crate::core::{messages, split};
use crate::error::{required, OrRaise, Result, VibeError};
use crate::store;
use pgrx::prelude::*;
use super::json::Json;
use pgrx::{datum::DatumWithOid, AnyNumeric, JsonB, Uuid};

/// Raise a 22023 error naming the problem if `p_messages` is not a valid OpenAI
/// chat `messages` array. Used by the examples trigger, so plain INSERTs are
/// checked too.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn validate_messages(p_messages: Option<Json>) {
    let Json(v) = required(p_messages, "p_messages").or_raise();
    messages::validate(&v)
        .map_err(|source| VibeError::Messages {
            arg: "messages",
            source,
        })
        .or_raise();
}

/// The split (`train` or `validation`) for an example's content hash and the
/// dataset's validation share. Deterministic: same content, same split.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn split_for_hash(p_content_hash: Option<&[u8]>, p_validation_share: Option<AnyNumeric>) -> &'static str {
    let hash = required(p_content_hash, "p_content_hash").or_raise();
    let share = p_validation_share.as_ref().map(store::numeric_f64).unwrap_or(0.0);
    split::for_hash(hash, share).as_str()
}

fn build_messages(
    messages: Option<Json>,
    system: Option<&str>,
    user: Option<&str>,
    assistant: Option<&str>,
) -> Result<serde_json::Value> {
    match (messages, user, assistant) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(VibeError::InvalidArgument(
            "give either p_messages or p_user_message and p_assistant_message, not both".into(),
        )),
        (Some(Json(v)), None, None) => {
            if system.is_some() {
                return Err(VibeError::InvalidArgument(
                    "p_system_prompt goes with p_user_message and p_assistant_message; put the system message inside p_messages".into(),
                ));
            }
            messages::validate(&v).map_err(|source| VibeError::Messages {
                arg: "p_messages",
                source,
            })?;
            Ok(v)
        }
        (None, Some(u), Some(a)) => Ok(messages::from_turn(system, u, a)),
        (None, None, _) => Err(VibeError::NullArgument("p_user_message (or p_messages)")),
        (None, Some(_), None) => Err(VibeError::NullArgument("p_assistant_message")),
    }
}

/// Add one training example and return its id. Give either a system prompt
/// (optional), a user message and an assistant answer, or a whole `messages`
/// array. The same conversation added twice to a dataset is stored once: the
/// second call returns the first example's id and changes nothing.
#[pg_extern]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn add_training_example(
    p_dataset_id: Option<Uuid>,
    p_quality_score: Option<AnyNumeric>,
    p_system_prompt: default!(Option<&str>, "NULL"),
    p_user_message: default!(Option<&str>, "NULL"),
    p_assistant_message: default!(Option<&str>, "NULL"),
    p_messages: default!(Option<Json>, "NULL"),
    p_split: default!(Option<&str>, "NULL"),
    p_source: default!(Option<&str>, "NULL"),
    p_source_id: default!(Option<&str>, "NULL"),
) -> i64 {
    add_example(
        p_dataset_id,
        p_quality_score,
        p_system_prompt,
        p_user_message,
        p_assistant_message,
        p_messages,
        p_split,
        p_source,
        p_source_id,
    )
    .or_raise()
}

#[allow(clippy::too_many_arguments)]
fn add_example(
    dataset_id: Option<Uuid>,
    quality: Option<AnyNumeric>,
    system: Option<&str>,
    user: Option<&str>,
    assistant: Option<&str>,
    messages: Option<Json>,
    split_arg: Option<&str>,
    source: Option<&str>,
    source_id: Option<&str>,
) -> Result<i64> {
    let dataset_id = required(dataset_id, "p_dataset_id")?;
    let quality = required(quality, "p_quality_score")?;
    super::require_quality(&quality, "p_quality_score")?;
    if let Some(s) = split_arg {
        if split::Split::parse(s).is_none() {
            return Err(VibeError::InvalidArgument(format!(
                "p_split must be 'train' or 'validation', got '{s}'"
            )));
        }
    }
    let value = build_messages(messages, system, user, assistant)?;
    Spi::connect_mut(|c| {
        store::require_dataset(c, dataset_id)?;
        let args: [DatumWithOid; 6] = [
            dataset_id.into(),
            JsonB(value).into(),
            quality.into(),
            split_arg.into(),
            source.into(),
            source_id.into(),
        ];
        let t = c.update(
            "WITH ins AS (
                INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, split, source, source_id)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (dataset_id, content_hash) DO NOTHING
                RETURNING id)
             SELECT id FROM ins
             UNION ALL
             SELECT e.id FROM vibe_ft.examples e
              WHERE e.dataset_id = $1 AND e.content_hash = sha256(convert_to($2::text, 'UTF8'))
              LIMIT 1",
            None,
            &args,
        )?;
        if let Some(id) = store::first_value::<i64>(t)? {
            return Ok(id);
        }
        // A concurrent session inserted the same conversation after this
        // statement's snapshot was taken: look again with a fresh one.
        store::first_value::<i64>(c.select(
            "SELECT e.id FROM vibe_ft.examples e
              WHERE e.dataset_id = $1 AND e.content_hash = sha256(convert_to($2::text, 'UTF8'))",
            Some(1),
            &args[..2],
        )?)?
        .ok_or_else(|| VibeError::Internal("example was neither inserted nor found".into()))
    })
}
