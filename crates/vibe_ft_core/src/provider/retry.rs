//! Retrying provider calls without retry storms or second paid jobs.
//!
//! The rules follow OpenAI's own SDK: connection errors, timeouts, 408, 409, 429
//! and 5xx are transient; wait what `retry-after-ms` / `retry-after` say when that
//! is at most 120 s, otherwise back off from 0.5 s doubling to 8 s, minus up to
//! 25% jitter. Two 429s are not transient: `insufficient_quota` (nobody will pay
//! for it by retrying) and `daily_rate_limit_exceeded` (a per-day cap on job
//! creation: try again another day).

use std::time::Duration;

/// The longest wait any provider answer can impose on a job (a week): headers
/// asking for more are read as this, so no value a server sends can overflow
/// a timestamp or a `Duration`.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What to do after a failed provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: wait and try again.
    Retry,
    /// Permanent: fail the job with the provider's message and code.
    Fail,
    /// Not today: leave the job waiting and try again on a later day.
    Defer,
}

/// Classify a failure. `http_status` is `None` for a connection error or a
/// timeout (no response); `code` is the `error.code` of the provider's body.
pub fn classify(http_status: Option<u16>, code: Option<&str>) -> Disposition {
    match (http_status, code) {
        (_, Some("insufficient_quota")) => Disposition::Fail,
        (_, Some("daily_rate_limit_exceeded")) => Disposition::Defer,
        (None, _) => Disposition::Retry,
        (Some(408 | 409 | 429), _) => Disposition::Retry,
        (Some(s), _) if (500..=599).contains(&s) => Disposition::Retry,
        _ => Disposition::Fail,
    }
}

/// Exponential backoff with jitter, honouring the server's wish when sane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A server-requested wait longer than this is ignored (the SDK uses 120 s).
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    /// `retry_after_ms` and `retry_after` are the raw header values, if any;
    /// `jitter` is a random number in `[0, 1)` supplied by the caller.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after_ms: Option<&str>,
        retry_after: Option<&str>,
        jitter: f64,
    ) -> Duration {
        let requested = retry_after_ms
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|ms| ms / 1000.0)
            .or_else(|| retry_after.and_then(|v| v.trim().parse::<f64>().ok()));
        if let Some(secs) = requested {
            if secs.is_finite() && secs >= 0.0 && secs <= self.max_retry_after.as_secs_f64() {
                return Duration::from_secs_f64(secs);
            }
        }
        let exp = self.initial.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let base = exp.min(self.max.as_secs_f64());
        Duration::from_secs_f64(base * (1.0 - 0.25 * jitter.clamp(0.0, 1.0)))
    }
}

/// Parse the Go-style durations of OpenAI's `x-ratelimit-reset-*` headers:
/// `6m0s`, `1s`, `20ms`, `1h2m3.5s`. Values above [`MAX_WAIT`] read as it.
pub fn parse_reset_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(total.min(MAX_WAIT.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_permanent_and_deferred() {
        assert_eq!(classify(None, None), Disposition::Retry);
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert_eq!(classify(Some(s), None), Disposition::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert_eq!(
                classify(Some(s), Some("invalid_request_error")),
                Disposition::Fail,
                "{s}"
            );
        }
        assert_eq!(classify(Some(429), Some("insufficient_quota")), Disposition::Fail);
        assert_eq!(
            classify(Some(429), Some("daily_rate_limit_exceeded")),
            Disposition::Defer
        );
        assert_eq!(classify(Some(429), Some("rate_limit_exceeded")), Disposition::Retry);
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        let b = Backoff::default();
        let ms = |attempt, jitter| b.delay(attempt, None, None, jitter).as_millis();
        assert_eq!(ms(0, 0.0), 500);
        assert_eq!(ms(1, 0.0), 1000);
        assert_eq!(ms(4, 0.0), 8000);
        assert_eq!(ms(40, 0.0), 8000);
        assert_eq!(ms(0, 0.999_999), 375);
        assert!((6000..=8000).contains(&ms(10, 0.5)));
    }

    #[test]
    fn server_requested_waits_are_honoured_when_sane() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, Some("1500"), Some("9"), 0.0), Duration::from_millis(1500));
        assert_eq!(b.delay(0, None, Some("9"), 0.0), Duration::from_secs(9));
        assert_eq!(b.delay(0, None, Some("0.25"), 0.0), Duration::from_millis(250));
        // Too long, negative or not a number: fall back to backoff.
        assert_eq!(b.delay(0, None, Some("3600"), 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(1, Some("-5"), None, 0.0), Duration::from_millis(1000));
        assert_eq!(
            b.delay(0, None, Some("Wed, 21 Oct 2026 07:28:00 GMT"), 0.0),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn reset_durations() {
        assert_eq!(parse_reset_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
        assert_eq!(parse_reset_duration(""), None);
        assert_eq!(parse_reset_duration("soon"), None);
        assert_eq!(parse_reset_duration("5x"), None);
        // Absurd values are capped, never a panic (Duration::from_secs_f64 panics on overflow).
        assert_eq!(parse_reset_duration("99999999999999999999999h"), Some(MAX_WAIT));
        assert_eq!(parse_reset_duration(&format!("{}s", "9".repeat(400))), None);
    }
}
