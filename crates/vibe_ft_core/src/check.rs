//! Checks a training file line by line before any money is spent: the
//! provider's format rules (chat or preference JSONL), the special-token
//! strings that make a job fail, and real token counts against the
//! per-example limit past which the provider silently cuts the answer.
//! The runner feeds it the very lines it uploads; `vibe_ft.validate_dataset`
//! feeds it the same lines from SQL.

use crate::messages::{self, json_type_name};
use crate::tokens::{special_tokens_in, Encoding, EXAMPLE_TOKEN_LIMIT};
use serde_json::{json, Value};

/// At least this many training examples, or the provider fails the job
/// (`invalid_n_examples`).
pub const MIN_EXAMPLES: u64 = 10;

/// Whose rules a file is checked against. OpenAI's and Azure's are the same;
/// Together's are stricter (roles alternate, no extra top-level keys, string
/// contents, message weights 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rules {
    #[default]
    OpenAi,
    Together,
}

impl Rules {
    pub fn for_provider(provider: &str) -> Rules {
        match provider {
            "together" => Rules::Together,
            _ => Rules::OpenAi,
        }
    }
}

/// Problems listed one by one in a report; past this, only counted.
pub const LISTED_PROBLEMS: usize = 100;

/// What a line must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"messages":[...]}` (supervised fine-tuning).
    Chat,
    /// `{"input":{"messages":[...]},"preferred_output":[...],"non_preferred_output":[...]}` (DPO).
    Preference,
}

/// One problem of one example: `id` is the example's id, `line` its 1-based
/// line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub id: i64,
    pub line: u64,
    pub message: String,
}

/// What a checked file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub examples: u64,
    /// Tokens of every example, framing included.
    pub tokens: u64,
    /// What training reads: each example capped at the limit.
    pub billable_tokens: u64,
    pub max_example_tokens: u64,
    pub over_limit: u64,
    /// Examples with at least one problem (over the limit included).
    pub with_problems: u64,
    /// The first `LISTED_PROBLEMS` problems.
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.with_problems == 0
    }

    /// The problems as a JSON array of `{"example_id","line","problem"}`.
    pub fn problems_json(&self) -> Value {
        Value::Array(
            self.problems
                .iter()
                .map(|p| json!({"example_id": p.id, "line": p.line, "problem": p.message}))
                .collect(),
        )
    }

    /// The whole report as JSON (a job event's data): counts, the listed
    /// problems and the encoding the tokens were counted with.
    pub fn to_json(&self, encoding: Encoding, tokens_exact: bool) -> Value {
        json!({
            "examples": self.examples, "tokens": self.tokens, "billable_tokens": self.billable_tokens,
            "max_example_tokens": self.max_example_tokens, "examples_over_limit": self.over_limit,
            "examples_with_problems": self.with_problems, "problems": self.problems_json(),
            "encoding": encoding.name(), "tokens_exact": tokens_exact,
        })
    }

    /// One sentence for a job's error message: counts and the first problems.
    pub fn summary(&self, what: &str) -> String {
        let mut s = format!(
            "{what}: {} of {} example(s) have problems ({} over the {} token limit)",
            self.with_problems, self.examples, self.over_limit, EXAMPLE_TOKEN_LIMIT
        );
        for p in self.problems.iter().take(3) {
            s.push_str(&format!("; example {} (line {}): {}", p.id, p.line, p.message));
        }
        if self.with_problems > 3 {
            s.push_str("; ...");
        }
        s
    }
}

/// Feeds on lines, one at a time; memory stays flat (only the listed problems are kept).
pub struct Checker {
    encoding: Encoding,
    format: Format,
    rules: Rules,
    limit: u64,
    report: Report,
}

impl Checker {
    pub fn new(encoding: Encoding, format: Format) -> Checker {
        Checker {
            encoding,
            format,
            rules: Rules::OpenAi,
            limit: EXAMPLE_TOKEN_LIMIT as u64,
            report: Report::default(),
        }
    }

    /// Check against this provider's rules (OpenAI's by default).
    pub fn with_rules(mut self, rules: Rules) -> Checker {
        self.rules = rules;
        self
    }

    /// A different per-example limit (tests; providers with other limits).
    pub fn with_limit(mut self, limit: u64) -> Checker {
        self.limit = limit;
        self
    }

