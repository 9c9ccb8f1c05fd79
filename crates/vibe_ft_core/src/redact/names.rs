//! Person names. Given names and surnames come from openly licensed lists
//! shipped as data (`data/names/`, sources and licences in its SOURCES.md);
//! what a capitalised word is depends on its context:
//!
//! - after a title or a word for a person ("Dr.", "Frau", "Mme", "my daughter",
//!   "ma fille", "mi amigo", "my name is", "je m'appelle" …), the capitalised
//!   words that follow are a name, whatever they are;
//! - two or three capitalised words in a row whose first is a known given name
//!   or surname (and not a place such as "Victoria Park") are a name;
//! - a known given name or surname alone is a name only if it is not also an
//!   ordinary word in one of the ten languages (`common_words.txt`: "Will",
//!   "Grace", "May" stay words unless a context says otherwise);
//! - Japanese: a kanji surname followed by a given name, or a known name
//!   followed by an honorific (さん, 様, 先生 …).

use super::{Kind, Span};
use regex::Regex;
use rustc_hash::FxHashSet;
use std::sync::LazyLock;

struct Lists {
    given: FxHashSet<&'static str>,
    surnames: FxHashSet<&'static str>,
    common: FxHashSet<&'static str>,
}

static LISTS: LazyLock<Lists> = LazyLock::new(|| {
    let set = |s: &'static str| s.lines().collect::<FxHashSet<_>>();
    Lists {
        given: set(include_str!("../../data/names/given.txt")),
        surnames: set(include_str!("../../data/names/surnames.txt")),
        common: set(include_str!("../../data/names/common_words.txt")),
    }
});

static BEFORE_SET: LazyLock<FxHashSet<&'static str>> = LazyLock::new(|| BEFORE.iter().copied().collect());

fn before(w: &str) -> bool {
    if w.bytes().all(|b| b.is_ascii_lowercase() || b == b'.') {
        BEFORE_SET.contains(w)
    } else {
        BEFORE_SET.contains(w.to_lowercase().as_str())
    }
}

/// Words after which capitalised words are a person's name (lowercase).
const BEFORE: &[&str] = &[
    // titles
    "dr",
    "dr.",
    "doctor",
    "doc",
    "mr",
    "mr.",
    "mrs",
    "mrs.",
    "ms",
    "ms.",
    "mx",
    "mx.",
    "miss",
    "prof",
    "prof.",
    "professor",
    "frau",
    "herr",
    "fräulein",
    "mme",
    "mlle",
    "monsieur",
    "madame",
    "docteur",
    "sr.",
    "sra.",
    "srta.",
    "señor",
    "señora",
    "señorita",
    "doña",
    "doctora",
    "dott.",
    "dottor",
    "dottore",
    "dottoressa",
    "sig.",
    "sig.ra",
    "signor",
    "signora",
    "signore",
    "dona",
    "doutor",
    "doutora",
    "senhor",
    "senhora",
    "mevrouw",
    "meneer",
    "mevr.",
    "dhr.",
    "pani",
    "panią",
    "doktor",
    "fru",
    "dokter",
    "uncle",
    "aunt",
    "auntie",
    "grandma",
    "grandpa",
    "tante",
    "oom",
    "onkel",
    "tía",
    "tío",
    "zio",
    "zia",
    "tio",
    "tia",
    "ciocia",
    "wujek",
    // introductions
    "heiße",
    "heisse",
    "appelle",
    "llamo",
    "chiamo",
    "chamo",
    "heet",
    "heter",
    "nazywam",
];
/// Words for a person: the capitalised word after them is a name if it is a
/// given name ("my daughter Grace") or no ordinary word ("my son Ikshit";
/// French "son Apple Watch" is not).
const PEOPLE: &[&str] = &[
    "son",
    "daughter",
    "wife",
    "husband",
    "friend",
    "boss",
    "partner",
    "boyfriend",
    "girlfriend",
    "colleague",
    "coworker",
    "mother",
    "father",
    "mom",
    "mum",
    "dad",
    "brother",
    "sister",
    "cousin",
    "neighbour",
    "neighbor",
    "therapist",
    "trainer",
    "niece",
    "nephew",
    "tochter",
    "sohn",
    "mann",
    "freund",
    "freundin",
    "kollege",
    "kollegin",
    "bruder",
    "schwester",
    "mutter",
    "vater",
    "chef",
    "chefin",
    "fille",
    "fils",
    "femme",
    "mari",
    "ami",
    "amie",
    "copain",
    "copine",
    "frère",
    "sœur",
    "mère",
    "père",
    "collègue",
    "hija",
    "hijo",
    "esposa",
    "esposo",
    "marido",
    "amigo",
    "amiga",
    "novio",
    "novia",
    "hermano",
    "hermana",
    "madre",
    "padre",
    "jefe",
    "jefa",
    "compañero",
    "compañera",
    "figlia",
    "figlio",
    "moglie",
    "marito",
    "amico",
    "amica",
    "fratello",
    "sorella",
    "collega",
    "ragazzo",
    "ragazza",
    "filha",
    "filho",
    "mulher",
    "irmão",
    "irmã",
    "mãe",
    "pai",
    "chefe",
    "namorado",
    "namorada",
    "colega",
    "dochter",
    "zoon",
    "vrouw",
    "vriend",
    "vriendin",
    "broer",
    "zus",
    "moeder",
    "vader",
    "baas",
    "córka",
    "syn",
    "żona",
    "mąż",
    "przyjaciel",
    "przyjaciółka",
    "siostra",
    "mama",
    "tata",
    "szef",
    "kolega",
    "koleżanka",
    "dotter",
    "vän",
    "väninna",
    "bror",
    "syster",
    "mamma",
    "pappa",
    "kollega",
    "pojkvän",
    "flickvän",
];
static PEOPLE_SET: LazyLock<FxHashSet<&'static str>> = LazyLock::new(|| PEOPLE.iter().copied().collect());

