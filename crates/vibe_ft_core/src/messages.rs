//! Validation of a training example's `messages` array (OpenAI chat form).
//!
//! The rules are the provider's: an array of message objects, each with a known
//! `role`; `content` a string (an assistant message that carries `tool_calls` may
//! omit it); only the keys the provider accepts for that role; `weight` (0 or 1)
//! only on assistant messages; `tool_call_id` on tool messages; and at least one
//! assistant message to train on.

use serde_json::{Map, Value};

/// Roles the provider accepts in chat fine-tuning data.
pub const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// What is wrong with a `messages` value. `Display` gives a message that names
/// the offending element, e.g. `messages[2].content must be a string`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagesError {
    #[error("messages must be a JSON array of message objects, got {0}")]
    NotArray(&'static str),
    #[error("messages must not be empty")]
    Empty,
    #[error("messages[{0}] must be an object, got {1}")]
    NotObject(usize, &'static str),
    #[error("messages[{0}] has no role")]
    MissingRole(usize),
    #[error("messages[{0}].role must be a string")]
    RoleNotString(usize),
    #[error("messages[{0}].role \"{1}\" is not one of system, developer, user, assistant, tool")]
    UnknownRole(usize, String),
    #[error("messages[{0}].content is missing")]
    MissingContent(usize),
    #[error("messages[{0}].content must be a string, got {1}")]
    ContentNotString(usize, &'static str),
    #[error("messages[{0}] has key \"{1}\", which a {2} message may not carry")]
    UnknownKey(usize, String, &'static str),
    #[error("messages[{0}].weight must be 0 or 1")]
    BadWeight(usize),
    #[error("messages[{0}] is a tool message without a string tool_call_id")]
    MissingToolCallId(usize),
    #[error("messages has no assistant message to train on")]
    NoAssistant,
}

/// A few facts about valid messages, for callers that want them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub messages: usize,
    pub assistant_messages: usize,
}

pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn allowed_keys(role: &str) -> &'static [&'static str] {
    match role {
        "assistant" => &[
            "role",
            "content",
            "name",
            "weight",
            "tool_calls",
            "function_call",
            "refusal",
        ],
        "tool" => &["role", "content", "tool_call_id", "name"],
        _ => &["role", "content", "name"],
    }
}

fn check_message(i: usize, m: &Map<String, Value>) -> Result<&'static str, MessagesError> {
    let role = match m.get("role") {
        None => return Err(MessagesError::MissingRole(i)),
        Some(Value::String(r)) => r.as_str(),
        Some(_) => return Err(MessagesError::RoleNotString(i)),
    };
    let role: &'static str = ROLES
        .iter()
        .copied()
        .find(|r| *r == role)
        .ok_or_else(|| MessagesError::UnknownRole(i, role.to_string()))?;
    let allowed = allowed_keys(role);
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(MessagesError::UnknownKey(i, k.clone(), role));
    }
    let has_tool_calls = matches!(m.get("tool_calls"), Some(Value::Array(a)) if !a.is_empty())
        || matches!(m.get("function_call"), Some(Value::Object(_)));
    match m.get("content") {
        Some(Value::String(_)) => {}
        None | Some(Value::Null) if role == "assistant" && has_tool_calls => {}
        None => return Err(MessagesError::MissingContent(i)),
        Some(other) => return Err(MessagesError::ContentNotString(i, json_type_name(other))),
    }
    if let Some(w) = m.get("weight") {
        if !(w.as_u64() == Some(0) || w.as_u64() == Some(1)) {
            return Err(MessagesError::BadWeight(i));
        }
    }
    if role == "tool" && !matches!(m.get("tool_call_id"), Some(Value::String(_))) {
        return Err(MessagesError::MissingToolCallId(i));
    }
    Ok(role)
}