    /// Check one line (without its newline); `id` names the example in problems.
    pub fn line(&mut self, id: i64, line: &[u8]) {
        self.report.examples += 1;
        let n = self.report.examples;
        let mut problems = Vec::new();
        let tokens = match serde_json::from_slice::<Value>(line) {
            Err(e) => {
                problems.push(format!("not valid JSON: {e}"));
                0
            }
            Ok(v) => match self.format {
                Format::Chat => self.chat(&v, &mut problems),
                Format::Preference => self.preference(&v, &mut problems),
            },
        };
        let r = &mut self.report;
        r.tokens += tokens;
        r.billable_tokens += tokens.min(self.limit);
        r.max_example_tokens = r.max_example_tokens.max(tokens);
        if tokens > self.limit {
            r.over_limit += 1;
            problems.push(format!(
                "{tokens} tokens, over the {} token limit: the provider would cut the end, losing the answer",
                self.limit
            ));
        }
        if !problems.is_empty() {
            r.with_problems += 1;
            for message in problems {
                if r.problems.len() < LISTED_PROBLEMS {
                    r.problems.push(Problem { id, line: n, message });
                }
            }
        }
    }

    pub fn finish(self) -> Report {
        self.report
    }

    fn object<'v>(v: &'v Value, allowed: &[&str], problems: &mut Vec<String>) -> Option<&'v serde_json::Map<String, Value>> {
        let Some(o) = v.as_object() else {
            problems.push(format!("a line must be a JSON object, got {}", json_type_name(v)));
            return None;
        };
        for k in o.keys().filter(|k| !allowed.contains(&k.as_str())) {
            problems.push(format!("unknown key \"{k}\""));
        }
        Some(o)
    }

    fn specials(v: &Value, problems: &mut Vec<String>) {
        let found = special_tokens_in(v);
        if !found.is_empty() {
            problems.push(format!(
                "contains the special token string(s) {}: the provider fails the job",
                found.join(", ")
            ));
        }
    }

    fn chat(&self, v: &Value, problems: &mut Vec<String>) -> u64 {
        let allowed: &[&str] = match self.rules {
            Rules::OpenAi => &["messages", "tools", "parallel_tool_calls"],
            Rules::Together => &["messages", "tools", "weight"],
        };
        let Some(o) = Self::object(v, allowed, problems) else {
            return 0;
        };
        let Some(m) = o.get("messages") else {
            problems.push("missing \"messages\"".into());
            return 0;
        };
        if let Err(e) = messages::validate(m) {
            problems.push(e.to_string());
        } else if self.rules == Rules::Together {
            together_messages(m, problems);
        }
        if self.rules == Rules::Together && o.get("weight").is_some_and(|w| !w.is_number()) {
            problems.push("Together: a top-level \"weight\" must be a number".into());
        }
        Self::specials(v, problems);
        self.encoding.count_messages(m) as u64
    }

    fn preference(&self, v: &Value, problems: &mut Vec<String>) -> u64 {
        let Some(o) = Self::object(v, &["input", "preferred_output", "non_preferred_output"], problems) else {
            return 0;
        };
        let input = match o.get("input").and_then(|i| i.get("messages")).and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a,
            _ => {
                problems.push("\"input\" must be an object with a non-empty \"messages\" array".into());
                return 0;
            }
        };
        if input.iter().any(|m| m.get("role").and_then(Value::as_str) == Some("assistant") && m.get("weight").is_some()) {
            problems.push("\"weight\" is not allowed in preference input".into());
        }
        if self.rules == Rules::Together {
            let input_value = Value::Array(input.clone());
            together_messages(&input_value, problems);
            if input.last().and_then(|m| m.get("role")).and_then(Value::as_str) == Some("assistant") {
                problems.push("Together: the last input message must not be from the assistant".into());
            }
            for key in ["preferred_output", "non_preferred_output"] {
                if let Some([m]) = o.get(key).and_then(Value::as_array).map(Vec::as_slice) {
                    if !m.get("content").is_some_and(Value::is_string) {
                        problems.push(format!("Together: \"{key}\" must be one assistant message with string content"));
                    }
                }
            }
        }
        let mut tokens = 0;
        for key in ["preferred_output", "non_preferred_output"] {
            let out = match o.get(key).and_then(Value::as_array) {
                Some(a) if a.len() == 1 && a[0].get("role").and_then(Value::as_str) == Some("assistant") => a,
                _ => {
                    problems.push(format!("\"{key}\" must be an array of exactly one assistant message"));
                    continue;
                }
            };
            // The input followed by this answer must be a valid conversation.
            let seq = Value::Array(input.iter().chain(out.iter()).cloned().collect());
            if let Err(e) = messages::validate(&seq) {
                problems.push(format!("{key} with its input: {e}"));
            }
            tokens += self.encoding.count_messages(&seq) as u64;
        }
        Self::specials(v, problems);
        tokens
    }
}

