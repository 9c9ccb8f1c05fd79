//! Real token counts for training examples, with the base model's encoding
//! (tiktoken-rs ships OpenAI's encoding files): `o200k_base` for gpt-4o,
//! gpt-4.1 and later models, `cl100k_base` for gpt-4 and gpt-3.5. A chat example
//! costs its tokens plus OpenAI's framing: 3 per message, 1 more for a `name`,
//! 3 per example. Also: the strings that make a job fail (special tokens) and
//! the per-example limit past which the provider silently cuts the answer.
//!
//! Counting is OpenAI's algorithm exactly (split with the encoding's pattern,
//! then byte-pair merges, lowest rank first, leftmost on ties) over OpenAI's
//! rank files (`assets/`, the files tiktoken-rs ships; their SHA-256 equal the
//! hashes Python tiktoken checks), but faster than tiktoken-rs and in a
//! fraction of its memory (about 8 MB for o200k_base against tiktoken-rs'
//! 49 MB, which matters in the worker): the pattern runs on
//! the `regex` crate's automata instead of a backtracking engine (its one
//! look-ahead, `\s+(?!\S)`, is applied by hand), and long pieces merge through a
//! heap instead of rescanning, so a 5,000-character run is not quadratic.
//! Equality with tiktoken-rs is property-tested here and with Python's
//! `tiktoken` on a corpus (tests/tokens/compare.py).

use base64::Engine;
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::LazyLock;

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

    /// Whether counts with [`Encoding::for_model`] are the provider's own: true
    /// for OpenAI's models (their tokenizers ship with vibe_ft), false for
    /// open-weight models (Llama, Qwen, Mistral, gpt-oss), whose tokenizers
    /// do not (licence, size): their counts are estimates, and say so.
    pub fn exact_for(model: &str) -> bool {
        let base = model.strip_prefix("ft:").unwrap_or(model);
        let o_series = base.len() > 1 && base.starts_with('o') && base.as_bytes()[1].is_ascii_digit();
        (base.starts_with("gpt-") && !base.starts_with("gpt-oss")) || o_series
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    /// tiktoken-rs' own encoder (the reference the tests compare with).
    #[cfg(test)]
    fn reference(self) -> &'static tiktoken_rs::CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    fn counter(self) -> &'static Counter {
        static O200K: LazyLock<Counter> = LazyLock::new(|| Counter::new(Encoding::O200kBase));
        static CL100K: LazyLock<Counter> = LazyLock::new(|| Counter::new(Encoding::Cl100kBase));
        match self {
            Encoding::O200kBase => &O200K,
            Encoding::Cl100kBase => &CL100K,
        }
    }

    /// Tokens of a text, special-token strings counted as ordinary text.
    pub fn count(self, text: &str) -> usize {
        self.counter().count(text)
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

/// OpenAI's split patterns without their last two alternatives,
/// `\s+(?!\S)|\s+`, which become one `\s+` trimmed by hand (see `Counter::count`).
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+"
);
const CL100K_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+";

/// Pieces longer than this merge through a heap; shorter ones by rescanning,
/// which is faster when there are few parts.
const HEAP_FROM: usize = 64;

struct Counter {
    /// Token bytes (slices of one buffer that lives as long as the process) to rank.
    ranks: FxHashMap<&'static [u8], u32>,
    split: regex::Regex,
}

/// OpenAI's rank files: one `base64(token bytes) rank` per line.
static O200K_RANKS: &[u8] = include_bytes!("../assets/o200k_base.tiktoken");
static CL100K_RANKS: &[u8] = include_bytes!("../assets/cl100k_base.tiktoken");

/// Decode a rank file into one buffer of token bytes and a table of slices
/// of it: two allocations in all, not one per token.
fn load_ranks(file: &[u8]) -> FxHashMap<&'static [u8], u32> {
    let lines = || file.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let mut bytes = Vec::with_capacity(file.len() * 3 / 4);
    let mut spans = Vec::with_capacity(lines().count());
    for line in lines() {
        let space = line.iter().position(|b| *b == b' ').expect("rank file: 'token rank' lines");
        let start = bytes.len();
        base64::engine::general_purpose::STANDARD
            .decode_vec(&line[..space], &mut bytes)
            .expect("rank file: base64 tokens");
        let rank: u32 = std::str::from_utf8(&line[space + 1..])
            .ok()
            .and_then(|r| r.trim().parse().ok())
            .expect("rank file: numeric ranks");
        spans.push((start, bytes.len(), rank));
    }
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let mut ranks = FxHashMap::with_capacity_and_hasher(spans.len(), Default::default());
    for (a, b, rank) in spans {
        ranks.insert(&bytes[a..b], rank);
    }
    ranks
}

