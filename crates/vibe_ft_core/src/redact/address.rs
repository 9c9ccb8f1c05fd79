//! Postal addresses, by their shapes in the twelve measured locales: a street
//! line (a house number and a street word, in the language's order: `754 Laura
//! Square`, `Hauptstraße 5`, `12, rue de la Paix`, `Calle de Alcalá 42`, `ul.
//! Długa 7/3`, `Kyrkogatan 33`), a postal code with its city (`80318`,
//! `SG25 1TW`, `1012 AB Amsterdam`, `69074-391`, `13-500 Bydgoszcz`, `123 45
//! Lund`), a unit (`Apt. 194`, `Flat 97G`, `Piso 3`), a Japanese address from
//! its prefecture to its 番/号. A found line grows over the comma- or
//! line-separated parts around it that are themselves address parts or short
//! capitalised place names, and stops at anything else ("…, near the park").

use super::{Kind, Span};
use regex::Regex;
use std::sync::LazyLock;

/// Street words that follow the street's name (English, and Indian English).
const EN_SUFFIX: &str = "street|st|avenue|ave|road|rd|lane|ln|drive|dr|court|ct|square|sq|way|place|pl|boulevard|blvd|\
parkway|pkwy|crescent|cres|terrace|close|gardens|grove|hill|park|row|walk|mews|green|rise|view|vale|wharf|yard|\
alley|arcade|bay|bend|bluff|bluffs|bottom|branch|bridge|brook|brooks|burg|burgs|bypass|camp|canyon|cape|causeway|\
center|centers|circle|circles|cliff|cliffs|club|common|commons|corner|corners|course|courts|cove|coves|creek|crest|\
crossing|crossroad|curve|dale|dam|divide|drives|estate|estates|expressway|extension|extensions|fall|falls|ferry|\
field|fields|flat|flats|ford|fords|forest|forge|forges|fork|forks|fort|freeway|glen|glens|greens|groves|harbor|\
harbors|haven|heights|highway|hwy|hills|hollow|inlet|island|islands|isle|junction|junctions|key|keys|knoll|knolls|\
lake|lakes|land|landing|light|lights|loaf|lock|locks|lodge|loop|mall|manor|manors|meadow|meadows|mill|mills|\
mission|motorway|mount|mountain|mountains|neck|orchard|oval|overpass|parks|parkways|pass|passage|path|pike|pine|\
pines|plain|plains|plaza|point|points|port|ports|prairie|radial|ramp|ranch|rapid|rapids|rest|ridge|ridges|river|\
roads|route|run|shoal|shoals|shore|shores|skyway|spring|springs|spur|spurs|squares|station|stravenue|stream|streets|\
summit|throughway|trace|track|trafficway|trail|trailer|tunnel|turnpike|underpass|union|unions|valley|valleys|viaduct|\
views|village|villages|ville|vista|walks|wall|ways|well|wells|chowk|nagar|marg|path|ganj|colony|zila|circle";

