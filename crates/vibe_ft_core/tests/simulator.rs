//! The provider clients against the repo's simulator (`sim/ftsim.py`) on
//! loopback: every call, the Uploads API, and each fault kind. Skipped (with a
//! message) when python3 is missing.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vibe_ft_core::provider::openai::Client;
use vibe_ft_core::provider::retry::Disposition;
use vibe_ft_core::provider::{Endpoint, Flavor, JobTag, NewJob, Provider, Secret, JOB_ID_METADATA_KEY};

fn tag(job_id: &str) -> JobTag {
    JobTag {
        job_id: job_id.into(),
        training_file: None,
        suffix: None,
    }
}

struct Sim {
    child: Child,
    port: u16,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim(extra: &[&str]) -> Option<Sim> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sim/ftsim.py");
    let mut child = match Command::new("python3")
        .arg(&script)
        .args([
            "--port",
            "0",
            "--key",
            "sk-test",
            "--job-seconds",
            "1",
            "--hang-seconds",
            "3",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipping: cannot run python3 ({e})");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    Some(Sim { child, port })
}

fn client(sim: &Sim, flavor: Flavor, key: &str) -> Client {
    let base = match flavor {
        Flavor::OpenAi => format!("http://127.0.0.1:{}/v1", sim.port),
        Flavor::Azure => format!("http://127.0.0.1:{}/openai/v1", sim.port),
        Flavor::Together => unreachable!("Together has its own client: together()"),
    };
    Client::new(Endpoint {
        flavor,
        base_url: base,
        key: Secret::new(key),
        timeout: Duration::from_secs(2),
        max_attempts: 3,
    })
    .with_sleep(|_| {})
}

fn fault(sim: &Sim, endpoint: &str, kind: &str, count: u32) {
    let body = format!(r#"{{"faults":[{{"endpoint":"{endpoint}","kind":"{kind}","count":{count},"retry_after":0}}]}}"#);
    ureq::post(&format!("http://127.0.0.1:{}/_sim/faults", sim.port))
        .send(body)
        .unwrap();
}

fn state(sim: &Sim) -> serde_json::Value {
    let body = ureq::get(&format!("http://127.0.0.1:{}/_sim/state", sim.port))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn jsonl(examples: usize) -> tempfile_path::TempPath {
    let path = tempfile_path::TempPath::new();
    let mut f = std::fs::File::create(&path.0).unwrap();
    for i in 0..examples {
        writeln!(
            f,
            r#"{{"messages":[{{"role":"user","content":"q{i}"}},{{"role":"assistant","content":"a{i}"}}]}}"#
        )
        .unwrap();
    }
    path
}

mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn new() -> TempPath {
            let n = vibe_ft_core::provider::multipart::random_u64();
            TempPath(std::env::temp_dir().join(format!("vibe_ft-test-{n:x}.jsonl")))
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn new_job(training_file: &str, our_id: &str) -> NewJob {
    NewJob {
        model: "gpt-4o-mini-2024-07-18".into(),
        training_file: training_file.into(),
        validation_file: None,
        suffix: Some("coach".into()),
        seed: Some(1),
        method: "supervised".into(),
        hyperparameters: serde_json::json!({"n_epochs": 2}),
        metadata: [(JOB_ID_METADATA_KEY.to_string(), our_id.to_string())].into(),
    }
}

#[test]
fn whole_job_round_trip() {
    let Some(sim) = sim(&[]) else { return };
    let c = client(&sim, Flavor::OpenAi, "sk-test");
    let file = jsonl(12);
    let f = c.upload_file(&file.0, "vibe_ft-j1-train.jsonl").unwrap();
    assert_eq!(f.bytes, Some(std::fs::metadata(&file.0).unwrap().len()));
    assert_eq!(c.find_files("vibe_ft-j1-train.jsonl").unwrap().len(), 1);
    assert!(c.find_files("other.jsonl").unwrap().is_empty());
    let job = c.create_job(&new_job(&f.id, "j1")).unwrap();
    assert_eq!(job.status, "validating_files");
    assert_eq!(c.find_jobs(&tag("j1")).unwrap()[0].id, job.id);
    assert!(c.find_jobs(&tag("j2")).unwrap().is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let j = c.retrieve_job(&job.id).unwrap();
        if j.status == "succeeded" || Instant::now() > deadline {
            break j;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done.status, "succeeded");
    assert!(done
        .model
        .unwrap()
        .starts_with("ft:gpt-4o-mini-2024-07-18:vibe-ft-sim:coach:"));
    assert!(done.trained_tokens.unwrap() > 0);
    let events = c.job_events(&job.id, None, 1000).unwrap();
    assert!(
        events.len() > 5 && events.last().unwrap().message.as_deref() == Some("The job has successfully completed")
    );
    let again = c.job_events(&job.id, Some(&events[3].id), 1000).unwrap();
    assert_eq!(again.len(), events.len() - 4, "only events after the last one seen");
    assert!(!c.checkpoints(&job.id).unwrap().is_empty());
    c.delete_file(&f.id).unwrap();
    assert!(c.find_files("vibe_ft-j1-train.jsonl").unwrap().is_empty());
}

#[test]
fn uploads_api_in_parts_and_cancel() {
    let Some(sim) = sim(&[]) else { return };
    let c = client(&sim, Flavor::OpenAi, "sk-test").with_upload_limits(100, 300);
    let file = jsonl(40);
    let len = std::fs::metadata(&file.0).unwrap().len();
    let f = c.upload_file(&file.0, "big.jsonl").unwrap();
    assert_eq!(f.bytes, Some(len));
    let st = state(&sim);
    let parts = st["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["endpoint"] == "upload_part")
        .count();
    assert_eq!(parts as u64, len.div_ceil(300));
    let job = c.create_job(&new_job(&f.id, "j2")).unwrap();
    assert_eq!(c.cancel_job(&job.id).unwrap().status, "cancelled");
    assert_eq!(
        c.cancel_job(&job.id).unwrap().status,
        "cancelled",
        "cancel is idempotent"
    );
}

#[test]
fn azure_uses_its_header_paths_and_suffix_rule() {
    let Some(sim) = sim(&[]) else { return };
    let c = client(&sim, Flavor::Azure, "sk-test");
    let file = jsonl(10);
    let f = c.upload_file(&file.0, "t.jsonl").unwrap();
    let mut j = new_job(&f.id, "j3");
    j.suffix = Some("x".repeat(41));
    let e = c.create_job(&j).unwrap_err();
    assert_eq!(
        (e.disposition, e.code.as_deref()),
        (Disposition::Fail, Some("invalid_suffix"))
    );
    j.suffix = Some("coach-v2".into());
    let job = c.create_job(&j).unwrap();
    assert_eq!(job.model, None, "no fine-tuned model before it trains");
    let st = state(&sim);
    assert!(st["requests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["path"].as_str().unwrap().starts_with("/openai/v1/")));
}

#[test]
fn permanent_failures_are_not_retried() {
    let Some(sim) = sim(&[]) else { return };
    let bad = client(&sim, Flavor::OpenAi, "sk-wrong");
    let e = bad.retrieve_job("ftjob-x").unwrap_err();
    assert_eq!(
        (e.disposition, e.http_status, e.code.as_deref()),
        (Disposition::Fail, Some(401), Some("invalid_api_key"))
    );
    assert!(
        !format!("{e:?}").contains("sk-wrong"),
        "the key never appears in errors"
    );
    let c = client(&sim, Flavor::OpenAi, "sk-test");
    let e = c.retrieve_job("ftjob-missing").unwrap_err();
    assert_eq!((e.disposition, e.http_status), (Disposition::Fail, Some(404)));
    let file = jsonl(10);
    let f = c.upload_file(&file.0, "t.jsonl").unwrap();
    fault(&sim, "create", "quota", 1);
    let e = c.create_job(&new_job(&f.id, "q")).unwrap_err();
    assert_eq!(
        (e.disposition, e.code.as_deref()),
        (Disposition::Fail, Some("insufficient_quota"))
    );
    fault(&sim, "create", "daily", 1);
    let e = c.create_job(&new_job(&f.id, "q")).unwrap_err();
    assert_eq!(
        (e.disposition, e.code.as_deref()),
        (Disposition::Defer, Some("daily_rate_limit_exceeded"))
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(6 * 3600)));
    assert!(state(&sim)["jobs"].as_array().unwrap().is_empty());
    let bad_file = tempfile_path::TempPath::new();
    std::fs::write(&bad_file.0, "not json\n").unwrap();
    let e = c.upload_file(&bad_file.0, "bad.jsonl").unwrap_err();
    assert_eq!(
        (e.disposition, e.code.as_deref()),
        (Disposition::Fail, Some("invalid_file_format"))
    );
}

#[test]
fn transient_failures_retry_only_where_safe() {
    let Some(sim) = sim(&[]) else { return };
    let c = client(&sim, Flavor::OpenAi, "sk-test");
    let file = jsonl(10);
    let f = c.upload_file(&file.0, "t.jsonl").unwrap();
    let job = c.create_job(&new_job(&f.id, "t")).unwrap();
    for kind in ["429", "500", "503", "reset", "malformed"] {
        fault(&sim, "retrieve", kind, 2);
        assert_eq!(
            c.retrieve_job(&job.id).unwrap().id,
            job.id,
            "GET retried through two {kind}s"
        );
    }
    fault(&sim, "retrieve", "500", 3);
    let e = c.retrieve_job(&job.id).unwrap_err();
    assert_eq!(
        (e.disposition, e.http_status),
        (Disposition::Retry, Some(500)),
        "gives up after max_attempts"
    );
    // A 429 on create was not processed: safe to repeat.
    fault(&sim, "create", "429", 1);
    c.create_job(&new_job(&f.id, "t2")).unwrap();
    // A 500 or a dropped response may have made a job: hand it back to the runner.
    for (kind, code) in [
        ("500", None),
        ("drop", Some("connection")),
        ("malformed", Some("malformed_response")),
    ] {
        fault(&sim, "create", kind, 1);
        let e = c.create_job(&new_job(&f.id, kind)).unwrap_err();
        assert_eq!(e.disposition, Disposition::Retry, "{kind}");
        if code.is_some() {
            assert_eq!(e.code.as_deref(), code, "{kind}");
        }
    }
    let made = c.find_jobs(&tag("drop")).unwrap();
    assert_eq!(made.len(), 1, "the dropped create made a job; the lookup finds it");
    // Uploads likewise.
    fault(&sim, "upload", "drop", 1);
    assert_eq!(
        c.upload_file(&file.0, "lost.jsonl").unwrap_err().disposition,
        Disposition::Retry
    );
    assert_eq!(c.find_files("lost.jsonl").unwrap().len(), 1);
    // A hang past the client timeout is a timeout, retried for GETs.
    fault(&sim, "retrieve", "hang", 1);
    let t = Instant::now();
    assert_eq!(c.retrieve_job(&job.id).unwrap().id, job.id);
    assert!(t.elapsed() >= Duration::from_secs(2));
    fault(&sim, "create", "hang", 1);
    let e = c.create_job(&new_job(&f.id, "h")).unwrap_err();
    assert_eq!(
        (e.disposition, e.code.as_deref()),
        (Disposition::Retry, Some("timeout"))
    );
}

/// Streaming: uploading a file does not hold it in memory. (Run by hand:
/// `cargo test -p vibe_ft_core --release --test simulator -- --ignored upload_memory --nocapture`.)
#[test]
#[ignore]
fn upload_memory() {
    let Some(sim) = sim(&[]) else { return };
    let c = Client::new(Endpoint {
        flavor: Flavor::OpenAi,
        base_url: format!("http://127.0.0.1:{}/v1", sim.port),
        key: Secret::new("sk-test"),
        timeout: Duration::from_secs(120),
        max_attempts: 1,
    });
    let file = tempfile_path::TempPath::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file.0).unwrap());
        for i in 0..150_000 {
            writeln!(
                f,
                r#"{{"messages":[{{"role":"user","content":"q{i} {}"}},{{"role":"assistant","content":"a"}}]}}"#,
                "x".repeat(900)
            )
            .unwrap();
        }
    }
    let anon = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("RssAnon:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = anon();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let p2 = peak.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let t = std::thread::spawn(move || {
        while !d2.load(std::sync::atomic::Ordering::Relaxed) {
            p2.fetch_max(anon(), std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    c.upload_file(&file.0, "big.jsonl").unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
    let grew = (peak.load(std::sync::atomic::Ordering::Relaxed) - before) / 1024;
    eprintln!(
        "file {} MB, anonymous memory grew {grew} MB",
        std::fs::metadata(&file.0).unwrap().len() / 1_000_000
    );
    assert!(grew < 64);
}

fn together(sim: &Sim) -> vibe_ft_core::provider::together::Client {
    vibe_ft_core::provider::together::Client::new(Endpoint {
        flavor: Flavor::Together,
        base_url: format!("http://127.0.0.1:{}/together/v1", sim.port),
        key: Secret::new("sk-test"),
        timeout: Duration::from_secs(2),
        max_attempts: 3,
    })
    .with_sleep(|d| std::thread::sleep(d.min(Duration::from_millis(200))))
}

fn together_job(training_file: &str, suffix: &str) -> NewJob {
    NewJob {
        model: "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference".into(),
        training_file: training_file.into(),
        validation_file: None,
        suffix: Some(suffix.into()),
        seed: Some(7),
        method: "supervised".into(),
        hyperparameters: serde_json::json!({"n_epochs": 2, "learning_rate": 1e-5}),
        metadata: [(JOB_ID_METADATA_KEY.to_string(), "ours".to_string())].into(),
    }
}

#[test]
fn together_runs_a_job_to_a_model_and_serves_it() {
    use vibe_ft_core::provider::{DeployRequest, JobTag};
    use vibe_ft_core::status::JobStatus;
    let Some(sim) = sim(&[]) else { return };
    let c = together(&sim);
    let data = jsonl(12);
    let f = c.upload_file(&data.0, "vibe_ft-j1-train.jsonl").unwrap();
    assert!(f.id.starts_with("file-"), "{f:?}");
    assert_eq!(c.find_files("vibe_ft-j1-train.jsonl").unwrap().len(), 1);
    assert!(c.find_files("other.jsonl").unwrap().is_empty());
    // The create waits for Together to process the file, then sends the flat request.
    let job = c.create_job(&together_job(&f.id, "coach")).unwrap();
    assert!(job.id.starts_with("ft-"), "{job:?}");
    assert_eq!(job.state, JobStatus::Queued, "{job:?}");
    // No metadata: the job is found again by its training file and suffix.
    let tag = |file: &str, suffix: &str| JobTag {
        job_id: "ours".into(),
        training_file: Some(file.into()),
        suffix: Some(suffix.into()),
    };
    assert_eq!(c.find_jobs(&tag(&f.id, "coach")).unwrap()[0].id, job.id);
    assert!(c.find_jobs(&tag(&f.id, "other")).unwrap().is_empty());
    assert!(c.find_jobs(&tag("file-nope", "coach")).unwrap().is_empty());
    let estimate = c.estimate(&together_job(&f.id, "coach")).unwrap().unwrap();
    assert!(estimate.total_usd > 0.0 && estimate.allowed, "{estimate:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let done = loop {
        let j = c.retrieve_job(&job.id).unwrap();
        if j.state.is_final() || Instant::now() > deadline {
            break j;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done.state, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.status, "completed");
    let model = done.model.clone().unwrap();
    assert!(model.ends_with(&format!(":coach:{}", job.id)), "{model}");
    assert!(
        done.cost_usd.unwrap() > 0.0 && done.trained_tokens.unwrap() > 0,
        "{done:?}"
    );
    // Events have no ids: the cursor is a count.
    let events = c.job_events(&job.id, None, 1000).unwrap();
    assert!(events.len() >= 3, "{events:?}");
    assert!(
        events.iter().all(|e| e.created_at.is_some_and(|t| t > 1_700_000_000)),
        "ISO timestamps read"
    );
    let again = c.job_events(&job.id, Some(&events[1].id), 1000).unwrap();
    assert_eq!(again.len(), events.len() - 2);
    assert!(!c.checkpoints(&job.id).unwrap().is_empty());
    // Serving: a dedicated endpoint, found again by its display name.
    let d = c
        .deploy(&DeployRequest {
            model: model.clone(),
            hardware: "1x_nvidia_h100_80gb_sxm".into(),
            min_replicas: 1,
            max_replicas: 1,
            inactive_timeout_minutes: 30,
            display_name: Some("vibe_ft-j1".into()),
        })
        .unwrap();
    assert!(d.name.is_some(), "{d:?}");
    let found = c.find_deployments("vibe_ft-j1").unwrap();
    assert_eq!((found.len(), found[0].id.as_str()), (1, d.id.as_str()));
    assert_eq!(found[0].autoscaling.as_ref().unwrap().max_replicas, Some(1));
    assert!(c.find_deployments("vibe_ft-j2").unwrap().is_empty());
    let stopped = c.stop_deployment(&d.id).unwrap();
    assert!(
        matches!(stopped.state.as_deref(), Some("STOPPING") | Some("STOPPED")),
        "{stopped:?}"
    );
    // Started again with other replicas: what runs is what was asked for now.
    let again = DeployRequest {
        model: model.clone(),
        hardware: "1x_nvidia_h100_80gb_sxm".into(),
        min_replicas: 1,
        max_replicas: 2,
        inactive_timeout_minutes: 10,
        display_name: None,
    };
    let restarted = c.start_deployment(&d.id, &again).unwrap();
    assert_eq!(restarted.autoscaling.unwrap().max_replicas, Some(2));
    // A second job, cancelled.
    let f2 = c.upload_file(&data.0, "vibe_ft-j2-train.jsonl").unwrap();
    let j2 = c.create_job(&together_job(&f2.id, "coach")).unwrap();
    assert_eq!(c.cancel_job(&j2.id).unwrap().status, "cancel_requested");
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.retrieve_job(&j2.id).unwrap().state != JobStatus::Cancelled {
        assert!(Instant::now() < deadline, "not cancelled");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.delete_file(&f2.id).unwrap();
    assert_eq!(state(&sim)["together"]["files"].as_array().unwrap().len(), 1);
}

#[test]
fn together_refuses_bad_data_and_faults_are_classified() {
    use vibe_ft_core::provider::together::map_status;
    let Some(sim) = sim(&[]) else { return };
    let c = together(&sim);
    // Two user turns in a row: Together's processing marks the file invalid,
    // and the create fails with its report instead of waiting for ever.
    let bad = tempfile_path::TempPath::new();
    std::fs::write(
        &bad.0,
        r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]}
"#,
    )
    .unwrap();
    let f = c.upload_file(&bad.0, "vibe_ft-bad-train.jsonl").unwrap();
    let e = c.create_job(&together_job(&f.id, "coach")).unwrap_err();
    assert_eq!(e.disposition, Disposition::Fail, "{e:?}");
    assert_eq!(e.code.as_deref(), Some("invalid_training_file"), "{e:?}");
    assert!(e.message.contains("Line 1"), "{e:?}");
    // A 500 on create is not repeated (the runner looks before creating again);
    // a 429 is (the request was not processed).
    let good = jsonl(12);
    let f = c.upload_file(&good.0, "vibe_ft-ok-train.jsonl").unwrap();
    fault(&sim, "create", "500", 1);
    assert_eq!(
        c.create_job(&together_job(&f.id, "a")).unwrap_err().http_status,
        Some(500)
    );
    fault(&sim, "create", "429", 1);
    assert!(c.create_job(&together_job(&f.id, "b")).is_ok());
    fault(&sim, "retrieve", "503", 2);
    let listed = c.find_jobs(&vibe_ft_core::provider::JobTag {
        job_id: "ours".into(),
        training_file: Some(f.id.clone()),
        suffix: None,
    });
    assert_eq!(listed.unwrap().len(), 1, "one job: the 500 made none");
    assert_eq!(map_status("compressing"), vibe_ft_core::status::JobStatus::Running);
}
