//! Identifiers with a checkable shape: IBANs (ISO 13616 mod-97 check digits,
//! by `iban_validate`), payment cards (Luhn), and the
//! national identifiers of the locales vibe_ft is measured on. A shape alone
//! is not enough: each one's check digit or letter must hold, so that order
//! numbers, dates and amounts of the same length survive.

use super::{digits, Kind, Span};
use regex::Regex;
use std::str::FromStr;
use std::sync::LazyLock;

/// The Luhn checksum every payment card number (and a Swedish personnummer) passes.
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

/// An IBAN in electronic (`DE44500105175407324931`) or print form
/// (`DE44 5001 0517 5407 3249 31`).
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| super::regex(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b").expect("valid"));

/// 12 (Maestro) to 19 digits, optionally in groups separated by single spaces or hyphens.
static CARD: LazyLock<Regex> = LazyLock::new(|| super::regex(r"\b\d(?:[ -]?\d){11,18}\b").expect("valid"));

pub(super) fn ibans(s: &str, spans: &mut Vec<Span>) {
    for m in IBAN.find_iter(s) {
        // A print-form match may run into a following word in capitals: drop
        // trailing groups until the rest checks (or nothing is left).
        let mut text = m.as_str();
        loop {
            let compact: String = text.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
            if iban::BaseIban::from_str(&compact).is_ok() {
                spans.push(Span::new(m.start(), m.start() + text.len(), Kind::Iban));
                break;
            }
            match text.rfind(' ') {
                Some(i) if i >= 15 => text = &text[..i],
                _ => break,
            }
        }
    }
}

pub(super) fn cards(s: &str, spans: &mut Vec<Span>) {
    for m in CARD.find_iter(s) {
        if luhn(&digits(m.as_str())) {
            spans.push(Span::new(m.start(), m.end(), Kind::Card));
        }
    }
}

struct IdShape {
    re: Regex,
    check: fn(&str) -> bool,
}

/// The shapes, each with its check. Order matters only for which kind a
/// number is counted as; every one of them is replaced by `[national_id]`.
static IDS: LazyLock<Vec<IdShape>> = LazyLock::new(|| {
    let id = |re: &str, check: fn(&str) -> bool| IdShape {
        re: super::regex(re).expect("valid"),
        check,
    };
    vec![
        // United States: Social Security number, 123-45-6789.
        id(r"\b\d{3}-\d{2}-\d{4}\b", us_ssn),
        // United Kingdom: National Insurance number, AB 12 34 56 C.
        id(
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-Z]\b",
            |_| true,
        ),
        // France: NIR (numéro de sécurité sociale), 15 characters with a mod-97 key.
        id(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}\b", fr_nir),
        // Spain: DNI/NIF 12345678Z and NIE X1234567L, mod-23 letter.
        id(r"\b(?:\d{8}|[XYZ]-?\d{7})-?[A-HJ-NP-TV-Z]\b", es_nif),
        // Italy: codice fiscale, with its check letter (omocodia letters allowed).
        id(
            r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
            it_cf,
        ),
        // Brazil: CPF, 123.456.789-09, two mod-11 check digits.
        id(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b", br_cpf),
        // Sweden: personnummer, (YY)YYMMDD-NNNC, Luhn.
        id(r"\b(?:19|20)?\d{6}[-+]?\d{4}\b", se_pnr),
        // Poland: PESEL, 11 digits, weighted check digit.
        id(r"\b\d{11}\b", pl_pesel),
        // India: Aadhaar, 12 digits in groups of four, Verhoeff.
        id(r"\b[2-9]\d{3} ?\d{4} ?\d{4}\b", in_aadhaar),
        // Netherlands: BSN, 9 digits, the 11-test.
        id(r"\b\d{9}\b", nl_bsn),
    ]
});

static IDS_SET: LazyLock<regex::RegexSet> = LazyLock::new(|| super::regex_set(IDS.iter().map(|i| i.re.as_str())));

pub(super) fn national_ids(s: &str, spans: &mut Vec<Span>) {
    for shape in IDS_SET.matches(s).iter().map(|k| &IDS[k]) {
        for m in shape.re.find_iter(s) {
            if (shape.check)(m.as_str()) {
                spans.push(Span::new(m.start(), m.end(), Kind::NationalId));
            }
        }
    }
}

fn us_ssn(s: &str) -> bool {
    let d = digits(s);
    let area = d[0] * 100 + d[1] * 10 + d[2];
    area != 0 && area != 666 && area < 900 && d[3..5] != [0, 0] && d[5..] != [0, 0, 0, 0]
}

fn fr_nir(s: &str) -> bool {
    let c: String = s.chars().filter(|c| *c != ' ').collect();
    let (body, key) = c.split_at(13);
    // Corsica: 2A and 2B stand for 19 and 18 in the key's arithmetic.
    let body = body.replacen("2A", "19", 1).replacen("2B", "18", 1);
    let (Ok(n), Ok(k)) = (body.parse::<u64>(), key.parse::<u64>()) else {
        return false;
    };
    97 - n % 97 == k
}

fn es_nif(s: &str) -> bool {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let c: String = s.chars().filter(|c| *c != '-').collect();
    let (num, letter) = c.split_at(c.len() - 1);
    let num = match num.as_bytes()[0] {
        b'X' => format!("0{}", &num[1..]),
        b'Y' => format!("1{}", &num[1..]),
        b'Z' => format!("2{}", &num[1..]),
        _ => num.to_string(),
    };
    num.parse::<u64>()
        .is_ok_and(|n| LETTERS[(n % 23) as usize] == letter.as_bytes()[0])
}

fn it_cf(s: &str) -> bool {
    const ODD: [u32; 36] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
        10, 22, 25, 24, 23,
    ];
    let b = s.as_bytes();
    let mut sum = 0;
    for (i, &c) in b[..15].iter().enumerate() {
        let (odd_idx, even_val) = match c {
            b'0'..=b'9' => ((c - b'0') as usize, (c - b'0') as u32),
            _ => (10 + (c - b'A') as usize, (c - b'A') as u32),
        };
        // 1-based odd positions use the odd table.
        sum += if i % 2 == 0 { ODD[odd_idx] } else { even_val };
    }
    b[15] == b'A' + (sum % 26) as u8
}

