//! From users' ratings to training data: the per-row pieces that
//! `public.submit_feedback`, the feedback trigger and `vibe_ft.generate_examples`
//! (plpgsql in `sql/finalize.sql`, set-based so a million rows stream through in
//! flat memory) call, plus redaction and token counting for callers.

use crate::core::feedback::{self, Rating, Scoring};
use crate::core::{check, messages, redact, tokens::Encoding};
use crate::error::{required, OrRaise, Result, VibeError};
use pgrx::prelude::*;
use super::json::Json;
use pgrx::{AnyNumeric, JsonB};
use serde_json::{json, Value};

/// Raise 22023 unless the conversation and the answer make a valid training
/// example. Used by the feedback trigger, so imports are checked too.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn check_feedback(p_messages: Option<Json>, p_answer: Option<&str>) -> bool {
    let Json(conv) = required(p_messages, "messages").or_raise();
    let answer = required(p_answer, "answer").or_raise();
    let items = match &conv {
        Value::Array(a) if !a.is_empty() => a,
        Value::Array(_) => VibeError::InvalidArgument(
            "messages (the conversation before the answer) must not be empty".into(),
        )
        .raise(),
        other => VibeError::InvalidArgument(format!(
            "messages must be a JSON array of message objects, got {}",
            messages::json_type_name(other)
        ))
        .raise(),
    };
    if answer.trim().is_empty() {
        VibeError::InvalidArgument("answer must not be empty".into()).raise();
    }
    messages::validate(&feedback::training_messages(items, answer))
        .map_err(|source| VibeError::Messages { arg: "messages", source })
        .or_raise();
    true
}

/// The 0..10 quality score of a rating, or the precise error (22004, 22023,
/// 22003) for a bad one. `vibe_ft.feedback_score` (sql/finalize.sql) is the
/// form generation uses: an SQL expression Postgres inlines into each query,
/// which calls this only for a rating it cannot score itself.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn rating_score(
    p_thumbs_up: Option<bool>,
    p_stars: Option<i32>,
    p_up: Option<AnyNumeric>,
    p_down: Option<AnyNumeric>,
    p_stars_scores: Option<Vec<Option<AnyNumeric>>>,
) -> Option<AnyNumeric> {
    score(p_thumbs_up, p_stars, p_up, p_down, p_stars_scores).or_raise()
}

/// 0.3.0's `feedback_score(boolean, integer, float8, float8, float8[])`, kept as
/// a symbol only (no SQL): between installing this library and ALTER EXTENSION
/// ... UPDATE, 0.3.0's definition still finds the function it was made for.
#[pg_extern(immutable, parallel_safe, sql = false)]
// Runs no SQL: nothing resolves through search_path, so it is not pinned.
fn feedback_score(
    p_thumbs_up: Option<bool>,
    p_stars: Option<i32>,
    p_up: f64,
    p_down: f64,
    p_stars_scores: Vec<f64>,
) -> Option<f64> {
    if p_thumbs_up.is_none() && p_stars.is_none() {
        return None;
    }
    let n = p_stars_scores.len();
    let stars: [f64; 5] = p_stars_scores
        .try_into()
        .unwrap_or_else(|_| VibeError::InvalidArgument(format!("p_stars_scores must have 5 values, got {n}")).raise());
    Scoring {
        thumbs_up: p_up,
        thumbs_down: p_down,
        stars,
    }
    .score(Rating {
        thumbs_up: p_thumbs_up,
        stars: p_stars,
    })
    .map_err(|e| VibeError::OutOfRange(e.to_string()))
    .map(Some)
    .or_raise()
}

fn score(
    thumbs_up: Option<bool>,
    stars: Option<i32>,
    up: Option<AnyNumeric>,
    down: Option<AnyNumeric>,
    stars_scores: Option<Vec<Option<AnyNumeric>>>,
) -> Result<Option<AnyNumeric>> {
    let up = required(up, "p_up")?;
    let down = required(down, "p_down")?;
    let stars_scores = required(stars_scores, "p_stars_scores")?;
    let n = stars_scores.len();
    let stars_scores: [Option<AnyNumeric>; 5] = stars_scores
        .try_into()
        .map_err(|_| VibeError::InvalidArgument(format!("p_stars_scores must have 5 values, got {n}")))?;
    let stars_scores = stars_scores.map(|v| v.ok_or(VibeError::NullArgument("p_stars_scores' elements")));
    if thumbs_up.is_none() && stars.is_none() {
        return Ok(None);
    }
    let [s1, s2, s3, s4, s5] = stars_scores;
    let scoring = Scoring {
        thumbs_up: up,
        thumbs_down: down,
        stars: [s1?, s2?, s3?, s4?, s5?],
    };
    let half = AnyNumeric::try_from(0.5f64).map_err(|e| VibeError::Internal(e.to_string()))?;
    scoring
        .score_with(Rating { thumbs_up, stars }, |a, b| (a + b) * half)
        .map(Some)
        .map_err(|e| VibeError::OutOfRange(e.to_string()))
}