static SOURCES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let cap = r"\p{Lu}[\p{L}\p{M}'’\-]*";
    let num = r"\d{1,6}[A-Za-z]?(?:\s?[/\-]\s?\d{1,5}[A-Za-z]?)?";
    [
        // 754 Laura Square / 37/406, Chaudhry Circle / 77 Pearson court
        // (a street's name is required: "2 rest days", "a 5k run" are not streets)
        format!(r"\b{num},?\s(?:{cap}\s){{1,3}}(?i:(?:{EN_SUFFIX}))\b\.?"),
        // German, Dutch, Swedish compounds: Hauptstraße 5, Wesleyweg 3, Kyrkogatan 33, Patric-Rogge-Allee 91/27
        // ("-ring" needs three letters before it: "During 3 weeks", "Spring 2026" are no streets)
        format!(
            r"(?:\p{{Lu}}[\p{{L}}\p{{M}}'’\-]{{2,}}(?i:ring)|{cap}(?i:straße|strasse|str\.|weg|gasse|platz|allee|damm|ufer|chaussee|pfad|steig|markt|graben|kamp|\
straat|laan|plein|gracht|dijk|kade|singel|steeg|hof|park|pad|dreef|baan|veld|wal|haven|\
gatan|vägen|gränd|torget|stigen|backen|allén|plan|leden|gången|platsen|väg|gata|boulevard|dreef|straat))\s{num}\b"
        ),
        // Romance and Polish street words before the name: rue de la Paix 12 / 61, boulevard de Briand / Calle Mayor 8 / Via Roma, 12 / ul. Długa 7
        format!(
            r"(?:\b{num},?\s)?(?i:rue|avenue|av\.|boulevard|bd|chemin|allée|impasse|quai|route|cours|faubourg|\
calle|c\.|avenida|avda\.|paseo|plaza|camino|ronda|v[ií]a|pasaje|pasadizo|callej[oó]n|cañada|carretera|glorieta|\
urbanizaci[oó]n|rambla|traves[ií]a|alameda|acceso|cuesta|partida|vial|\
viale|piazza|piazzale|corso|strada|vicolo|largo|borgo|contrada|rotonda|incrocio|canale|stretto|lungomare|\
galleria|rione|salita|traversa|localit[aà]|quartiere|via|\
rua|travessa|pra[cç]a|rodovia|estrada|ladeira|viela|vila|recanto|lago|lagoa|passarela|setor|quadra|trecho|\
s[ií]tio|n[uú]cleo|conjunto|condom[ií]nio|residencial|ch[aá]cara|[aá]rea|aeroporto|vereda|campo|feira|favela|\
fazenda|jardim|morro|parque|p[aá]tio|col[oô]nia|distrito|esplanada|esta[cç][aã]o|loteamento|margem|rampa|\
ul\.|ulica|al\.|aleja|pl\.|plac|os\.|osiedle|rondo|skwer|bulwar)\s\
(?:(?:de|del|de\sla|de\slos|de\slas|du|des|d'|di|della|dei|degli|da|do|dos|das)\s?)?\
{cap}(?:\s(?:{cap}|de|del|da|do|dos|di|la|\d{{1,3}}\.?)){{0,4}}(?:,?\s{num})?"
        ),
        // Postal codes with their city: US state + ZIP, UK postcodes, NL, BR, PL, SE, generic 5 digits + City
        r"\b[A-Z]{2}\s\d{5}(?:-\d{4})?\b".to_string(),
        r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b".to_string(),
        format!(r"\b\d{{4}}\s?[A-Z]{{2}},?\s(?:'s-|\d+e\s)?{cap}(?:[\s\-]{cap})*"),
        format!(r"\b\d{{5}}-?\d{{3}}\b(?:\s{cap}(?:\s(?:da|de|do|dos|das|{cap}))*)?(?:\s/\s[A-Z]{{2}}\b)?"),
        format!(r"\b\d{{2}}-\d{{3}}\s{cap}(?:[\s\-]{cap})*"),
        format!(r"\b\d{{3}}\s?\d{{2}}\s{cap}(?:[\s\-]{cap})*"),
        format!(r"\b\d{{5}}\s{cap}(?:[\s\-](?:(?:an|am|im|in|der|de|sur|la|le)[\s\-])?{cap})*"),
        format!(r"{cap}(?:\s{cap})*[\s\-]\d{{6}}\b"),
        // Units, and US military addresses
        r"(?i:\b(?:apt\.?|apartment|suite|flat|studio|unit|piso|puerta|appartamento|piano|interno|bus|lgh)\s?\d{1,5}[A-Za-z]?\b)".to_string(),
        r"\bH\.\s?No\.\s?\d{1,5}(?:/\d{1,5})?\b".to_string(),
        r"\b(?:PSC|Unit)\s\d{4},?\sBox\s\d{4}\b".to_string(),
        r"\b(?:USNS|USNV|USS|USCGC)\s\p{Lu}\p{L}+\b".to_string(),
        r"\b[ADF]PO\sA[AEP]\s\d{5}\b".to_string(),
        // Japanese: prefecture, city/ward, 丁目/番/号 and a building
        r"(?:〒?\d{3}-\d{4}\s?)?(?:北海道|東京都|京都府|大阪府|\p{Han}{2,3}県)[\p{Han}\p{Hiragana}\p{Katakana}ー]+?\d+(?:丁目|-)\d+(?:番地?|-)\d+(?:号)?(?:\s[\p{Han}\p{Katakana}ー]+\d*)?".to_string(),
    ]
    .iter()
    // The long alternations are written over several lines: join them.
    .map(|p| p.replace("\\\n", ""))
    .collect()
});
static PATTERNS: LazyLock<Vec<Regex>> =
    LazyLock::new(|| SOURCES.iter().map(|p| super::regex(p).expect("valid")).collect());
