//! Token counts of a JSONL corpus (`{"text": ...}` or `{"messages": [...]}` per
//! line) with vibe_ft's counter, for the comparison with OpenAI's Python
//! `tiktoken` (tests/tokens/compare.py) and its benchmark.
//!   count_tokens <o200k_base|cl100k_base> <corpus.jsonl>            one count per line
//!   count_tokens <o200k_base|cl100k_base> <corpus.jsonl> --repeat N  total tokens, seconds

use serde_json::Value;
use std::time::Instant;
use vibe_ft_core::tokens::Encoding;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let enc = match args.get(1).map(String::as_str) {
        Some("o200k_base") => Encoding::O200kBase,
        Some("cl100k_base") => Encoding::Cl100kBase,
        _ => {
            eprintln!("usage: count_tokens <o200k_base|cl100k_base> <corpus.jsonl> [--repeat N]");
            std::process::exit(2);
        }
    };
    let corpus = std::fs::read_to_string(args.get(2).expect("corpus path")).expect("readable corpus");
    let items: Vec<Value> = corpus.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let count = |v: &Value| match v.get("text").and_then(Value::as_str) {
        Some(t) => enc.count(t),
        None => enc.count_messages(&v["messages"]),
    };
    if args.get(3).map(String::as_str) == Some("--repeat") {
        let n: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
        // Warm up (loads the encoding) outside the timed loop, as Python's does.
        let _ = count(&items[0]);
        let start = Instant::now();
        let mut total = 0usize;
        for _ in 0..n {
            total += items.iter().map(count).sum::<usize>();
        }
        println!("{total} {:.6}", start.elapsed().as_secs_f64());
        return;
    }
    for v in &items {
        println!("{}", count(v));
    }
}
