//! Compact JSON straight from PostgreSQL's binary `jsonb` format.
//!
//! Printing a stored `jsonb` with Postgres (`jsonb_out`) spends most of its time
//! escaping strings one byte at a time. The export instead reads the binary
//! container (documented in PostgreSQL's `src/include/utils/jsonb.h`) and writes
//! compact JSON in one pass, escaping strings eight bytes at a time. Output is
//! byte for byte what `jsonb_out` prints minus the whitespace: same key order
//! (jsonb's storage order), same escapes as Postgres' `escape_json`.
//!
//! Layout of a container: a `u32` header (child count in the low 28 bits, flags
//! `SCALAR`/`OBJECT`/`ARRAY`), one `u32` JEntry per child (an object stores all
//! keys, then all values), then the children's data. A JEntry holds the child's
//! type and either its length or, every 32nd child, its end offset. Numbers and
//! nested containers are padded to 4-byte alignment within the data.
//!
//! Everything is bounds-checked: malformed input gives an error, never a panic
//! or an out-of-range read, and the caller falls back to Postgres' printer.

const JB_CMASK: u32 = 0x0FFF_FFFF;
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;
const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;

/// Deepest nesting followed before giving up (Postgres itself limits depth by stack).
const MAX_DEPTH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonbError {
    #[error("jsonb container is truncated or malformed")]
    Malformed,
    #[error("jsonb nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("jsonb numeric could not be printed")]
    Numeric,
}