/// One pass over the text says which patterns match at all (most texts: none).
static SET: LazyLock<regex::RegexSet> = LazyLock::new(|| super::regex_set(SOURCES.iter().map(String::as_str)));

/// A part next to a found address that belongs to it: a short capitalised place
/// name (`Goldenmouth`, `Castel Di Lama Stazione (AP)`, `North Kaylee`).
static PLACE: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(r"^\p{Lu}[\p{L}\p{M}'’\-]*(?:[\s\-](?:\p{Lu}[\p{L}\p{M}'’\-]*|di|de|del|da|do|dos|das|la|le|sur|am|an|im|aan|den|op|bij|/|[A-Z]{2}))*(?:\s\([A-Z]{2}\))?$|^'s-\p{Lu}\p{L}+$|^\d+e\s\p{Lu}\p{L}+$|^\d{1,6}[A-Za-z]?$|^\d{4}\s?[A-Z]{2}$")
        .expect("valid")
});

/// What ends an address inside a sentence: a postal code, "City (XX)".
static TAIL: LazyLock<Regex> = LazyLock::new(|| {
    super::regex(r"^(?:\d{4,6}(?:-\d{3})?\b|\p{Lu}[\p{L}\p{M}'’\- ]*\s\([A-Z]{2}\))").expect("valid")
});
/// A house number standing as its own part: "07/744", "12B", "H.No. 12".
static HOUSE: LazyLock<Regex> =
    LazyLock::new(|| super::regex(r"^(?:H\.?\s?No\.?\s?)?\d{1,5}(?:\s?/\s?\d{1,5})?[A-Za-z]?$").expect("valid"));