impl Counter {
    fn new(encoding: Encoding) -> Counter {
        let (file, pattern) = match encoding {
            Encoding::O200kBase => (O200K_RANKS, O200K_PATTERN),
            Encoding::Cl100kBase => (CL100K_RANKS, CL100K_PATTERN),
        };
        let ranks = load_ranks(file);
        Counter {
            ranks,
            // A larger lazy-DFA cache: the Unicode classes of these patterns make
            // many states, and a thrashing cache falls back to a slower engine.
            // Anchored: every position starts a piece, so each search starts
            // where the last piece ended and needs no reverse scan for its start.
            split: regex::RegexBuilder::new(&format!("^(?:{pattern})"))
                .dfa_size_limit(64 << 20)
                .build()
                .expect("valid split pattern"),
        }
    }

    fn rank(&self, bytes: &[u8]) -> u32 {
        self.ranks.get(bytes).copied().unwrap_or(u32::MAX)
    }

    fn count(&self, text: &str) -> usize {
        let mut n = 0;
        let mut at = 0;
        while let Some(m) = self.split.find(&text[at..]) {
            if m.is_empty() {
                break; // cannot happen (every alternative consumes), but never loop
            }
            let (start, mut end) = (at + m.start(), at + m.end());
            let piece = m.as_str();
            // `\s+(?!\S)` before `\s+`: a run of whitespace followed by a
            // non-space character leaves its last character to the next piece
            // (unless the run is one character, which `\s+` then takes whole).
            // Only the final `\s+` alternative yields whitespace without a
            // line break, so only such pieces are trimmed.
            if piece.chars().all(char::is_whitespace)
                && !piece.contains(['\r', '\n'])
                && text[end..].chars().next().is_some_and(|c| !c.is_whitespace())
            {
                if let Some((last, _)) = piece.char_indices().nth(1).and(piece.char_indices().last()) {
                    end = start + last;
                }
            }
            n += self.piece_tokens(&text.as_bytes()[start..end]);
            at = end;
        }
        n
    }

    fn piece_tokens(&self, piece: &[u8]) -> usize {
        if piece.len() <= 1 || self.ranks.contains_key(piece) {
            return piece.len().min(1);
        }
        if piece.len() < HEAP_FROM {
            self.merge_scan(piece)
        } else {
            self.merge_heap(piece)
        }
    }

