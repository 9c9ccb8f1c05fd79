//! Whatever a provider answers (or something pretending to be one: a proxy, a
//! captive portal, an attacker on the path), reading the answer never panics:
//! a panic inside Postgres ends the process, and in the worker that means a
//! restart every few seconds. Property tests over arbitrary statuses, headers
//! and bodies, through every step of the handling that follows: decoding,
//! classification, the backoff, the job's next wait and the poll delay.

use proptest::prelude::*;
use std::time::Duration;
use vibe_ft_core::provider::http::Reply;
use vibe_ft_core::provider::openai::{map_status, FineTuningJob, List};
use vibe_ft_core::provider::retry::{parse_reset_duration, Backoff};
use vibe_ft_core::provider::{Checkpoint, FileObject, JobEvent, ProviderError};
use vibe_ft_core::runner::{on_failure, poll_delay, seconds_until, Cadence};

/// A JSON value of bounded depth, with the field names provider objects use,
/// so decoding gets past the first brace.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_default()),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("id"),
        Just("status"),
        Just("error"),
        Just("code"),
        Just("message"),
        Just("data"),
        Just("has_more"),
        Just("estimated_finish"),
        Just("trained_tokens"),
        Just("metadata"),
        Just("fine_tuned_model"),
        Just("bytes"),
        Just("step_number"),
        Just("metrics"),
        Just("created_at"),
    ]
    .prop_map(String::from);
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn header() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        ".{0,40}",
        "[0-9]{1,400}",
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?",
        "([0-9]{1,25}(h|m|s|ms|us|ns)){1,4}",
        Just("1e308".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
    ])
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        0u16..1000,
        prop_oneof![json().prop_map(|v| v.to_string()), ".{0,200}"],
        header(),
        header(),
        header(),
        header(),
        header(),
    )
        .prop_map(
            |(status, body, request_id, retry_after_ms, retry_after, reset, location)| Reply {
                status,
                body,
                request_id,
                retry_after_ms,
                retry_after,
                reset,
                location,
            },
        )
}

fn follow_up(e: &ProviderError, hint: (Option<String>, Option<String>), attempts: u32) {
    let _ = Backoff::default().delay(attempts, hint.0.as_deref(), hint.1.as_deref(), 0.5);
    let _ = on_failure(e, attempts, Duration::from_secs(30));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_answer_is_read_without_panicking(r in reply(), attempts in any::<u32>(), now in any::<i64>()) {
        let cadence = Cadence { fast: Duration::from_secs(15), slow: Duration::from_secs(300) };
        match r.clone().interpret::<FineTuningJob>("GET", "/fine_tuning/jobs/x") {
            Ok(job) => {
                let status = map_status(&job.status);
                let _ = poll_delay(status, cadence, seconds_until(job.estimated_finish, now));
            }
            Err((e, hint)) => follow_up(&e, hint, attempts),
        }
        if let Err((e, hint)) = r.clone().interpret::<List<FineTuningJob>>("GET", "/fine_tuning/jobs") {
            follow_up(&e, hint, attempts);
        }
        let _ = r.clone().interpret::<List<JobEvent>>("GET", "/events");
        let _ = r.clone().interpret::<List<Checkpoint>>("GET", "/checkpoints");
        let _ = r.clone().interpret::<FileObject>("POST", "/files");
        if let Some(reset) = &r.reset {
            let _ = parse_reset_duration(reset);
        }
    }

    #[test]
    fn waits_stay_bounded(r in reply()) {
        if let Err((e, _)) = r.interpret::<FineTuningJob>("POST", "/fine_tuning/jobs") {
            if let Some(d) = e.retry_after {
                prop_assert!(d <= vibe_ft_core::provider::retry::MAX_WAIT);
            }
        }
    }
}

#[test]
fn a_redirect_is_a_permanent_error_that_names_where_it_pointed() {
    let r = Reply {
        status: 307,
        location: Some("http://127.0.0.1:9/v1/files".into()),
        ..Reply::default()
    };
    let (e, _) = r.interpret::<FileObject>("POST", "/files").unwrap_err();
    assert_eq!(e.code.as_deref(), Some("redirect"));
    assert_eq!(e.disposition, vibe_ft_core::provider::retry::Disposition::Fail);
    assert!(e.message.contains("http://127.0.0.1:9/v1/files"), "{}", e.message);
}

#[test]
fn the_reset_header_that_used_to_panic() {
    // Duration::from_secs_f64 panics above u64::MAX seconds; this header made the worker restart every 10 s.
    let r = Reply {
        status: 429,
        body: r#"{"error":{"code":"daily_rate_limit_exceeded","message":"limit"}}"#.into(),
        reset: Some("99999999999999999999999999h".into()),
        ..Reply::default()
    };
    let (e, _) = r.interpret::<FineTuningJob>("POST", "/fine_tuning/jobs").unwrap_err();
    assert_eq!(e.retry_after, Some(vibe_ft_core::provider::retry::MAX_WAIT));
    let _ = on_failure(&e, 0, Duration::from_secs(30));
}

#[test]
fn a_nul_in_a_provider_string_is_replaced() {
    // Postgres text and jsonb cannot hold U+0000; a job whose events carry one
    // would fail every poll.
    let r = Reply {
        status: 200,
        body: r#"{"id":"ftjob-1","status":"running","fine_tuned_model":"ft:a\u0000b","metadata":{"k":"\u0000"}}"#
            .into(),
        ..Reply::default()
    };
    let job = r
        .interpret::<FineTuningJob>("GET", "/fine_tuning/jobs/ftjob-1")
        .unwrap();
    assert_eq!(job.fine_tuned_model.as_deref(), Some("ft:a\u{fffd}b"));
    assert!(!format!("{job:?}").contains('\0'));
}
