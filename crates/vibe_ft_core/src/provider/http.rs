//! The HTTP transport shared by the clients: one `ureq` agent, the auth header,
//! JSON and multipart requests, classification of every failure, and retries
//! with backoff for the requests that are safe to repeat.
//!
//! Safe to repeat: every GET / DELETE / cancel, and any request the server
//! provably did not act on (connection refused, 429). An upload or a job
//! creation that failed in an ambiguous way (timeout, reset, 5xx, a malformed
//! 2xx body) is *not* repeated here: the error goes back to the job runner,
//! which looks for what the lost request may have made before trying again.

use super::multipart::{self, random_u64, Form};
use super::retry::{classify, parse_reset_duration, Backoff, Disposition};
use super::{Auth, Endpoint, ProviderError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// Largest error or JSON body we read (job lists of 100 are ~100 KB).
const MAX_BODY: u64 = 16 * 1024 * 1024;

pub struct Transport {
    agent: ureq::Agent,
    endpoint: Endpoint,
    backoff: Backoff,
    sleep: fn(Duration),
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    OnlyIfNotProcessed,
}

enum Payload<'a> {
    Empty,
    Json(&'a serde_json::Value),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        fields: &'a [(&'a str, &'a str)],
        field: &'a str,
        filename: &'a str,
    },
}

impl Transport {
    pub fn new(endpoint: Endpoint) -> Transport {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never follow a redirect: the key would travel with the request to
            // wherever the answer points (another host, or plain HTTP).
            .max_redirects(0)
            .timeout_connect(Some(endpoint.timeout))
            .timeout_recv_response(Some(endpoint.timeout))
            .timeout_recv_body(Some(endpoint.timeout))
            .user_agent(concat!("vibe_ft/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Transport {
            agent,
            endpoint,
            backoff: Backoff::default(),
            sleep: std::thread::sleep,
        }
    }

    /// Replace the sleep between retries (tests use a no-op).
    pub fn with_sleep(mut self, sleep: fn(Duration)) -> Transport {
        self.sleep = sleep;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call("GET", path, Payload::Empty, Repeat::Safe)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call("DELETE", path, Payload::Empty, Repeat::Safe)
    }

    pub fn post_json<T: DeserializeOwned>(&self, path: &str, body: &serde_json::Value, repeat: Repeat) -> Result<T> {
        self.call("POST", path, Payload::Json(body), repeat)
    }

    pub fn patch_json<T: DeserializeOwned>(&self, path: &str, body: &serde_json::Value) -> Result<T> {
        self.call("PATCH", path, Payload::Json(body), Repeat::Safe)
    }

    /// POST a form with text `fields` and `len` bytes of the file at `path`
    /// starting at `offset`, streamed. Not repeated after an ambiguous failure.
    #[allow(clippy::too_many_arguments)]
    pub fn post_file<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        field: &str,
        filename: &str,
        file: &Path,
        offset: u64,
        len: u64,
    ) -> Result<T> {
        let payload = Payload::File {
            path: file,
            offset,
            len,
            fields,
            field,
            filename,
        };
        self.call("POST", path, payload, Repeat::OnlyIfNotProcessed)
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, payload: Payload<'_>, repeat: Repeat) -> Result<T> {
        self.call_unscrubbed(method, path, payload, repeat).map_err(|mut e| {
            // A provider that echoes the key back (in an error message) must
            // not put it into a job event, a log line or an error.
            let key = self.endpoint.key.expose();
            if key.len() >= 8 && e.message.contains(key) {
                e.message = e.message.replace(key, "***");
            }
            e
        })
    }

