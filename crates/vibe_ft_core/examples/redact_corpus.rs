//! Redact every `text` of a JSON-lines corpus (tests/redaction/corpus.py) and
//! print each result as a JSON string, one per line: the quick loop for
//! working on redaction without a database. The tests go through
//! `vibe_ft.redact_text` in a real cluster (tests/e2e/test_redaction.py).
//!
//!   cargo run --release -p vibe_ft_core --example redact_corpus < corpus.jsonl > out.jsonl
use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let texts: Vec<String> = stdin
        .lock()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line.expect("read")).expect("json");
            v["text"].as_str().expect("text").to_string()
        })
        .collect();
    let t = std::time::Instant::now();
    vibe_ft_core::redact::text("warm up: Emma at +44 20 7946 0958, 1 Main Street");
    let first = t.elapsed();
    let t = std::time::Instant::now();
    for text in &texts {
        let (r, _) = vibe_ft_core::redact::text(text);
        writeln!(out, "{}", serde_json::Value::String(r.into_owned())).expect("write");
    }
    let d = t.elapsed();
    // Again, with every lazy DFA state already built: the steady state of a
    // long generate_examples run.
    let t2 = std::time::Instant::now();
    for text in &texts {
        std::hint::black_box(vibe_ft_core::redact::text(text));
    }
    let d2 = t2.elapsed();
    eprintln!(
        "second pass: {:.1} us each",
        d2.as_secs_f64() * 1e6 / texts.len() as f64
    );
    eprintln!(
        "first call (loads the lists and metadata) {first:?}; {} texts in {d:?}, {:.1} us each",
        texts.len(),
        d.as_secs_f64() * 1e6 / texts.len() as f64
    );
}
