//! Phone numbers. Candidates are found by shape (digits in groups, with an
//! optional `+`/`00` country code, an area code in brackets, a `(0)`, an
//! extension); Google's libphonenumber metadata (the `phonenumber` crate)
//! decides the short and the international ones:
//!
//! - `+44 20 7946 0958`, `0044 …`: 8 to 15 digits in all, or 7 with a country
//!   code libphonenumber knows;
//! - 9 to 15 digits: a phone number, as in 0.3.0 (fictitious and unallocated
//!   ranges are still someone's number in a chat), unless its groups are a
//!   list of small numbers or a version (a group of one digit);
//! - 6 to 8 digits written with a trunk `0` or an area code in brackets
//!   (`030 123456`, `(08) 12 34 56`): only if libphonenumber says it is a
//!   valid number of one of the regions vibe_ft is measured on.
//!
//! Dates (`2026-11-25`, `05.11.2026`) are never phone numbers, however valid
//! they would be as one.

use super::{digits, Kind, Span};
use phonenumber::country::Id;
use regex::Regex;
use std::sync::LazyLock;

static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(
        r"(?x)
        (?: \+\s? | \b00 | \( )?                      # a country code, or an area code in brackets
        (?: \d{1,5}\)[\s.\-]? )?
        \d{1,5}
        (?: (?: [\ .\-/] | \s?\(0\)\s? | [\ .\-]?\(\d{1,5}\)[\ .\-]? )? \d{1,5} ){0,7}
        (?: \s?(?:x|ext\.?|\#)\s?\d{1,6} )?          # an extension
        ",
    )
    .expect("valid")
});

/// Dates and times written with digits only: day, month and year in any order.
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(r"^(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{1,2}\.\d{1,2}\.?)$")
        .expect("valid")
});

/// The regions whose national numbers are recognised without a country code.
const REGIONS: [Id; 12] = [
    Id::US,
    Id::GB,
    Id::DE,
    Id::FR,
    Id::ES,
    Id::IT,
    Id::BR,
    Id::NL,
    Id::JP,
    Id::IN,
    Id::PL,
    Id::SE,
];

pub(super) fn phones(s: &str, spans: &mut Vec<Span>) {
    for m in CANDIDATE.find_iter(s) {
        // A candidate does not start inside a word or a longer number.
        // (ASCII letters only: "電話090-1234-5678" is a number after a word; a
        // dot only after a digit: "Tel.030 12345678" is one, "1.234567890" not).
        let head = &s[..m.start()];
        let before = head.chars().next_back();
        let glued = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            || matches!(before, Some('.' | ',')) && head[..head.len() - 1].ends_with(|c: char| c.is_ascii_digit());
        if glued && !m.as_str().starts_with('+') {
            continue;
        }
        let mut c = m.as_str().trim_end_matches([' ', '-', '.', '/']);
        let mut start = m.start();
        // Brackets are only part of the number when both are.
        if c.starts_with('(') && !c.contains(')') {
            c = &c[1..];
            start += 1;
        }
        if is_phone(c) {
            spans.push(Span::new(start, start + c.len(), Kind::Phone));
        }
    }
}

pub fn is_phone(c: &str) -> bool {
    let body = match c.find(['x', '#', 'e']) {
        Some(i) => c[..i].trim_end(),
        None => c,
    };
    let n = digits(body).len();
    if !(6..=15).contains(&n) || DATE.is_match(body) {
        return false;
    }
    let international = body.starts_with('+') || body.starts_with("00");
    if international {
        let intl = format!("+{}", body.trim_start_matches('+').trim_start_matches("00"));
        // A `+` and eight digits or more is a phone number by its shape alone
        // (libphonenumber refuses numbers in unallocated ranges, which are
        // still someone's number in a chat); seven need a known country code.
        return n >= 8 || phonenumber::parse(None, &intl).is_ok();
    }
    if n >= 9 {
        // Without a `+`, a trunk 0 or brackets, groups must look like a
        // number's: not a list of small numbers ("60 65 70 75 80 kg") nor a
        // version ("10.0.22631.4317"); a leading 1 is the NANP's ("1-800-555-0199").
        if body.starts_with('0') || body.starts_with('(') {
            return true;
        }
        let groups: Vec<usize> = body.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).map(str::len).collect();
        let small_list = groups.len() >= 4 && groups.iter().all(|&g| g <= 2);
        let single = groups.iter().enumerate().any(|(i, &g)| g == 1 && !(i == 0 && body.starts_with('1')));
        return !small_list && !single;
    }
    let grouped = body.starts_with('0') || body.starts_with("(0") || body.starts_with('(');
    grouped
        && REGIONS
            .iter()
            .any(|r| phonenumber::parse(Some(*r), body).is_ok_and(|p| phonenumber::is_valid(&p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for p in [
            "+44 20 7946 0958",
            "(01632) 960072",
            "+44(0)121 496 0000",
            "500-708-0636x08377",
            "+49(0) 915000806",
            "030 12345678",
            "08-915 000 80",
            "0049 30 901820",
            "+1-489-495-7903",
            "(0439)-150008",
            "030 901820",
        ] {
            assert!(is_phone(p), "{p}");
        }
        for p in [
            "2026-11-25",
            "25.11.2026",
            "05.11.2026",
            "12345678",
            "1234",
            "11/25/2026",
            "+12",
        ] {
            assert!(!is_phone(p), "{p}");
        }
    }
}