    fn call_unscrubbed<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        payload: Payload<'_>,
        repeat: Repeat,
    ) -> Result<T> {
        let attempts = self.endpoint.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            let (err, hint) = match self.once(method, path, &payload) {
                Ok(reply) => match reply.interpret::<T>(method, path) {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                },
                Err(e) => (e, (None, None)),
            };
            let not_processed = err.http_status == Some(429) || err.code.as_deref() == Some("connection_refused");
            let may_repeat = repeat == Repeat::Safe || not_processed;
            attempt += 1;
            if err.disposition != Disposition::Retry || !may_repeat || attempt >= attempts {
                return Err(err);
            }
            let jitter = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
            (self.sleep)(
                self.backoff
                    .delay(attempt - 1, hint.0.as_deref(), hint.1.as_deref(), jitter),
            );
        }
    }

    fn once(&self, method: &str, path: &str, payload: &Payload<'_>) -> std::result::Result<Reply, ProviderError> {
        let url = format!("{}{}", self.endpoint.base_url.trim_end_matches('/'), path);
        let (auth_name, auth_value) = match self.endpoint.auth() {
            Auth::Bearer => ("authorization", format!("Bearer {}", self.endpoint.key.expose())),
            Auth::Header(name) => (name, self.endpoint.key.expose().to_string()),
        };
        let result = match (method, payload) {
            ("GET", _) => self.agent.get(&url).header(auth_name, &auth_value).call(),
            ("DELETE", _) => self.agent.delete(&url).header(auth_name, &auth_value).call(),
            ("PATCH", Payload::Json(v)) => self
                .agent
                .patch(&url)
                .header(auth_name, &auth_value)
                .header("content-type", "application/json")
                .send(serde_json::to_vec(v).expect("JSON values serialise")),
            (_, Payload::Empty) => self.agent.post(&url).header(auth_name, &auth_value).send_empty(),
            (_, Payload::Json(v)) => self
                .agent
                .post(&url)
                .header(auth_name, &auth_value)
                .header("content-type", "application/json")
                .send(serde_json::to_vec(v).expect("JSON values serialise")),
            (
                _,
                Payload::File {
                    path: file,
                    offset,
                    len,
                    fields,
                    field,
                    filename,
                },
            ) => {
                let mut f = File::open(file).map_err(|e| local_io(file, e))?;
                f.seek(SeekFrom::Start(*offset)).map_err(|e| local_io(file, e))?;
                let form = Form::new(
                    &multipart::random_boundary(),
                    fields,
                    field,
                    filename,
                    "application/jsonl",
                );
                let content_type = form.content_type();
                let total = form.content_length(*len);
                let reader = form.into_reader(std::io::BufReader::with_capacity(256 * 1024, f), *len);
                // Sending may take a while, but never forever: allow 1 MB/s on top of the timeout.
                let send_limit = self.endpoint.timeout + Duration::from_secs(total / 1_000_000);
                self.agent
                    .post(&url)
                    .header(auth_name, &auth_value)
                    .header("content-type", &content_type)
                    .header("content-length", total.to_string())
                    .config()
                    .timeout_send_body(Some(send_limit))
                    .build()
                    .send(ureq::SendBody::from_owned_reader(reader))
            }
        };
        let mut response = result.map_err(|e| transport_error(method, path, e))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let request_id = header("x-request-id").or_else(|| header("apim-request-id"));
        let retry_after_ms = header("retry-after-ms");
        let retry_after = header("retry-after");
        let reset = header("x-ratelimit-reset-requests");
        let location = header("location");
        let mut body = String::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_BODY)
            .read_to_string(&mut body)
            .map_err(|e| ProviderError {
                disposition: Disposition::Retry,
                http_status: Some(status),
                code: Some("connection".into()),
                message: format!("{method} {path}: response body lost ({e})"),
                request_id: request_id.clone(),
                retry_after: None,
            })?;
        Ok(Reply {
            status,
            body,
            request_id,
            retry_after_ms,
            retry_after,
            reset,
            location,
        })
    }
}

/// A provider's answer: status, the headers we read, and the body.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub request_id: Option<String>,
    pub retry_after_ms: Option<String>,
    pub retry_after: Option<String>,
    pub reset: Option<String>,
    pub location: Option<String>,
}