/// Two-word introductions: "my name is", "mein Name ist" … (the last two words, lowercase).
const BEFORE2: &[(&str, &str)] = &[
    ("name", "is"),
    ("call", "me"),
    ("name", "ist"),
    ("nombre", "es"),
    ("nome", "é"),
    ("naam", "is"),
    ("namn", "är"),
    ("na", "imię"),
    ("nazywam", "się"),
    ("nome", "è"),
];
/// Words that make a capitalised pair a place, not a person.
const PLACE_WORDS: &[&str] = &[
    "Park",
    "Street",
    "Road",
    "Square",
    "Avenue",
    "Station",
    "Bridge",
    "Hospital",
    "University",
    "College",
    "School",
    "Church",
    "Lake",
    "River",
    "Airport",
    "Centre",
    "Center",
    "Mall",
    "Stadium",
    "Marathon",
    "Calendar",
    "Watch",
    "Island",
    "Beach",
    "Valley",
    "Mountain",
    "County",
    "City",
    "Street",
    "Gardens",
    "Garden",
    "Cathedral",
    "Museum",
    "Theatre",
    "Theater",
    "Arena",
    "Hotel",
    "Bank",
    "Company",
    "Inc",
    "Ltd",
    "Group",
    "Club",
];
const PARTICLES: &[&str] = &[
    "de", "van", "der", "den", "von", "da", "di", "del", "della", "dos", "das", "do", "du", "la", "le", "ter", "te",
];
const HONORIFICS: &[&str] = &["さん", "様", "さま", "先生", "君", "くん", "ちゃん", "氏", "殿"];

static WORD: LazyLock<Regex> =
    LazyLock::new(|| super::regex(r"[\p{L}\p{M}]+(?:['’\-][\p{L}\p{M}]+)*\.?").expect("valid"));

struct Tok<'a> {
    start: usize,
    end: usize,
    text: &'a str,
    /// Capitalised, and not the first word of a sentence.
    cap: bool,
    sentence_start: bool,
}

