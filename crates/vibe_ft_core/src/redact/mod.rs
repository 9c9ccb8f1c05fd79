//! Redaction of personal data before anything leaves the database. Each kind
//! found in message text is replaced by a token that names it:
//!
//! | kind | token | how |
//! |---|---|---|
//! | email address | `[email]` | shape |
//! | IBAN | `[iban]` | check digits and the country's format (`iban_validate`) |
//! | national identifier | `[national_id]` | shape and check digit per country ([`ids`]) |
//! | payment card | `[card]` | 13–19 digits, Luhn |
//! | IPv4 / IPv6 address | `[ip]` | the standard library's parsers |
//! | phone number | `[phone]` | libphonenumber's metadata ([`phone`]) |
//! | postal address | `[address]` | street, postal code and unit shapes ([`address`]) |
//! | person name | `[name]` | name lists and context ([`names`]) |
//!
//! Dates and times are found first and never replaced, so `2026-11-25` is not
//! a phone number however valid it would be as one. Where two findings
//! overlap, the earlier kind in the table wins.

mod address;
mod ids;
mod names;
mod phone;

pub use ids::luhn;

use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::LazyLock;

/// A regex with room for its lazy DFA: the address and name patterns are
/// large Unicode classes, and with the default 2 MB cache the DFA is rebuilt
/// over and over (measured: half the time went to determinization).
fn regex(p: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(p).dfa_size_limit(32 << 20).build()
}

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b").expect("valid"));
static IPV4: LazyLock<Regex> = LazyLock::new(|| regex(r"\b\d{1,3}(?:\.\d{1,3}){3}\b").expect("valid"));
static IPV6: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:\.\d{1,3}){0,3}").expect("valid"));
/// Dates and times that must survive: 2026-11-25, 25.11.2026, 11/25/26, 10:30, 7.30 pm.
static KEEP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})|\d{1,2}[:.]\d{2}(?::\d{2})?\s?(?i:am|pm)|\d{1,2}:\d{2}(?::\d{2})?)\b",
    )
    .expect("valid")
});

/// A kind of personal data, in the order findings win over each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Keep,
    Email,
    Iban,
    NationalId,
    Card,
    Ip,
    Phone,
    Address,
    Name,
}

impl Kind {
    pub fn token(self) -> &'static str {
        match self {
            Kind::Keep => "",
            Kind::Email => "[email]",
            Kind::Iban => "[iban]",
            Kind::NationalId => "[national_id]",
            Kind::Card => "[card]",
            Kind::Ip => "[ip]",
            Kind::Phone => "[phone]",
            Kind::Address => "[address]",
            Kind::Name => "[name]",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

impl Span {
    fn new(start: usize, end: usize, kind: Kind) -> Span {
        Span { start, end, kind }
    }
}

/// How many of each kind were replaced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub emails: u32,
    pub cards: u32,
    pub phones: u32,
    pub ibans: u32,
    pub national_ids: u32,
    pub ips: u32,
    pub addresses: u32,
    pub names: u32,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.emails + self.cards + self.phones + self.ibans + self.national_ids + self.ips + self.addresses + self.names
    }
    fn add(&mut self, o: Counts) {
        self.emails += o.emails;
        self.cards += o.cards;
        self.phones += o.phones;
        self.ibans += o.ibans;
        self.national_ids += o.national_ids;
        self.ips += o.ips;
        self.addresses += o.addresses;
        self.names += o.names;
    }
    fn count(&mut self, k: Kind) {
        match k {
            Kind::Keep => {}
            Kind::Email => self.emails += 1,
            Kind::Iban => self.ibans += 1,
            Kind::NationalId => self.national_ids += 1,
            Kind::Card => self.cards += 1,
            Kind::Ip => self.ips += 1,
            Kind::Phone => self.phones += 1,
            Kind::Address => self.addresses += 1,
            Kind::Name => self.names += 1,
        }
    }
    /// The example metadata's `redactions` object.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "emails": self.emails, "cards": self.cards, "phones": self.phones, "ibans": self.ibans,
            "national_ids": self.national_ids, "ips": self.ips, "addresses": self.addresses, "names": self.names,
        })
    }
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// A date's day and month are in range; a time's hours and minutes are.
fn is_date_or_time(m: &str) -> bool {
    let nums: Vec<u32> = m
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    if m.contains(':') || m.to_ascii_lowercase().ends_with('m') {
        return nums.len() >= 2 && nums[0] <= 24 && nums[1] < 60;
    }
    let (a, b, c) = (nums[0], nums[1], nums[2]);
    if a > 31 {
        (1..=12).contains(&b) && (1..=31).contains(&c)
    } else {
        (1..=31).contains(&a) && (1..=31).contains(&b) && (a <= 12 || b <= 12) && (c > 31 || c < 100)
    }
}

fn ips(s: &str, spans: &mut Vec<Span>) {
    for m in IPV4.find_iter(s) {
        // Not inside a longer dotted number (a version such as 1.2.3.4.5).
        let next = s[m.end()..].chars().next();
        let prev = s[..m.start()].chars().next_back();
        if Ipv4Addr::from_str(m.as_str()).is_ok()
            && !matches!(next, Some('.') if s[m.end() + 1..].starts_with(|c: char| c.is_ascii_digit()))
            && prev != Some('.')
        {
            spans.push(Span::new(m.start(), m.end(), Kind::Ip));
        }
    }
    if s.contains(':') {
        for m in IPV6.find_iter(s) {
            let c = m.as_str().trim_end_matches('.');
            if c.matches(':').count() >= 2 && Ipv6Addr::from_str(c).is_ok() {
                spans.push(Span::new(m.start(), m.start() + c.len(), Kind::Ip));
            }
        }
    }
}