/// Together's conversation rules (its SDK's `check_file`), beyond OpenAI's:
/// no two messages of the same role in a row ("after the optional system
/// message, roles must alternate"), contents a string or a list of parts,
/// message weights 0 or 1.
fn together_messages(messages: &Value, problems: &mut Vec<String>) {
    let Some(arr) = messages.as_array() else { return };
    let mut previous: Option<&str> = None;
    for (i, m) in arr.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if previous == Some(role) {
            problems.push(format!(
                "Together: messages {} and {i} are both {role}: after the optional system message, roles must \
                 alternate between user and assistant (merge the two turns)",
                i - 1
            ));
        }
        if !m.get("content").is_some_and(|c| c.is_string() || c.is_array()) && m.get("tool_calls").is_none() {
            problems.push(format!("Together: message {i} must have content (a string or a list of parts)"));
        }
        if let Some(w) = m.get("weight") {
            if w.as_u64().is_none_or(|w| w > 1) {
                problems.push(format!("Together: message {i} has weight {w}; it must be the integer 0 or 1"));
            }
        }
        previous = Some(role);
    }
}

/// OpenAI's documented choice of epochs when `n_epochs` is "auto": 3, raised
/// for small files to reach 100 example passes (at most 25), lowered for large
/// ones to stay near 25,000 (at least 1).
pub fn auto_epochs(train_examples: u64) -> u64 {
    let n = train_examples.max(1);
    if n.saturating_mul(3) < 100 {
        (100 / n).min(25)
    } else if n.saturating_mul(3) > 25_000 {
        (25_000 / n).max(1)
    } else {
        3
    }
}

/// The epochs a job will run: the hyperparameter when it is a number, else `auto_epochs`.
pub fn epochs(hyperparameters: &Value, train_examples: u64) -> u64 {
    match hyperparameters.get("n_epochs").and_then(Value::as_u64) {
        Some(n) if n > 0 => n,
        _ => auto_epochs(train_examples),
    }
}