fn known(l: &Lists, w: &str) -> bool {
    let w = w.trim_end_matches('.');
    // The lists spell "Mcdonald": try a word with inner capitals that way too.
    if w.chars().skip(1).any(char::is_uppercase) && !w.contains('-') {
        let mut c = w.chars();
        let title: String = c.next().into_iter().chain(c.flat_map(char::to_lowercase)).collect();
        if l.given.contains(title.as_str()) || l.surnames.contains(title.as_str()) {
            return true;
        }
    }
    l.given.contains(w)
        || l.surnames.contains(w)
        || w.split('-').count() > 1 && w.split('-').all(|p| l.given.contains(p) || l.surnames.contains(p))
}

pub(super) fn names(s: &str, spans: &mut Vec<Span>) {
    if s.bytes().any(|b| b >= 0xE3) {
        japanese(s, spans);
    }
    // Only text with a capitalised word can hold a name.
    if !s.chars().any(char::is_uppercase) {
        return;
    }
    let l = &*LISTS;
    let mut toks: Vec<Tok> = Vec::new();
    let mut prev_end = 0;
    for m in WORD.find_iter(s) {
        let gap = &s[prev_end..m.start()];
        let sentence_start = toks.is_empty() && gap.trim().is_empty()
            || gap.contains(['.', '!', '?', ':', '\n', '"', '“'])
            || (gap.trim().is_empty() && toks.last().is_some_and(|t| t.text.ends_with('.') && !before(t.text)));
        let text = m.as_str();
        let text = if text.ends_with('.') && !before(text) {
            &text[..text.len() - 1]
        } else {
            text
        };
        // Capitalised: an upper-case first letter, not all capitals ("NASA");
        // inner capitals are fine ("McDonald", "DeShawn").
        let mut cs = text.chars();
        let cap = text.chars().count() >= 2
            && cs.next().is_some_and(char::is_uppercase)
            && cs.any(|c| c.is_lowercase());
        toks.push(Tok {
            start: m.start(),
            end: m.start() + text.len(),
            text,
            cap,
            sentence_start,
        });
        prev_end = m.end();
    }
    // German capitalises its nouns: where words that are also names stand
    // capitalised in mid-sentence, a given name and a surname in a row are
    // nouns ("Sommer Zimmer"), unless a context says otherwise.
    let nouns = toks.iter().filter(|t| t.cap && !t.sentence_start && l.common.contains(t.text)).count() >= 3;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let particle_start = PARTICLES.contains(&t.text)
            && i + 1 < toks.len()
            && (toks[i + 1].cap || PARTICLES.contains(&toks[i + 1].text));
        if !(t.cap || particle_start) || before(t.text) && i + 1 < toks.len() && toks[i + 1].cap {
            i += 1;
            continue;
        }
        // The run of capitalised words (with particles) starting here.
        let mut j = i + 1;
        while j < toks.len() && j - i < 4 {
            let gap = &s[toks[j - 1].end..toks[j].start];
            if gap != " " && gap != "-" {
                break;
            }
            if toks[j].cap || PARTICLES.contains(&toks[j].text) && j + 1 < toks.len() && toks[j + 1].cap {
                j += 1;
            } else {
                break;
            }
        }
        if particle_start {
            while j < toks.len()
                && j - i < 5
                && (toks[j].cap || PARTICLES.contains(&toks[j].text))
                && s[toks[j - 1].end..toks[j].start] == *" "
            {
                j += 1;
            }
        }
        while j > i + 1 && !toks[j - 1].cap {
            j -= 1;
        }
        let adjacent = i > 0 && s[toks[i - 1].end..t.start].trim().is_empty();
        let context = adjacent && {
            let lower_prev = toks[i - 1].text.to_lowercase();
            before(&lower_prev)
                || i > 1 && BEFORE2.contains(&(toks[i - 2].text.to_lowercase().as_str(), lower_prev.as_str()))
                || lower_prev == "m."
                || PEOPLE_SET.contains(lower_prev.as_str())
                    && (l.given.contains(t.text) || !l.common.contains(t.text) && !PLACE_WORDS.contains(&t.text))
        };
        let run = &toks[i..j];
        if particle_start && !context {
            i += 1;
            continue;
        }
        let is_name = if context {
            // ... unless it is a thing: "son Apple Watch".
            !run[1..].iter().any(|t| PLACE_WORDS.contains(&t.text))
        } else if run.len() >= 2 {
            // A run of capitalised words is a name when it holds a name that
            // is not also a word ("Kathleen Schmidt", "Ikshita Menon"), or is
            // a given name and a surname ("Richard Wise") outside noun-
            // capitalising text; never a place ("Victoria Park").
            let first = run[0].text;
            let rest = &run[1..];
            let strong = |w: &str| known(l, w) && !l.common.contains(w);
            let place = rest.iter().any(|t| PLACE_WORDS.contains(&t.text));
            let given_surname = l.given.contains(first) && rest.iter().any(|t| l.surnames.contains(t.text));
            let rest_strong = rest.iter().any(|t| strong(t.text));
            // A given name first: enough if it is not also a word, or if it
            // stands in mid-sentence outside noun-capitalising text.
            let by_first = l.given.contains(first) && (!l.common.contains(first) || !run[0].sentence_start && !nouns);
            !place
                && (given_surname && !nouns
                    || rest_strong && (known(l, first) || !run[0].sentence_start)
                    || by_first
                    || l.given.contains(first) && !l.common.contains(first) && rest.iter().any(|t| known(l, t.text)))
        } else {
            // Alone: a given name that is not also a word (surnames alone are
            // too often nouns and places: Hand, Fischer, Florence).
            l.given.contains(t.text) && !l.common.contains(t.text)
        };
        if is_name {
            spans.push(Span::new(run[0].start, run[run.len() - 1].end, Kind::Name));
            i = j;
        } else {
            i += 1;
        }
    }
}

