//! JSONL encoding of training examples in the provider's format.
//!
//! Examples are stored as `jsonb`. Postgres prints jsonb with a space after every
//! `:` and `,` (`{"role": "user", "content": "hi"}`), and escapes strings exactly
//! as JSON requires. The export needs compact JSON, so [`compact_into`] removes
//! the insignificant whitespace in one pass, copying string contents verbatim.
//! That keeps the export as cheap as printing the jsonb itself.

use memchr::memchr2;

/// Call `emit` with the runs of `json` that remain once every whitespace byte
/// outside strings is removed. Their concatenation is the compact JSON text.
///
/// `json` must be valid JSON text (as printed by Postgres' `jsonb_out` or any
/// JSON serializer); string contents, escapes included, are copied unchanged.
pub fn compact_runs(json: &[u8], mut emit: impl FnMut(&[u8])) {
    let bytes = json;
    let mut i = 0;
    let mut start = 0; // start of the pending run to copy
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip to the closing quote, honouring backslash escapes.
                i += 1;
                loop {
                    match memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(off) => {
                            i += off;
                            if bytes[i] == b'\\' {
                                i += 2; // the escaped byte is never a quote terminator
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\n' | b'\r' | b'\t' => {
                if start < i {
                    emit(&bytes[start..i]);
                }
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        emit(&bytes[start..]);
    }
}

/// Append `json` (valid JSON text) to `out` without insignificant whitespace.
pub fn compact_into(json: &str, out: &mut String) {
    let mut buf = std::mem::take(out).into_bytes();
    compact_runs(json.as_bytes(), |run| buf.extend_from_slice(run));
    // Runs split only at ASCII whitespace outside strings, so UTF-8 stays whole.
    *out = String::from_utf8(buf).expect("compaction splits only at ASCII bytes");
}

/// The chat-format JSONL line for a `messages` array, written into `out`
/// (which must hold at least `messages_json.len() + LINE_OVERHEAD` bytes).
/// Returns the number of bytes written.
pub fn chat_line_into_slice(messages_json: &[u8], out: &mut [u8]) -> usize {
    const PREFIX: &[u8] = b"{\"messages\":";
    out[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut n = PREFIX.len();
    compact_runs(messages_json, |run| {
        out[n..n + run.len()].copy_from_slice(run);
        n += run.len();
    });
    out[n] = b'}';
    n + 1
}

/// Bytes a chat line adds around its compacted `messages` array.
pub const LINE_OVERHEAD: usize = 13;

/// Compact JSON for a `messages` array, as one chat-format JSONL line:
/// `{"messages":[...]}`.
pub fn chat_line_from_messages_json(messages_json: &str) -> String {
    let mut out = String::with_capacity(messages_json.len() + 16);
    out.push_str("{\"messages\":");
    compact_into(messages_json, &mut out);
    out.push('}');
    out
}

/// Escape a string the way Postgres' `escape_json` does (used by `jsonb_out`):
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control bytes as `\u00XX`,
/// everything else (all of Unicode) as raw UTF-8. Used by tests to model what
/// the database hands to [`compact_into`].
pub fn pg_escape_json(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Print messages the way `jsonb_out` does: `": "` and `", "` separators.
    fn jsonb_style(messages: &[(String, String)]) -> String {
        let mut s = String::from("[");
        for (i, (role, content)) in messages.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str("{\"role\": ");
            pg_escape_json(role, &mut s);
            s.push_str(", \"content\": ");
            pg_escape_json(content, &mut s);
            s.push('}');
        }
        s.push(']');
        s
    }

    #[test]
    fn slice_writer_matches_string_writer() {
        let text = r#"[{"role": "user", "content": "h\u00e9 \"x\" , y"}, {"role": "assistant", "content": "ok 👍"}]"#;
        let mut buf = vec![0u8; text.len() + LINE_OVERHEAD];
        let n = chat_line_into_slice(text.as_bytes(), &mut buf);
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            chat_line_from_messages_json(text)
        );
    }

    #[test]
    fn compacts_jsonb_output() {
        let line = chat_line_from_messages_json(
            r#"[{"role": "system", "content": "You are Coach Decibel..."}, {"role": "user", "content": "What should I eat?"}, {"role": "assistant", "content": "Try..."}]"#,
        );
        assert_eq!(
            line,
            r#"{"messages":[{"role":"system","content":"You are Coach Decibel..."},{"role":"user","content":"What should I eat?"},{"role":"assistant","content":"Try..."}]}"#
        );
    }

    #[test]
    fn keeps_whitespace_and_escapes_inside_strings() {
        let line =
            chat_line_from_messages_json(r#"[{"role": "user", "content": "a \"quoted\" , : word\\ \n\t end  "}]"#);
        assert_eq!(
            line,
            r#"{"messages":[{"role":"user","content":"a \"quoted\" , : word\\ \n\t end  "}]}"#
        );
    }

    #[test]
    fn trailing_backslash_before_quote() {
        // A string ending in an escaped backslash must not swallow the closing quote.
        let line = chat_line_from_messages_json(r#"[{"content": "x\\", "role": "user"}]"#);
        assert_eq!(line, r#"{"messages":[{"content":"x\\","role":"user"}]}"#);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["messages"][0]["content"], "x\\");
    }

    #[test]
    fn nested_values_and_numbers() {
        let line = chat_line_from_messages_json(
            r#"[{"role": "assistant", "weight": 0, "content": "ok", "tool_calls": [{"id": "c1", "args": {"a": [1, 2.5, true, null]}}]}]"#,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["messages"][0]["tool_calls"][0]["args"]["a"],
            json!([1, 2.5, true, null])
        );
        assert!(!line.contains(' '));
    }

    #[test]
    fn hard_strings_round_trip() {
        let hard = [
            "quote \" backslash \\ slash /",
            "new\nline\r\ntab\t",
            "\u{1}\u{2}\u{7}\u{8}\u{b}\u{c}\u{1b}\u{1f}\u{7f}",
            "emoji 🏋️‍♀️ 👩🏽‍🚀 flags 🇯🇵",
            "RTL: مرحبا بك \u{200f} שלום",
            "combining: e\u{301} a\u{308}\u{323} Z\u{335}\u{33e}",
            "\u{2028}\u{2029} line separators",
            "",
            "   ",
        ];
        for s in hard {
            let text = jsonb_style(&[("user".into(), s.into()), ("assistant".into(), s.into())]);
            let line = chat_line_from_messages_json(&text);
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["messages"][0]["content"].as_str().unwrap(), s, "{s:?}");
            assert_eq!(v["messages"][1]["content"].as_str().unwrap(), s);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any string (Postgres text cannot hold U+0000, so neither can this) survives
        /// jsonb printing + compaction + a standard JSON parser byte for byte.
        #[test]
        fn round_trip_any_string(a in "[^\u{0}]*", b in any::<String>().prop_map(|s| s.replace('\0', ""))) {
            let text = jsonb_style(&[("system".into(), a.clone()), ("assistant".into(), b.clone())]);
            let line = chat_line_from_messages_json(&text);
            let mut buf = vec![0u8; text.len() + LINE_OVERHEAD];
            let n = chat_line_into_slice(text.as_bytes(), &mut buf);
            prop_assert_eq!(&buf[..n], line.as_bytes());
            prop_assert!(!line.contains('\n'));
            let v: Value = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(v["messages"][0]["content"].as_str().unwrap(), a.as_str());
            prop_assert_eq!(v["messages"][1]["content"].as_str().unwrap(), b.as_str());
            // The compact line equals what serde_json itself prints for the same value
            // modulo escaping choices: re-serialising the parsed value parses back equal.
            let again: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            prop_assert_eq!(again, v);
        }
    }
}