fn read_u32(b: &[u8], at: usize) -> Result<u32, JsonbError> {
    let s = b.get(at..at + 4).ok_or(JsonbError::Malformed)?;
    Ok(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn int_align(x: usize) -> usize {
    (x + 3) & !3
}

/// Write the container in `c` (bytes from its header to the end of its data) as
/// compact JSON. `numeric` prints a numeric given the bytes of its varlena (from
/// its 4-byte-aligned start to the end of its entry), appending to `out`.
pub fn write_container<F>(c: &[u8], out: &mut Vec<u8>, numeric: &mut F) -> Result<(), JsonbError>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> Result<(), JsonbError>,
{
    write_container_at(c, out, numeric, 0)
}

fn write_container_at<F>(c: &[u8], out: &mut Vec<u8>, numeric: &mut F, depth: usize) -> Result<(), JsonbError>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> Result<(), JsonbError>,
{
    if depth > MAX_DEPTH {
        return Err(JsonbError::TooDeep);
    }
    let header = read_u32(c, 0)?;
    let count = (header & JB_CMASK) as usize;
    let is_object = header & JB_FOBJECT != 0;
    let is_array = header & JB_FARRAY != 0;
    if is_object == is_array {
        return Err(JsonbError::Malformed);
    }
    let children = if is_object {
        count.checked_mul(2).ok_or(JsonbError::Malformed)?
    } else {
        count
    };
    let data_start = 4usize
        .checked_add(children.checked_mul(4).ok_or(JsonbError::Malformed)?)
        .ok_or(JsonbError::Malformed)?;
    if data_start > c.len() {
        return Err(JsonbError::Malformed);
    }
    let data = &c[data_start..];

    // Offsets of every child, computed sequentially: start of child i is the end of child i-1.
    let child = |i: usize, start: usize| -> Result<(u32, usize, usize), JsonbError> {
        let entry = read_u32(c, 4 + 4 * i)?;
        let offlen = (entry & JENTRY_OFFLENMASK) as usize;
        let end = if entry & JENTRY_HAS_OFF != 0 {
            offlen
        } else {
            start.checked_add(offlen).ok_or(JsonbError::Malformed)?
        };
        if end < start || end > data.len() {
            return Err(JsonbError::Malformed);
        }
        Ok((entry & JENTRY_TYPEMASK, start, end))
    };

    if header & JB_FSCALAR != 0 {
        // A top-level scalar is stored as a one-element array.
        if count != 1 || !is_array {
            return Err(JsonbError::Malformed);
        }
        let (ty, start, end) = child(0, 0)?;
        return write_value(ty, data, start, end, out, numeric, depth);
    }

    if is_array {
        out.push(b'[');
        let mut start = 0;
        for i in 0..count {
            let (ty, s, end) = child(i, start)?;
            if i > 0 {
                out.push(b',');
            }
            write_value(ty, data, s, end, out, numeric, depth)?;
            start = end;
        }
        out.push(b']');
    } else {
        // Keys are children 0..count, values count..2*count; values start where keys end.
        let mut start = 0;
        let mut keys = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            let (ty, s, end) = child(i, start)?;
            if ty != JENTRY_ISSTRING {
                return Err(JsonbError::Malformed);
            }
            keys.push((s, end));
            start = end;
        }
        out.push(b'{');
        for (i, &(ks, ke)) in keys.iter().enumerate() {
            let (ty, s, end) = child(count + i, start)?;
            if i > 0 {
                out.push(b',');
            }
            escape_json_into(&data[ks..ke], out);
            out.push(b':');
            write_value(ty, data, s, end, out, numeric, depth)?;
            start = end;
        }
        out.push(b'}');
    }
    Ok(())
}

fn write_value<F>(
    ty: u32,
    data: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
    numeric: &mut F,
    depth: usize,
) -> Result<(), JsonbError>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> Result<(), JsonbError>,
{
    match ty {
        JENTRY_ISSTRING => escape_json_into(&data[start..end], out),
        JENTRY_ISNULL => out.extend_from_slice(b"null"),
        JENTRY_ISBOOL_TRUE => out.extend_from_slice(b"true"),
        JENTRY_ISBOOL_FALSE => out.extend_from_slice(b"false"),
        JENTRY_ISNUMERIC => {
            let s = int_align(start);
            if s > end {
                return Err(JsonbError::Malformed);
            }
            numeric(&data[s..end], out)?;
        }
        JENTRY_ISCONTAINER => {
            let s = int_align(start);
            if s > end {
                return Err(JsonbError::Malformed);
            }
            write_container_at(&data[s..end], out, numeric, depth + 1)?;
        }
        _ => return Err(JsonbError::Malformed),
    }
    Ok(())
}

const HI: u64 = 0x8080_8080_8080_8080;
const LO: u64 = 0x0101_0101_0101_0101;

/// Does any byte of `x` need escaping (`"`, `\` or below 0x20)? Bytes >= 0x80
/// (UTF-8 continuation and lead bytes) never do.
#[inline(always)]
fn needs_escape(x: u64) -> bool {
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
    (below_space | has_zero(x ^ (LO * b'"' as u64)) | has_zero(x ^ (LO * b'\\' as u64))) != 0
}

/// Append `s` as a JSON string, escaped exactly like Postgres' `escape_json`:
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other bytes below 0x20 as
/// `\u00xx` (lowercase hex), everything else verbatim.
pub fn escape_json_into(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0; // start of the pending verbatim run
    let mut i = 0;
    while i < s.len() {
        // Skip eight clean bytes at a time.
        while i + 8 <= s.len() {
            let x = u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
            if needs_escape(x) {
                break;
            }
            i += 8;
        }
        if i >= s.len() {
            break;
        }
        let b = s[i];
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => {
                out.extend_from_slice(&s[run..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
                i += 1;
                run = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&s[run..i]);
        out.extend_from_slice(esc);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    //! The reader is checked here against a small encoder written from the same
    //! layout description, and in the database (src/tests.rs) against Postgres'
    //! own printer on real jsonb values.
    use super::*;
    use crate::jsonl;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// Encode a JSON value in jsonb's binary container layout (keys sorted as
    /// jsonb sorts them: shorter first, then bytewise). Numbers are stored as
    /// their text with a fake 4-byte header, printed back by `fake_numeric`.
    fn encode(v: &Value) -> Vec<u8> {
        match v {
            Value::Array(_) | Value::Object(_) => encode_container(v),
            scalar => {
                // A scalar at top level: a one-element array with the scalar flag.
                let mut c = encode_container(&Value::Array(vec![scalar.clone()]));
                let h = u32::from_ne_bytes(c[0..4].try_into().unwrap()) | JB_FSCALAR;
                c[0..4].copy_from_slice(&h.to_ne_bytes());
                c
            }
        }
    }

    fn encode_container(v: &Value) -> Vec<u8> {
        let (flag, children): (u32, Vec<Value>) = match v {
            Value::Array(a) => (JB_FARRAY | a.len() as u32, a.clone()),
            Value::Object(o) => {
                let mut kv: Vec<_> = o.iter().collect();
                kv.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.as_bytes().cmp(b.0.as_bytes())));
                let mut ch: Vec<Value> = kv.iter().map(|(k, _)| Value::String((*k).clone())).collect();
                ch.extend(kv.iter().map(|(_, v)| (*v).clone()));
                (JB_FOBJECT | o.len() as u32, ch)
            }
            _ => unreachable!(),
        };
        let mut entries = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        // Alignment is relative to the container start; data starts after the entries.
        let base = 4 + 4 * children.len();
        for (i, c) in children.iter().enumerate() {
            let start = data.len();
            let ty = match c {
                Value::Null => JENTRY_ISNULL,
                Value::Bool(true) => JENTRY_ISBOOL_TRUE,
                Value::Bool(false) => JENTRY_ISBOOL_FALSE,
                Value::String(s) => {
                    data.extend_from_slice(s.as_bytes());
                    JENTRY_ISSTRING
                }
                Value::Number(n) => {
                    while !(base + data.len()).is_multiple_of(4) {
                        data.push(0);
                    }
                    let text = n.to_string();
                    data.extend_from_slice(&((text.len() as u32 + 4) << 2).to_ne_bytes());
                    data.extend_from_slice(text.as_bytes());
                    JENTRY_ISNUMERIC
                }
                Value::Array(_) | Value::Object(_) => {
                    while !(base + data.len()).is_multiple_of(4) {
                        data.push(0);
                    }
                    data.extend(encode_container(c));
                    JENTRY_ISCONTAINER
                }
            };
            let end = data.len();
            let e = if i % 32 == 0 {
                ty | JENTRY_HAS_OFF | end as u32
            } else {
                ty | (end - start) as u32
            };
            entries.push(e);
        }
        let mut out = flag.to_ne_bytes().to_vec();
        for e in entries {
            out.extend_from_slice(&e.to_ne_bytes());
        }
        out.extend(data);
        out
    }

    fn fake_numeric(b: &[u8], out: &mut Vec<u8>) -> Result<(), JsonbError> {
        let len = (u32::from_ne_bytes(b[0..4].try_into().unwrap()) >> 2) as usize;
        out.extend_from_slice(&b[4..len]);
        Ok(())
    }

    fn print(v: &Value) -> String {
        let mut out = Vec::new();
        write_container(&encode(v), &mut out, &mut fake_numeric).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_compact_json_in_storage_order() {
        assert_eq!(
            print(
                &json!([{"role": "system", "content": "You are Coach Decibel..."}, {"role": "user", "content": "hi"}])
            ),
            r#"[{"role":"system","content":"You are Coach Decibel..."},{"role":"user","content":"hi"}]"#
        );
        assert_eq!(
            print(&json!({"b": 1, "a": [true, false, null], "aa": {}})),
            r#"{"a":[true,false,null],"b":1,"aa":{}}"#
        );
        assert_eq!(print(&json!([])), "[]");
        assert_eq!(print(&json!("scalar")), r#""scalar""#);
        assert_eq!(print(&json!(42)), "42");
    }

    #[test]
    fn strides_of_32_children_are_followed() {
        let arr: Vec<Value> = (0..100).map(|i| json!(format!("item {i}"))).collect();
        let v = Value::Array(arr.clone());
        assert_eq!(serde_json::from_str::<Value>(&print(&v)).unwrap(), v);
        let obj: serde_json::Map<String, Value> = (0..70).map(|i| (format!("k{i:03}"), json!([i, "x"]))).collect();
        let v = Value::Object(obj);
        assert_eq!(serde_json::from_str::<Value>(&print(&v)).unwrap(), v);
    }

    #[test]
    fn escapes_like_postgres() {
        for s in [
            "",
            "plain ascii long enough to take the fast path",
            "\"q\" \\ \n\r\t\u{8}\u{c}",
            "\u{1}\u{1f}\u{7f}",
            "é😀ש",
            "12345678\"12345678\\",
        ] {
            let mut ours = Vec::new();
            escape_json_into(s.as_bytes(), &mut ours);
            let mut pg = String::new();
            jsonl::pg_escape_json(s, &mut pg);
            assert_eq!(String::from_utf8(ours).unwrap(), pg, "{s:?}");
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = encode(&json!([{"role": "user", "content": "hello"}]));
        for cut in 0..good.len() {
            let mut out = Vec::new();
            let _ = write_container(&good[..cut], &mut out, &mut fake_numeric);
        }
        let mut out = Vec::new();
        assert_eq!(
            write_container(&[0, 0, 0, 0], &mut out, &mut fake_numeric),
            Err(JsonbError::Malformed)
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            any::<String>().prop_map(|s| Value::String(s.replace('\0', ""))),
        ];
        leaf.prop_recursive(4, 64, 40, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..40).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\u{e9}\"\\\\]{0,6}", inner, 0..40)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn any_value_round_trips(v in arb_json()) {
            let printed = print(&v);
            prop_assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), v);
        }

        #[test]
        fn escaping_matches_postgres_on_any_string(s in any::<String>()) {
            let mut ours = Vec::new();
            escape_json_into(s.as_bytes(), &mut ours);
            let mut pg = String::new();
            jsonl::pg_escape_json(&s, &mut pg);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), pg);
        }
    }
}