fn japanese(s: &str, spans: &mut Vec<Span>) {
    let l = &*LISTS;
    let is_han = |c: char| matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3005}');
    let is_kana = |c: char| matches!(c, '\u{3041}'..='\u{3096}' | '\u{30a1}'..='\u{30fa}' | 'ー');
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let end_of = |k: usize| chars.get(k).map_or(s.len(), |c| c.0);
    let mut k = 0;
    while k < chars.len() {
        if !is_han(chars[k].1) {
            k += 1;
            continue;
        }
        let mut found = None;
        // The longest surname here, then a space or not, then the longest given name.
        'surname: for sl in (1..=3).rev() {
            if k + sl > chars.len() || !chars[k..k + sl].iter().all(|c| is_han(c.1)) {
                continue;
            }
            if !l.surnames.contains(&s[chars[k].0..end_of(k + sl)]) {
                continue;
            }
            let mut g = k + sl;
            let spaced = chars.get(g).is_some_and(|c| c.1 == ' ' || c.1 == '\u{3000}');
            if spaced {
                g += 1;
            }
            for gl in (1..=4).rev() {
                if g + gl > chars.len() || !chars[g..g + gl].iter().all(|c| is_han(c.1) || is_kana(c.1)) {
                    continue;
                }
                if l.given.contains(&s[chars[g].0..end_of(g + gl)]) && (spaced || sl + gl >= 3) {
                    found = Some(g + gl);
                    break 'surname;
                }
            }
            // A surname alone, before an honorific.
            let after = &s[end_of(k + sl)..];
            if HONORIFICS.iter().any(|h| after.starts_with(h)) {
                found = Some(k + sl);
                break;
            }
        }
        // A given name alone, after の or before an honorific.
        if found.is_none() && k > 0 && chars[k - 1].1 == 'の' {
            for gl in (1..=4).rev() {
                if k + gl <= chars.len() && l.given.contains(&s[chars[k].0..end_of(k + gl)]) {
                    found = Some(k + gl);
                    break;
                }
            }
        }
        match found {
            Some(e) => {
                spans.push(Span::new(chars[k].0, end_of(e), Kind::Name));
                k = e;
            }
            None => k += 1,
        }
    }
}
