//! Real token counts for training examples, with the base model's encoding
//! (tiktoken-rs ships OpenAI's encoding files): `o200k_base` for gpt-4o,
//! gpt-4.1 and later models, `cl100k_base` for gpt-4 and gpt-3.5. A chat example
//! costs its tokens plus OpenAI's framing: 3 per message, 1 more for a `name`,
//! 3 per example. Also: the strings that make a job fail (special tokens) and
//! the per-example limit past which the provider silently cuts the answer.

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// OpenAI's per-example limit for gpt-4o-2024-08-06, gpt-4o-mini-2024-07-18 and gpt-4.1*.
pub const EXAMPLE_TOKEN_LIMIT: usize = 65_536;

/// Strings that are special tokens of the encodings: a training file
/// containing one fails at the provider.
pub const SPECIAL_TOKENS: [&str; 6] = [
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|endofprompt|>",
    "<|im_start|>",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

impl Encoding {
    /// The encoding of a base model (or of the base of a fine-tuned one, `ft:<base>:...`).
    pub fn for_model(model: &str) -> Encoding {
        let base = model.strip_prefix("ft:").unwrap_or(model);
        if base.starts_with("gpt-4o")
            || base.starts_with("gpt-4.1")
            || base.starts_with("gpt-5")
            || base.starts_with('o')
        {
            Encoding::O200kBase
        } else if base.starts_with("gpt-4") || base.starts_with("gpt-3.5") {
            Encoding::Cl100kBase
        } else {
            Encoding::O200kBase
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// Tokens of a text, special-token strings counted as ordinary text.
    pub fn count(self, text: &str) -> usize {
        self.bpe().encode_ordinary(text).len()
    }

    /// Tokens of a chat example (`messages` array), framing included.
    pub fn count_messages(self, messages: &Value) -> usize {
        let Some(items) = messages.as_array() else { return 0 };
        let mut n = 3;
        for m in items {
            n += 3;
            if let Some(obj) = m.as_object() {
                for (k, v) in obj {
                    if let Some(s) = v.as_str() {
                        n += self.count(s);
                        if k == "name" {
                            n += 1;
                        }
                    }
                }
            }
        }
        n
    }
}

/// The special-token strings found in any string of an example.
pub fn special_tokens_in(v: &Value) -> Vec<&'static str> {
    let mut found = Vec::new();
    fn walk(v: &Value, found: &mut Vec<&'static str>) {
        match v {
            Value::String(s) => {
                for t in SPECIAL_TOKENS {
                    if s.contains(t) && !found.contains(&t) {
                        found.push(t);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
            Value::Object(o) => o.values().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    walk(v, &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodings_by_model() {
        assert_eq!(Encoding::for_model("gpt-4o-2024-08-06"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("gpt-4.1-mini-2025-04-14"), Encoding::O200kBase);
        assert_eq!(
            Encoding::for_model("ft:gpt-4o-mini-2024-07-18:org:coach:abc"),
            Encoding::O200kBase
        );
        assert_eq!(Encoding::for_model("gpt-4-0613"), Encoding::Cl100kBase);
        assert_eq!(Encoding::for_model("gpt-3.5-turbo"), Encoding::Cl100kBase);
    }

    #[test]
    fn counts_text_and_examples() {
        let e = Encoding::O200kBase;
        assert_eq!(e.count("hello world"), 2);
        assert_eq!(e.count(""), 0);
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        // A special token's string is text here (what matters is that it is flagged).
        assert!(e.count("<|endoftext|>") > 1);
        let ex = json!([{"role": "user", "content": "hello world"}, {"role": "assistant", "content": "hello world", "weight": 1}]);
        // 3 per example + per message (3 + role + content)
        let role = |r| e.count(r);
        assert_eq!(
            e.count_messages(&ex),
            3 + (3 + role("user") + 2) + (3 + role("assistant") + 2)
        );
        let named = json!([{"role": "user", "content": "hi", "name": "bob"}]);
        assert_eq!(
            e.count_messages(&named),
            3 + 3 + role("user") + e.count("hi") + e.count("bob") + 1
        );
    }

    #[test]
    fn flags_special_tokens_anywhere() {
        let ex = json!([{"role": "user", "content": "say <|endoftext|> twice <|endoftext|>"},
                        {"role": "assistant", "content": "ok", "tool_calls": [{"function": {"arguments": "<|fim_prefix|>"}}]}]);
        assert_eq!(special_tokens_in(&ex), vec!["<|endoftext|>", "<|fim_prefix|>"]);
        assert!(special_tokens_in(&json!([{"role": "user", "content": "<| endoftext |>"}])).is_empty());
    }
}