/// Check a `messages` value against the provider's chat format.
pub fn validate(messages: &Value) -> Result<Summary, MessagesError> {
    let arr = match messages {
        Value::Array(a) => a,
        other => return Err(MessagesError::NotArray(json_type_name(other))),
    };
    if arr.is_empty() {
        return Err(MessagesError::Empty);
    }
    let mut assistant_messages = 0;
    for (i, m) in arr.iter().enumerate() {
        let obj = m.as_object().ok_or(MessagesError::NotObject(i, json_type_name(m)))?;
        if check_message(i, obj)? == "assistant" {
            assistant_messages += 1;
        }
    }
    if assistant_messages == 0 {
        return Err(MessagesError::NoAssistant);
    }
    Ok(Summary {
        messages: arr.len(),
        assistant_messages,
    })
}

/// Build a `messages` array from a system prompt (optional), a user message and
/// an assistant answer: the shape the seed's daily job produces.
pub fn from_turn(system: Option<&str>, user: &str, assistant: &str) -> Value {
    let mut v = Vec::with_capacity(3);
    if let Some(s) = system {
        v.push(serde_json::json!({"role": "system", "content": s}));
    }
    v.push(serde_json::json!({"role": "user", "content": user}));
    v.push(serde_json::json!({"role": "assistant", "content": assistant}));
    Value::Array(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        validate(&v).unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_seed_shape() {
        let v = from_turn(Some("You are Coach Decibel"), "What should I eat?", "Try oats.");
        assert_eq!(
            validate(&v).unwrap(),
            Summary {
                messages: 3,
                assistant_messages: 1
            }
        );
        assert_eq!(from_turn(None, "u", "a").as_array().unwrap().len(), 2);
    }

    #[test]
    fn accepts_weights_tools_and_multi_turn() {
        let v = json!([
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1", "weight": 0},
            {"role": "user", "content": "u2"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function"}]},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "assistant", "content": "a2", "weight": 1}
        ]);
        assert_eq!(validate(&v).unwrap().assistant_messages, 3);
    }

    #[test]
    fn rejects_each_malformation_with_a_named_element() {
        assert_eq!(
            err(json!({"role": "user"})),
            "messages must be a JSON array of message objects, got object"
        );
        assert_eq!(err(json!([])), "messages must not be empty");
        assert_eq!(err(json!(["hi"])), "messages[0] must be an object, got string");
        assert_eq!(err(json!([{"content": "x"}])), "messages[0] has no role");
        assert_eq!(
            err(json!([{"role": 1, "content": "x"}])),
            "messages[0].role must be a string"
        );
        assert_eq!(
            err(json!([{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}])),
            "messages[1].role \"robot\" is not one of system, developer, user, assistant, tool"
        );
        assert_eq!(err(json!([{"role": "user"}])), "messages[0].content is missing");
        assert_eq!(
            err(json!([{"role": "user", "content": "u"}, {"role": "assistant", "content": 5}])),
            "messages[1].content must be a string, got number"
        );
        assert_eq!(
            err(json!([{"role": "assistant", "content": ["part"]}])),
            "messages[0].content must be a string, got array"
        );
        assert_eq!(
            err(json!([{"role": "user", "content": "u", "weight": 1}])),
            "messages[0] has key \"weight\", which a user message may not carry"
        );
        assert_eq!(
            err(json!([{"role": "assistant", "content": "a", "weight": 2}])),
            "messages[0].weight must be 0 or 1"
        );
        assert_eq!(
            err(json!([{"role": "assistant", "content": "a", "weight": "1"}])),
            "messages[0].weight must be 0 or 1"
        );
        assert_eq!(
            err(json!([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "r"}])),
            "messages[1] is a tool message without a string tool_call_id"
        );
        assert_eq!(
            err(json!([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])),
            "messages has no assistant message to train on"
        );
        assert_eq!(
            err(json!([{"role": "assistant", "content": null}])),
            "messages[0].content must be a string, got null"
        );
    }
}