pub(super) fn addresses(s: &str, spans: &mut Vec<Span>) {
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut strong: Vec<(usize, usize)> = Vec::new();
    for k in SET.matches(s).iter() {
        for m in PATTERNS[k].find_iter(s) {
            // Not from inside a word: the patterns' word boundaries are ASCII
            // ones (see super::regex), so "Åkervägen" has none before it.
            if s[..m.start()].chars().next_back().is_some_and(char::is_alphanumeric) {
                continue;
            }
            found.push((m.start(), m.end()));
            if k < 3 || k >= PATTERNS.len() - 4 {
                strong.push((m.start(), m.end()));
            }
        }
    }
    if found.is_empty() {
        return;
    }
    found.sort();
    // Merge what touches or overlaps, then grow over neighbouring parts.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (a, b) in found {
        match merged.last_mut() {
            Some(last) if a <= last.1 || a <= last.1 + 2 && s[last.1..a].chars().all(|c| c == ' ' || c == ',') => {
                last.1 = last.1.max(b)
            }
            _ => merged.push((a, b)),
        }
    }
    // One pass: `out` holds the finished addresses; `next` is the first found
    // part not consumed yet (no removal from the middle of a vector, so a
    // long text full of parts stays linear).
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(merged.len());
    let mut next = 0;
    while next < merged.len() {
        let (mut a, mut b) = merged[next];
        next += 1;
        // Grow right over ", Part" while each part is an address part or a place.
        loop {
            let rest = &s[b..];
            let sep = rest.len() - rest.trim_start_matches([',', ' ', '\n']).len();
            if sep == 0 || !rest[..sep].contains([',', '\n']) {
                // A space alone joins only another found part.
                if sep > 0 && next < merged.len() && merged[next].0 == b + sep {
                    b = merged[next].1;
                    next += 1;
                    continue;
                }
                break;
            }
            let part_start = b + sep;
            if next < merged.len() && merged[next].0 == part_start {
                b = merged[next].1;
                next += 1;
                continue;
            }
            let part_end = s[part_start..].find([',', '\n', '.', '!', '?', ';']).map_or(s.len(), |e| part_start + e);
            let part = s[part_start..part_end].trim_end();
            // A place is short and capitalised all through; sentence words stop it.
            if !part.is_empty() && part.split_whitespace().count() <= 4 && PLACE.is_match(part) {
                b = part_start + part.len();
            } else {
                // A postal code or an Italian "City (XX)" ends the address
                // even when the sentence goes on after it.
                if let Some(m) = TAIL.find(&s[part_start..]) {
                    b = part_start + m.end();
                }
                break;
            }
        }
        // Grow left over "Part, ": the address just before (a unit or a
        // building before the street), or places back to a house number.
        let trimmed = s[..a].trim_end_matches([' ']);
        if trimmed.ends_with(',') {
            let t = trimmed.trim_end_matches(',');
            let part_start = t.rfind([',', '\n', '.', ':', ';']).map_or(0, |e| e + 1);
            let part = t[part_start..].trim_start();
            let pstart = t.len() - part.len();
            if let Some(&(pa, _)) = out.last().filter(|&&(_, pb)| pb >= pstart && pb <= t.len()) {
                a = pa;
                out.pop();
            } else if HOUSE.is_match(part) {
                a = pstart;
            } else {
                // "07/744, Kashyap, Patna-398978": places back to a house number.
                let (mut cur_at, mut cur) = (pstart, part);
                for _ in 0..3 {
                    if !(cur.split_whitespace().count() <= 3 && PLACE.is_match(cur)) {
                        break;
                    }
                    let p = s[..cur_at].trim_end_matches(' ');
                    if !p.ends_with(',') {
                        break;
                    }
                    let p = p.trim_end_matches(',');
                    let ps = p.rfind([',', '\n', '.', ':', ';']).map_or(0, |e| e + 1);
                    let q = p[ps..].trim_start();
                    let q_at = p.len() - q.len();
                    if HOUSE.is_match(q) {
                        a = q_at;
                        break;
                    }
                    (cur_at, cur) = (q_at, q);
                }
            }
        }
        out.push((a, b));
    }
    strong.sort_unstable();
    for (a, b) in out {
        // A lone postal code or unit is not an address: "room 101" and "5 km"
        // survive; what counts is a street line, or two parts together.
        let text = &s[a..b];
        let first = strong.partition_point(|&(x, _)| x < a);
        let has_strong = strong[first..].iter().take_while(|&&(x, _)| x < b).any(|&(_, y)| y <= b);
        if is_address(text) && (has_strong || text.split([',', '\n']).filter(|p| !p.trim().is_empty()).count() >= 2) {
            spans.push(Span::new(a, b, Kind::Address));
        }
    }
}

fn is_address(t: &str) -> bool {
    let parts = t.split([',', '\n']).filter(|p| !p.trim().is_empty()).count();
    let has_digit = t.bytes().any(|b| b.is_ascii_digit());
    let has_letter = t.chars().any(|c| c.is_alphabetic());
    has_letter && (has_digit || parts >= 2) && t.chars().count() >= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &str) -> Vec<&str> {
        let mut sp = vec![];
        addresses(s, &mut sp);
        sp.iter().map(|x| &s[x.start..x.end]).collect()
    }

    #[test]
    fn street_lines_grow_over_their_places_and_stop_at_words() {
        assert_eq!(
            found("I live at 7, rue Lecoq, 69242 Laporte, near the park."),
            ["7, rue Lecoq, 69242 Laporte"]
        );
        assert_eq!(
            found("We moved to Industrigränd 31, 10669 Karlstad last month."),
            ["Industrigränd 31, 10669 Karlstad"]
        );
        assert_eq!(
            found("Send it to 754 Laura Square Apt. 194, Goldenmouth, LA 80318 please"),
            ["754 Laura Square Apt. 194, Goldenmouth, LA 80318"]
        );
        assert_eq!(
            found("aleja Łabędzia 763, 13-500 Bydgoszcz"),
            ["aleja Łabędzia 763, 13-500 Bydgoszcz"]
        );
        for s in [
            "Run 5 km in 25 min",
            "Room 101 at 10:30",
            "It said 1997 OK",
            "Do 3 sets of 12 reps",
        ] {
            assert!(found(s).is_empty(), "{s}: {:?}", found(s));
        }
    }
}