fn br_cpf(s: &str) -> bool {
    let d = digits(s);
    if d.iter().all(|&x| x == d[0]) {
        return false;
    }
    let check = |n: usize| {
        let sum: u32 = d[..n]
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (n as u32 + 1 - i as u32))
            .sum();
        let r = sum * 10 % 11;
        if r == 10 {
            0
        } else {
            r
        }
    };
    check(9) == d[9] && check(10) == d[10]
}

fn se_pnr(s: &str) -> bool {
    let d = digits(s);
    let d = &d[d.len() - 10..];
    let month = d[2] * 10 + d[3];
    let day = d[4] * 10 + d[5];
    // Day + 60 is a coordination number (samordningsnummer).
    (1..=12).contains(&month) && ((1..=31).contains(&day) || (61..=91).contains(&day)) && luhn(d)
}

fn pl_pesel(s: &str) -> bool {
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let d = digits(s);
    let month = (d[2] * 10 + d[3]) % 20;
    let day = d[4] * 10 + d[5];
    let sum: u32 = d[..10].iter().zip(W).map(|(a, b)| a * b).sum();
    (1..=12).contains(&month) && (1..=31).contains(&day) && (10 - sum % 10) % 10 == d[10]
}

fn in_aadhaar(s: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let c = digits(s)
        .iter()
        .rev()
        .enumerate()
        .fold(0u8, |c, (i, &x)| D[c as usize][P[i % 8][x as usize] as usize]);
    c == 0
}

fn nl_bsn(s: &str) -> bool {
    let d = digits(s);
    let sum: i64 = d[..8]
        .iter()
        .enumerate()
        .map(|(i, &x)| x as i64 * (9 - i as i64))
        .sum::<i64>()
        - d[8] as i64;
    sum % 11 == 0 && sum != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_hold_for_real_shapes_and_fail_for_one_digit_off() {
        assert!(luhn(&digits("4111111111111111")) && !luhn(&digits("4111111111111112")) && !luhn(&[]));
        for (f, good, bad) in [
            (us_ssn as fn(&str) -> bool, "123-45-6789", "000-45-6789"),
            (fr_nir, "255081416802538", "255081416802539"),
            (es_nif, "12345678Z", "12345678A"),
            (es_nif, "X1234567L", "X1234567M"),
            (it_cf, "RSSMRA85T10A562S", "RSSMRA85T10A562T"),
            (br_cpf, "529.982.247-25", "529.982.247-26"),
            (se_pnr, "811218-9876", "811218-9875"),
            (pl_pesel, "44051401359", "44051401358"),
            (in_aadhaar, "2341 2341 2346", "2341 2341 2347"),
            (nl_bsn, "111222333", "111222334"),
        ] {
            assert!(f(good), "{good}");
            assert!(!f(bad), "{bad}");
        }
    }
}
