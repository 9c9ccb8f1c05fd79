//! From users' ratings to training data: the per-row pieces that
//! `public.submit_feedback`, the feedback trigger and `vibe_ft.generate_examples`
//! (plpgsql in `sql/finalize.sql`, set-based so a million rows stream through in
//! flat memory) call, plus redaction and token counting for callers.

use crate::core::feedback::{self, Rating, Scoring};
use crate::core::{check, messages, redact, tokens::Encoding};
use crate::error::{required, OrRaise, VibeError};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// Raise 22023 unless the conversation and the answer make a valid training
/// example. Used by the feedback trigger, so imports are checked too.
#[pg_extern(immutable, parallel_safe)]
fn check_feedback(p_messages: Option<JsonB>, p_answer: Option<&str>) -> bool {
    let JsonB(conv) = required(p_messages, "messages").or_raise();
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

/// The 0..10 quality score of a rating: thumbs up / down score `p_up` /
/// `p_down`, n stars score `p_stars_scores[n]`; both given: their mean.
/// NULL when there is no rating.
#[pg_extern(immutable, parallel_safe)]
fn feedback_score(
    p_thumbs_up: Option<bool>,
    p_stars: Option<i32>,
    p_up: default!(f64, 8.0),
    p_down: default!(f64, 2.0),
    p_stars_scores: default!(Vec<f64>, "'{0,2.5,5,7.5,10}'"),
) -> Option<f64> {
    if p_thumbs_up.is_none() && p_stars.is_none() {
        return None;
    }
    let stars: [f64; 5] = p_stars_scores.as_slice().try_into().unwrap_or_else(|_| {
        VibeError::InvalidArgument(format!(
            "p_stars_scores must have 5 values, got {}",
            p_stars_scores.len()
        ))
        .raise()
    });
    let stars_u8 = match p_stars {
        None => None,
        Some(s) => Some(u8::try_from(s).unwrap_or(0)),
    };
    Scoring {
        thumbs_up: p_up,
        thumbs_down: p_down,
        stars,
    }
    .score(Rating {
        thumbs_up: p_thumbs_up,
        stars: stars_u8,
    })
    .map_err(|e| VibeError::OutOfRange(e.to_string()))
    .map(Some)
    .or_raise()
}

/// The training example of a rated answer: `{"messages": [...], "redactions":
/// {"emails","cards","phones"}}`. Earlier assistant answers are context
/// (`"weight": 0`), the rated answer is trained (`"weight": 1`); with
/// `p_redact`, personal data in every message is replaced first.
#[pg_extern(immutable, parallel_safe)]
fn feedback_example(p_messages: JsonB, p_answer: &str, p_redact: bool) -> JsonB {
    let conv = p_messages.0.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let m = feedback::training_messages(conv, p_answer);
    let (m, counts) = if p_redact {
        redact::messages(&m)
    } else {
        (m, redact::Counts::default())
    };
    JsonB(json!({
        "messages": m,
        "redactions": {"emails": counts.emails, "cards": counts.cards, "phones": counts.phones},
    }))
}

/// Replace email addresses, card numbers (Luhn-checked) and phone numbers in a
/// text with `[email]`, `[card]`, `[phone]`.
#[pg_extern(immutable, parallel_safe)]
fn redact_text(p_text: &str) -> String {
    redact::text(p_text).0.into_owned()
}

/// `redact_text` applied to every string `content` of a messages array.
#[pg_extern(immutable, parallel_safe)]
fn redact_messages(p_messages: JsonB) -> JsonB {
    JsonB(redact::messages(&p_messages.0).0)
}

/// The compact preference (DPO) JSONL line of a pair:
/// `{"input":{"messages":[...]},"preferred_output":[...],"non_preferred_output":[...]}`.
#[pg_extern(immutable, parallel_safe)]
fn preference_line(p_input: JsonB, p_preferred: &str, p_non_preferred: &str) -> String {
    let prefix = p_input.0.as_array().cloned().unwrap_or_default();
    let pair = feedback::Pair {
        prefix,
        preferred: p_preferred.to_string(),
        non_preferred: p_non_preferred.to_string(),
    };
    feedback::dpo_line(&pair).to_string()
}

fn encoding(model: Option<&str>) -> Encoding {
    Encoding::for_model(model.unwrap_or("gpt-4o-2024-08-06"))
}

/// Tokens of a text with the model's encoding (`o200k_base` for gpt-4o and gpt-4.1).
#[pg_extern(immutable, parallel_safe)]
fn count_tokens(p_text: &str, p_model: default!(Option<&str>, "'gpt-4o-2024-08-06'")) -> i32 {
    encoding(p_model).count(p_text) as i32
}

/// Tokens of a chat example (`messages` array), OpenAI's framing included.
#[pg_extern(immutable, parallel_safe)]
fn count_message_tokens(p_messages: JsonB, p_model: default!(Option<&str>, "'gpt-4o-2024-08-06'")) -> i32 {
    encoding(p_model).count_messages(&p_messages.0) as i32
}

/// The epochs a job will train: `n_epochs` of the hyperparameters when it is a
/// number, else OpenAI's "auto" rule for that many training examples.
#[pg_extern(immutable, parallel_safe)]
fn training_epochs(p_hyperparameters: JsonB, p_train_examples: i64) -> i32 {
    check::epochs(&p_hyperparameters.0, p_train_examples.max(0) as u64) as i32
}
