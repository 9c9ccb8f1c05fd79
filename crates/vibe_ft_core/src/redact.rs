//! Redaction of personal data before anything leaves the database: email
//! addresses, payment card numbers (Luhn-checked) and phone numbers in message
//! text become `[email]`, `[card]`, `[phone]`. Deliberately conservative about
//! phones (at least 9 digits, or a leading `+`), so dates, amounts and order
//! numbers survive.

use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::LazyLock;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").expect("valid"));
/// 13 to 19 digits, optionally in groups separated by single spaces or hyphens.
static CARD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("valid"));
/// An optional +country code, optional (area), then digit groups.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}").expect("valid")
});

/// How many of each kind were replaced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub emails: u32,
    pub cards: u32,
    pub phones: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.emails + self.cards + self.phones
    }
    fn add(&mut self, o: Counts) {
        self.emails += o.emails;
        self.cards += o.cards;
        self.phones += o.phones;
    }
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// The Luhn checksum every payment card number passes.
pub fn luhn(ds: &[u32]) -> bool {
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    !ds.is_empty() && sum.is_multiple_of(10)
}

/// Redact one text. Borrowed when nothing was found.
pub fn text(s: &str) -> (Cow<'_, str>, Counts) {
    let mut counts = Counts::default();
    let mut out: Cow<str> = Cow::Borrowed(s);
    if EMAIL.is_match(&out) {
        let r = EMAIL.replace_all(&out, |_: &regex::Captures| {
            counts.emails += 1;
            "[email]"
        });
        out = Cow::Owned(r.into_owned());
    }
    if CARD.is_match(&out) {
        let r = CARD.replace_all(&out, |c: &regex::Captures| {
            let m = &c[0];
            if luhn(&digits(m)) {
                counts.cards += 1;
                "[card]".to_string()
            } else {
                m.to_string()
            }
        });
        if counts.cards > 0 {
            out = Cow::Owned(r.into_owned());
        }
    }
    if PHONE.is_match(&out) {
        let mut phones = 0;
        let r = PHONE.replace_all(&out, |c: &regex::Captures| {
            let m = &c[0];
            let n = digits(m).len();
            if (m.starts_with('+') && n >= 8 || n >= 9) && n <= 15 {
                phones += 1;
                "[phone]".to_string()
            } else {
                m.to_string()
            }
        });
        if phones > 0 {
            counts.phones = phones;
            out = Cow::Owned(r.into_owned());
        }
    }
    (out, counts)
}

/// Redact every string `content` of a messages array (and of DPO outputs);
/// other keys are left as they are.
pub fn messages(v: &Value) -> (Value, Counts) {
    let mut total = Counts::default();
    let out = match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|m| match m {
                    Value::Object(map) => {
                        let mut map = map.clone();
                        if let Some(Value::String(s)) = map.get("content") {
                            let (r, c) = text(s);
                            if c.total() > 0 {
                                total.add(c);
                                map.insert("content".into(), Value::String(r.into_owned()));
                            }
                        }
                        Value::Object(map)
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    };
    (out, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_cards_phones() {
        let (r, c) = text("Mail me at Jane.Doe+ft@example.co.uk or jd@x.io.");
        assert_eq!(r, "Mail me at [email] or [email].");
        assert_eq!(
            c,
            Counts {
                emails: 2,
                cards: 0,
                phones: 0
            }
        );
        let (r, c) = text("card 4111 1111 1111 1111, also 4111-1111-1111-1112 (bad checksum)");
        assert_eq!(r, "card [card], also 4111-1111-1111-1112 (bad checksum)");
        assert_eq!(c.cards, 1);
        let (r, c) = text("Call +44 20 7946 0958 or (555) 123-4567 or 030 12345678.");
        assert_eq!(r, "Call [phone] or [phone] or [phone].");
        assert_eq!(c.phones, 3);
    }

    #[test]
    fn ordinary_numbers_survive() {
        for s in [
            "Meet on 2026-11-25 at 10:30",
            "Do 3 sets of 12 reps, rest 90 s",
            "It costs 1,299.00 EUR",
            "Order 12345678",
            "Run 5 km in 25 min",
            "Version 1.2.3",
        ] {
            let (r, c) = text(s);
            assert_eq!((r.as_ref(), c.total()), (s, 0), "{s}");
        }
        assert!(matches!(text("nothing here").0, Cow::Borrowed(_)));
    }

    #[test]
    fn luhn_checks() {
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("5500 0000 0000 0004")));
        assert!(!luhn(&digits("4111111111111112")));
        assert!(!luhn(&[]));
    }

    #[test]
    fn messages_redacts_content_only() {
        let v = serde_json::json!([
            {"role": "user", "content": "I'm bob@example.com", "name": "bob@example.com"},
            {"role": "assistant", "content": "Hi!", "weight": 1}
        ]);
        let (r, c) = messages(&v);
        assert_eq!(r[0]["content"], "I'm [email]");
        assert_eq!(r[0]["name"], "bob@example.com", "only content is text to train on");
        assert_eq!(r[1], v[1]);
        assert_eq!(c.emails, 1);
    }
}
