//! `multipart/form-data` bodies streamed from a reader, with the length known
//! up front (so requests carry `Content-Length`, as file APIs expect, and the
//! file is never held in memory).

use std::io::{self, Cursor, Read};

/// A form of text fields followed by one file part.
pub struct Form {
    boundary: String,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Form {
    /// `fields` are sent first, then the file part `file_field` named `filename`.
    pub fn new(boundary: &str, fields: &[(&str, &str)], file_field: &str, filename: &str, content_type: &str) -> Form {
        let mut head = Vec::new();
        for (name, value) in fields {
            head.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            head.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(name)).as_bytes(),
            );
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        head.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
                quote(file_field),
                quote(filename)
            )
            .as_bytes(),
        );
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Form {
            boundary: boundary.to_string(),
            head,
            tail,
        }
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// Total body length for a file part of `file_len` bytes.
    pub fn content_length(&self, file_len: u64) -> u64 {
        self.head.len() as u64 + file_len + self.tail.len() as u64
    }

    /// The body: fields, then exactly `file_len` bytes of `file`, then the
    /// closing boundary. A file shorter than promised is an error, not a
    /// silently truncated upload.
    pub fn into_reader<R: Read>(self, file: R, file_len: u64) -> impl Read {
        let exact = Exact {
            inner: file.take(file_len),
            remaining: file_len,
        };
        Cursor::new(self.head).chain(exact).chain(Cursor::new(self.tail))
    }
}

/// Names and file names go inside quotes: keep them from breaking out.
fn quote(s: &str) -> String {
    s.chars()
        .map(|c| if c == '"' || c == '\r' || c == '\n' { '_' } else { c })
        .collect()
}

struct Exact<R> {
    inner: io::Take<R>,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than its announced length",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A boundary that will not occur in JSONL by accident: 128 random bits.
pub fn random_boundary() -> String {
    format!(
        "vibe_ft-{:016x}{:016x}",
        random_u64(),
        random_u64()
    )
}

/// A random 64-bit number from the standard library's per-process random keys
/// (jitter and multipart boundaries need unpredictability, not cryptography).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_matches_body_and_shape() {
        let form = Form::new(
            "XyZ",
            &[("purpose", "fine-tune")],
            "file",
            "train.jsonl",
            "application/jsonl",
        );
        let data = b"{\"messages\":[]}\n{\"messages\":[]}\n";
        let len = form.content_length(data.len() as u64);
        let mut body = Vec::new();
        form.into_reader(&data[..], data.len() as u64)
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body.len() as u64, len);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.starts_with("--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ\r\n")
        );
        assert!(text.contains(
            "name=\"file\"; filename=\"train.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"messages\""
        ));
        assert!(text.ends_with("{\"messages\":[]}\n\r\n--XyZ--\r\n"));
    }

    #[test]
    fn short_file_is_an_error_and_long_file_is_cut() {
        let form = Form::new("b", &[], "data", "p", "application/octet-stream");
        let mut out = Vec::new();
        let err = form.into_reader(&b"abc"[..], 10).read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let form = Form::new("b", &[], "data", "p", "application/octet-stream");
        let mut out = Vec::new();
        form.into_reader(&b"abcdef"[..], 3).read_to_end(&mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("\r\n\r\nabc\r\n--b--"));
    }

    #[test]
    fn quotes_cannot_break_out() {
        let form = Form::new("b", &[], "file", "a\"b\r\n.jsonl", "text/plain");
        assert!(String::from_utf8(form.head)
            .unwrap()
            .contains("filename=\"a_b__.jsonl\""));
    }
}