/// The epochs a provider will train: `n_epochs` when set; otherwise OpenAI's
/// "auto" rule, or Together's default of one epoch.
pub fn epochs_for(provider: &str, hyperparameters: &Value, train_examples: u64) -> u64 {
    match (provider, hyperparameters.get("n_epochs").and_then(Value::as_u64)) {
        ("together", Some(n)) if n > 0 => n,
        ("together", _) => 1,
        _ => epochs(hyperparameters, train_examples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_per_provider() {
        let auto = serde_json::json!({"n_epochs": "auto"});
        assert_eq!(epochs_for("openai", &auto, 12), 8);
        assert_eq!(epochs_for("together", &auto, 12), 1);
        assert_eq!(epochs_for("together", &serde_json::json!({"n_epochs": 3}), 12), 3);
        assert_eq!(epochs_for("azure", &serde_json::json!({}), 12), 8);
    }

    fn check(format: Format, lines: &[&str]) -> Report {
        let mut c = Checker::new(Encoding::O200kBase, format);
        for (i, l) in lines.iter().enumerate() {
            c.line(i as i64 + 100, l.as_bytes());
        }
        c.finish()
    }

    #[test]
    fn good_chat_lines_count_tokens() {
        let line = r#"{"messages":[{"role":"user","content":"hello world"},{"role":"assistant","content":"hello world","weight":1}]}"#;
        let r = check(Format::Chat, &[line, line]);
        assert!(r.is_valid(), "{r:?}");
        let one = Encoding::O200kBase.count_messages(&serde_json::from_str::<Value>(line).unwrap()["messages"]) as u64;
        assert_eq!((r.examples, r.tokens, r.max_example_tokens), (2, 2 * one, one));
    }

    #[test]
    fn each_format_rule_is_reported_per_example() {
        let cases = [
            ("[1]", "must be a JSON object"),
            ("{\"messages\":[]}", "must not be empty"),
            ("{\"msgs\":[]}", "unknown key \"msgs\""),
            ("{\"tools\":[]}", "missing \"messages\""),
            (r#"{"messages":[{"role":"user","content":"hi"}]}"#, "no assistant"),
            (r#"{"messages":[{"role":"bot","content":"hi"}]}"#, "\"bot\" is not one of"),
            (r#"{"messages":[{"role":"user","content":"hi","weight":1},{"role":"assistant","content":"x"}]}"#, "key \"weight\""),
            (r#"{"messages":[{"role":"user","content":"say <|endoftext|>"},{"role":"assistant","content":"x"}]}"#, "<|endoftext|>"),
            ("{\"messages\":", "not valid JSON"),
        ];
        for (line, want) in cases {
            let r = check(Format::Chat, &[line]);
            assert_eq!(r.with_problems, 1, "{line}");
            assert!(r.problems[0].message.contains(want), "{line}: {:?}", r.problems);
            assert_eq!((r.problems[0].id, r.problems[0].line), (100, 1));
        }
    }

    #[test]
    fn the_token_limit_is_checked_with_real_counts() {
        let text = "word ".repeat(300);
        let line = json!({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}).to_string();
        let mut c = Checker::new(Encoding::O200kBase, Format::Chat).with_limit(200);
        c.line(1, line.as_bytes());
        c.line(2, br#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}"#);
        let r = c.finish();
        assert_eq!((r.over_limit, r.with_problems), (1, 1));
        assert!(r.max_example_tokens > 300);
        assert!(r.billable_tokens < r.tokens && r.billable_tokens > 200);
        assert!(r.problems[0].message.contains("over the 200 token limit"));
        assert!(r.summary("training file").contains("1 of 2 example(s)"));
    }

    #[test]
    fn preference_lines() {
        let good = r#"{"input":{"messages":[{"role":"user","content":"Hi"}]},"preferred_output":[{"role":"assistant","content":"Hello!"}],"non_preferred_output":[{"role":"assistant","content":"What."}]}"#;
        let r = check(Format::Preference, &[good]);
        assert!(r.is_valid(), "{r:?}");
        assert!(r.tokens > 0);
        let bad = [
            (r#"{"input":{"messages":[]},"preferred_output":[],"non_preferred_output":[]}"#, "non-empty \"messages\""),
            (r#"{"input":{"messages":[{"role":"user","content":"Hi"}]},"preferred_output":[{"role":"user","content":"x"}],"non_preferred_output":[{"role":"assistant","content":"y"}]}"#, "exactly one assistant"),
            (r#"{"input":{"messages":[{"role":"user","content":"Hi"}]},"preferred_completion":[]}"#, "unknown key \"preferred_completion\""),
        ];
        for (line, want) in bad {
            let r = check(Format::Preference, &[line]);
            assert!(!r.is_valid());
            assert!(r.problems.iter().any(|p| p.message.contains(want)), "{line}: {:?}", r.problems);
        }
        // A chat line is not a preference line, and vice versa.
        assert!(!check(Format::Chat, &[good]).is_valid());
    }

    #[test]
    fn only_the_first_problems_are_kept() {
        let lines = vec!["[]"; LISTED_PROBLEMS + 50];
        let r = check(Format::Chat, &lines);
        assert_eq!(r.with_problems, (LISTED_PROBLEMS + 50) as u64);
        assert_eq!(r.problems.len(), LISTED_PROBLEMS);
    }

    #[test]
    fn epochs_like_openai() {
        assert_eq!(auto_epochs(10), 10);
        assert_eq!(auto_epochs(3), 25);
        assert_eq!(auto_epochs(50), 3);
        assert_eq!(auto_epochs(8000), 3);
        assert_eq!(auto_epochs(10_000), 2);
        assert_eq!(auto_epochs(1_000_000), 1);
        assert_eq!(epochs(&json!({"n_epochs": 4}), 10), 4);
        assert_eq!(epochs(&json!({"n_epochs": "auto"}), 50), 3);
        assert_eq!(epochs(&json!({}), 50), 3);
    }
}