/// The `retry-after-ms` and `retry-after` values of a failed answer, for the backoff.
pub type RetryHint = (Option<String>, Option<String>);

impl Reply {
    /// What an answer means: the decoded body of a 2xx, or a classified error
    /// with the server's retry hint. Pure, and total: whatever a provider (or
    /// something pretending to be one) answers, this returns; it never panics.
    pub fn interpret<T: DeserializeOwned>(self, method: &str, path: &str) -> std::result::Result<T, (ProviderError, RetryHint)> {
        if (200..300).contains(&self.status) {
            // Postgres text and jsonb cannot hold U+0000: a provider's string
            // with one would fail every write of it (a job stuck polling).
            let body = if self.body.contains("\\u0000") {
                std::borrow::Cow::Owned(self.body.replace("\\u0000", "\\ufffd"))
            } else {
                std::borrow::Cow::Borrowed(self.body.as_str())
            };
            return serde_json::from_str::<T>(&body).map_err(|e| {
                let err = ProviderError {
                    disposition: Disposition::Retry,
                    http_status: Some(self.status),
                    code: Some("malformed_response".into()),
                    message: format!("{method} {path}: unreadable response body ({e})"),
                    request_id: self.request_id.clone(),
                    retry_after: None,
                };
                (err, (None, None))
            });
        }
        let hint = (self.retry_after_ms.clone(), self.retry_after.clone());
        Err((self.into_error(method, path), hint))
    }

    fn into_error(self, method: &str, path: &str) -> ProviderError {
        if (300..400).contains(&self.status) {
            // Redirects are not followed (see Transport::new): say where it pointed.
            let to: String = self.location.as_deref().unwrap_or("nowhere").chars().take(200).collect();
            return ProviderError {
                disposition: Disposition::Fail,
                http_status: Some(self.status),
                code: Some("redirect".into()),
                message: format!(
                    "{method} {path}: HTTP {} redirect to {to}; vibe_ft does not follow redirects \
                     (set the base URL to where the API really is)",
                    self.status
                ),
                request_id: self.request_id,
                retry_after: None,
            };
        }
        let api = parse_error_body(&self.body);
        let code = api.as_ref().and_then(|e| e.code.clone().or_else(|| e.kind.clone()));
        let message = match api.as_ref().and_then(|e| e.message.clone()) {
            Some(m) if !m.trim().is_empty() => m,
            _ => format!("{method} {path}: HTTP {}", self.status),
        };
        let disposition = classify(Some(self.status), code.as_deref());
        let retry_after = self.reset.as_deref().and_then(parse_reset_duration).or_else(|| {
            self.retry_after
                .as_deref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(super::retry::MAX_WAIT.as_secs())))
        });
        ProviderError {
            disposition,
            http_status: Some(self.status),
            code,
            message,
            request_id: self.request_id,
            retry_after,
        }
    }
}

fn local_io(path: &Path, e: std::io::Error) -> ProviderError {
    ProviderError::local(
        Disposition::Retry,
        "local_file",
        format!("cannot read {}: {e}", path.display()),
    )
}

fn transport_error(method: &str, path: &str, e: ureq::Error) -> ProviderError {
    let code = match &e {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::ConnectionFailed => "connection_refused",
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection_refused",
        ureq::Error::HostNotFound => "host_not_found",
        _ => "connection",
    };
    let disposition = match &e {
        ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl => Disposition::Fail,
        _ => Disposition::Retry,
    };
    ProviderError::local(disposition, code, format!("{method} {path}: {e}"))
}

/// The error envelope of OpenAI-compatible APIs (OpenAI, Azure OpenAI v1,
/// Together): `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
}

/// Some providers send numeric codes; keep them as text.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The error of an error response, if the body is one (bodies that are not
/// JSON, or JSON of another shape, give `None`: report the HTTP status then).
pub fn parse_error_body(body: &str) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    serde_json::from_str::<Envelope>(body).ok().map(|e| e.error)
}

/// Percent-encode a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