/// Redact one text. Borrowed when nothing was found.
pub fn text(s: &str) -> (Cow<'_, str>, Counts) {
    let mut spans: Vec<Span> = Vec::new();
    let has_digit = s.bytes().any(|b| b.is_ascii_digit());
    if has_digit {
        // Not part of a longer dotted number (184.27.12.16 is an address, not a date).
        let inside = |a: usize, b: usize| {
            s[..a].ends_with(|c: char| c == '.') && s[..a.saturating_sub(1)].ends_with(|c: char| c.is_ascii_digit())
                || s[b..].starts_with('.') && s[b + 1..].starts_with(|c: char| c.is_ascii_digit())
        };
        for m in KEEP.find_iter(s).filter(|m| is_date_or_time(m.as_str()) && !inside(m.start(), m.end())) {
            spans.push(Span::new(m.start(), m.end(), Kind::Keep));
        }
    }
    if s.contains('@') {
        for m in EMAIL.find_iter(s) {
            spans.push(Span::new(m.start(), m.end(), Kind::Email));
        }
    }
    if has_digit {
        ids::ibans(s, &mut spans);
        ids::national_ids(s, &mut spans);
        ids::cards(s, &mut spans);
        ips(s, &mut spans);
        phone::phones(s, &mut spans);
    }
    // Every address shape but the Japanese one holds a digit.
    if has_digit {
        address::addresses(s, &mut spans);
    }
    names::names(s, &mut spans);
    if spans.iter().all(|sp| sp.kind == Kind::Keep) {
        return (Cow::Borrowed(s), Counts::default());
    }
    // The first kind wins where findings overlap; then left to right.
    spans.sort_by_key(|sp| (sp.kind, sp.start));
    let mut chosen: Vec<Span> = Vec::with_capacity(spans.len());
    for sp in spans {
        if chosen.iter().all(|c| sp.end <= c.start || sp.start >= c.end) {
            chosen.push(sp);
        }
    }
    chosen.sort_by_key(|sp| sp.start);
    let mut counts = Counts::default();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for sp in chosen.iter().filter(|sp| sp.kind != Kind::Keep) {
        out.push_str(&s[at..sp.start]);
        out.push_str(sp.kind.token());
        counts.count(sp.kind);
        at = sp.end;
    }
    out.push_str(&s[at..]);
    (Cow::Owned(out), counts)
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
                ..Counts::default()
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

    fn red(s: &str) -> String {
        text(s).0.into_owned()
    }

    #[test]
    fn every_kind_is_named() {
        assert_eq!(red("IBAN DE89 3704 0044 0532 0130 00 please"), "IBAN [iban] please");
        assert_eq!(red("IBAN DE89370400440532013000"), "IBAN [iban]");
        // One digit off: not an IBAN, and not a phone number inside a word either.
        assert_eq!(red("not an IBAN: DE89370400440532013001"), "not an IBAN: DE89370400440532013001");
        assert_eq!(red("SSN 123-45-6789, NI AB 12 34 56 C"), "SSN [national_id], NI [national_id]");
        assert_eq!(red("DNI 12345678Z, CF RSSMRA85T10A562S"), "DNI [national_id], CF [national_id]");
        assert_eq!(red("from 192.168.1.20 and 2001:db8::8a2e:370:7334"), "from [ip] and [ip]");
        assert_eq!(red("I live at 754 Laura Square Apt. 194, Goldenmouth, LA 80318."), "I live at [address].");
        assert_eq!(red("Hauptstraße 5, 10115 Berlin"), "[address]");
        assert_eq!(red("My daughter Emma and Dr. Patel"), "My daughter [name] and Dr. [name]");
        assert_eq!(red("I talked to Kathleen Schmidt today"), "I talked to [name] today");
        assert_eq!(red("昨日木村 陽一さんと走りました。"), "昨日[name]さんと走りました。");
        let (_, c) = text("Mail a@b.io, call +44 20 7946 0958, my son Tom, 754 Laura Square");
        assert_eq!((c.emails, c.phones, c.names, c.addresses, c.total()), (1, 1, 1, 1, 4));
    }

    #[test]
    fn names_that_are_words_stay_words() {
        for s in [
            "Will you help me plan next week?",
            "Grace under pressure is a skill.",
            "May I skip leg day? In May I ran my first race.",
            "Mark your progress every evening.",
            "Victoria Park is where I run.",
            "You are Coach Decibel, a loud coach.",
            "Hope is not a plan, Joy comes from small wins.",
            "Meet on 2026-11-25 at 10:30, 25.11.2026 or 05.11.2026",
            "It costs 1,299.00 EUR, or 600,57 €",
            "Run 5 km in 25 min, 75.5 kg, v1.2.3, 10.0.19045",
        ] {
            assert_eq!(red(s), s);
        }
        // With a context, the same words are names.
        assert_eq!(red("my daughter Grace"), "my daughter [name]");
        assert_eq!(red("I had lunch with Will Smith"), "I had lunch with [name]");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// No text makes redaction fail (one user's message must never stop
        /// the daily job), and text outside replacements is kept in order.
        #[test]
        fn any_text_is_redacted_without_panic(s in "[ -~\\n\\u{e0}-\\u{ff}\\u{3041}-\\u{3096}\\u{4e00}-\\u{4e20}\\u{ff01}-\\u{ff5e}]{0,120}") {
            let (r, c) = text(&s);
            if c.total() == 0 {
                proptest::prop_assert_eq!(r.as_ref(), s.as_str());
            }
        }

        #[test]
        fn digits_and_separators_never_panic(s in "[0-9 .()+\\-/:xA-Z,]{0,60}") {
            let _ = text(&s);
        }
    }

}