    /// tiktoken's merge: parts as (start, rank of the pair starting there);
    /// repeatedly merge the lowest-ranked pair, the leftmost on ties.
    fn merge_scan(&self, piece: &[u8]) -> usize {
        let mut parts: Vec<(usize, u32)> = (0..piece.len() - 1)
            .map(|i| (i, self.rank(&piece[i..i + 2])))
            .collect();
        parts.push((piece.len() - 1, u32::MAX));
        parts.push((piece.len(), u32::MAX));
        let rank_at = |parts: &Vec<(usize, u32)>, i: usize| {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
            } else {
                u32::MAX
            }
        };
        loop {
            let (mut min, mut at) = (u32::MAX, 0);
            for (i, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
                if r < min {
                    (min, at) = (r, i);
                }
            }
            if min == u32::MAX {
                return parts.len() - 1;
            }
            if at > 0 {
                parts[at - 1].1 = rank_at(&parts, at - 1);
            }
            parts[at].1 = rank_at(&parts, at);
            parts.remove(at + 1);
        }
    }

    /// The same merges in the same order through a min-heap of (rank, start)
    /// over a linked list of parts; stale heap entries are skipped.
    fn merge_heap(&self, piece: &[u8]) -> usize {
        let len = piece.len();
        // Part i starts at byte i; next[i] is the start of the following part
        // (len at the end); prev[i] the previous one; alive marks part starts.
        let mut next: Vec<usize> = (1..=len).collect();
        let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; len];
        let mut rank: Vec<u32> = vec![u32::MAX; len];
        let mut heap = BinaryHeap::with_capacity(len);
        for i in 0..len - 1 {
            rank[i] = self.rank(&piece[i..i + 2]);
            if rank[i] != u32::MAX {
                heap.push(Reverse((rank[i], i)));
            }
        }
        let pair_rank = |next: &Vec<usize>, i: usize| -> u32 {
            let j = next[i];
            if j >= len {
                return u32::MAX;
            }
            let k = next[j];
            self.rank(&piece[i..k])
        };
        let mut parts = len;
        while let Some(Reverse((r, i))) = heap.pop() {
            if !alive[i] || rank[i] != r {
                continue;
            }
            // Merge part i with the one after it.
            let j = next[i];
            alive[j] = false;
            next[i] = next[j];
            if next[i] < len {
                prev[next[i]] = i;
            }
            parts -= 1;
            rank[i] = pair_rank(&next, i);
            if rank[i] != u32::MAX {
                heap.push(Reverse((rank[i], i)));
            }
            let p = prev[i];
            if p != usize::MAX {
                rank[p] = pair_rank(&next, p);
                if rank[p] != u32::MAX {
                    heap.push(Reverse((rank[p], p)));
                }
            }
        }
        parts
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

    #[test]
    fn exact_only_for_openai_models() {
        for m in ["gpt-4o-2024-08-06", "ft:gpt-4o-mini-2024-07-18:org::x", "gpt-4.1-2025-04-14", "o4-mini"] {
            assert!(Encoding::exact_for(m), "{m}");
        }
        for m in ["meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "Qwen/Qwen3-8B", "gpt-oss-20b", "Ministral-3B", "orca"] {
            assert!(!Encoding::exact_for(m), "{m}");
        }
    }
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
    fn equals_tiktoken_rs_on_hard_cases() {
        let cases = [
            "", " ", "  ", "a  b", "a \u{a0} b", "x   \n  y", "  \r\n\r\n  z", "tab\t\tx", "end   ",
            "don't DON'T it's", "12345678", "😀😀 a", "a\u{3000}\u{3000}b", " \u{2028}x",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab",
        ];
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            for c in cases {
                assert_eq!(enc.count(c), enc.reference().encode_ordinary(c).len(), "{enc:?} {c:?}");
            }
            let long = "🏃".repeat(300) + &"word ".repeat(500) + &"x".repeat(3000);
            assert_eq!(enc.count(&long), enc.reference().encode_ordinary(&long).len());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn equals_tiktoken_rs_on_any_text(s in "(\\PC|[ \t\r\n\u{a0}\u{3000}]|[a-z]{1,12}|[0-9]{1,5}|'s|'T){0,60}") {
            for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
                proptest::prop_assert_eq!(enc.count(&s), enc.reference().encode_ordinary(&s).len());
            }
        }

        #[test]
        fn long_runs_equal_tiktoken_rs(c in "[a-zA-Z0-9 !😀é]", n in 60usize..400, t in "[a-z ]{0,8}") {
            let s = c.repeat(n) + &t;
            for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
                proptest::prop_assert_eq!(enc.count(&s), enc.reference().encode_ordinary(&s).len());
            }
        }
    }

    #[test]
    fn flags_special_tokens_anywhere() {
        let ex = json!([{"role": "user", "content": "say <|endoftext|> twice <|endoftext|>"},
                        {"role": "assistant", "content": "ok", "tool_calls": [{"function": {"arguments": "<|fim_prefix|>"}}]}]);
        assert_eq!(special_tokens_in(&ex), vec!["<|endoftext|>", "<|fim_prefix|>"]);
        assert!(special_tokens_in(&json!([{"role": "user", "content": "<| endoftext |>"}])).is_empty());
    }
}