/// The training example of a rated answer: `{"messages": [...], "redactions":
/// {"emails","cards","phones","ibans","national_ids","ips","addresses","names"}}`. Earlier assistant answers are context
/// (`"weight": 0`), the rated answer is trained (`"weight": 1`); with
/// `p_redact`, personal data in every message is replaced first.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn feedback_example(p_messages: Option<Json>, p_answer: Option<&str>, p_redact: Option<bool>) -> JsonB {
    let Json(conv) = required(p_messages, "p_messages").or_raise();
    let answer = required(p_answer, "p_answer").or_raise();
    let redact = required(p_redact, "p_redact").or_raise();
    let conv = array(&conv, "p_messages").or_raise();
    let m = feedback::training_messages(conv, answer);
    let (m, counts) = if redact {
        redact::messages(&m)
    } else {
        (m, redact::Counts::default())
    };
    JsonB(json!({
        "messages": m,
        "redactions": counts.to_json(),
    }))
}

/// A jsonb argument that must be an array.
fn array<'a>(v: &'a Value, arg: &str) -> Result<&'a [Value]> {
    v.as_array().map(Vec::as_slice).ok_or_else(|| {
        VibeError::InvalidArgument(format!("{arg} must be a JSON array, got {}", messages::json_type_name(v)))
    })
}

/// Replace personal data in a text with a token naming its kind: `[email]`,
/// `[iban]`, `[national_id]`, `[card]`, `[ip]`, `[phone]`, `[address]`,
/// `[name]` (see `vibe_ft_core::redact`).
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn redact_text(p_text: Option<&str>) -> String {
    redact::text(required(p_text, "p_text").or_raise()).0.into_owned()
}

/// `redact_text` applied to every string `content` of a messages array.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn redact_messages(p_messages: Option<Json>) -> JsonB {
    let Json(m) = required(p_messages, "p_messages").or_raise();
    JsonB(redact::messages(&m).0)
}

/// The compact preference (DPO) JSONL line of a pair:
/// `{"input":{"messages":[...]},"preferred_output":[...],"non_preferred_output":[...]}`.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn preference_line(p_input: Option<Json>, p_preferred: Option<&str>, p_non_preferred: Option<&str>) -> String {
    let Json(input) = required(p_input, "p_input").or_raise();
    let pair = feedback::Pair {
        prefix: array(&input, "p_input").or_raise().to_vec(),
        preferred: required(p_preferred, "p_preferred").or_raise().to_string(),
        non_preferred: required(p_non_preferred, "p_non_preferred").or_raise().to_string(),
    };
    feedback::dpo_line(&pair).to_string()
}

fn encoding(model: Option<&str>) -> Encoding {
    Encoding::for_model(required(model, "p_model").or_raise())
}

/// Tokens of a text with the model's encoding (`o200k_base` for gpt-4o and gpt-4.1).
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn count_tokens(p_text: Option<&str>, p_model: default!(Option<&str>, "'gpt-4o-2024-08-06'")) -> i32 {
    let text = required(p_text, "p_text").or_raise();
    encoding(p_model).count(text).min(i32::MAX as usize) as i32
}

/// Tokens of a chat example (`messages` array), OpenAI's framing included.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn count_message_tokens(p_messages: Option<Json>, p_model: default!(Option<&str>, "'gpt-4o-2024-08-06'")) -> i32 {
    let Json(m) = required(p_messages, "p_messages").or_raise();
    array(&m, "p_messages").or_raise();
    encoding(p_model).count_messages(&m).min(i32::MAX as usize) as i32
}

/// The epochs a job will train: `n_epochs` of the hyperparameters when it is a
/// number, else OpenAI's "auto" rule for that many training examples.
#[pg_extern(immutable, parallel_safe)]
// Runs no SQL: nothing in it resolves through search_path, so it is not pinned
// (a SET clause costs every call ~2 us; the pure functions run per row).
fn training_epochs(p_hyperparameters: Option<Json>, p_train_examples: Option<i64>) -> i32 {
    let h = required(p_hyperparameters, "p_hyperparameters").or_raise();
    super::require_object(&h.0, "p_hyperparameters").or_raise();
    let n = required(p_train_examples, "p_train_examples").or_raise();
    check::epochs(&h.0, n.max(0) as u64).min(i32::MAX as u64) as i32
}
