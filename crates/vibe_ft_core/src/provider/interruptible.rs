//! Provider calls that the caller can walk away from.
//!
//! A provider call can take minutes (a large upload, a slow answer, the retry
//! sleeps between attempts). Inside Postgres that is a problem: a worker that
//! is asked to stop (`pg_ctl stop -m fast`) or a query that is cancelled must
//! react within moments, and Postgres only notices such requests when the
//! process checks for them. So every call runs on a helper thread while the
//! calling thread waits in short slices, asking `interrupted()` between them;
//! when it says so, the caller returns at once and the helper is left to finish
//! or time out on its own (a lost answer, which the job runner is built to
//! survive: it looks before it creates or uploads again).
//!
//! The helper threads touch nothing of Postgres: they only hold the client,
//! owned copies of the arguments, and a channel. They start with every signal
//! blocked, so Postgres' signal handlers keep running on the main thread.

use super::retry::Disposition;
use super::{
    Checkpoint, DeployRequest, Deployment, Estimate, FileObject, Flavor, Job, JobEvent, JobTag, NewJob, Provider,
    ProviderError, Result,
};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How often the waiting caller asks whether it should give up.
const SLICE: Duration = Duration::from_millis(50);

/// The `code` of the error returned when the caller gave up.
pub const INTERRUPTED: &str = "interrupted";

/// A [`Provider`] whose calls run on helper threads (see the module docs).
pub struct Interruptible {
    inner: Arc<dyn Provider + Send + Sync>,
    flavor: Flavor,
    interrupted: Box<dyn Fn() -> bool>,
}

impl Interruptible {
    /// `interrupted` runs on the calling thread, between waits; it may also
    /// raise (a Postgres error unwinds through here like any Rust panic).
    pub fn new(inner: Box<dyn Provider + Send + Sync>, interrupted: impl Fn() -> bool + 'static) -> Interruptible {
        let flavor = inner.flavor();
        Interruptible {
            inner: Arc::from(inner),
            flavor,
            interrupted: Box::new(interrupted),
        }
    }

    fn run<T: Send + 'static>(&self, call: impl FnOnce(&dyn Provider) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = mpsc::channel();
        spawn_with_signals_blocked(move || {
            let _ = tx.send(call(&*inner));
        })?;
        loop {
            match rx.recv_timeout(SLICE) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if (self.interrupted)() {
                        return Err(ProviderError::local(
                            Disposition::Retry,
                            INTERRUPTED,
                            "gave up waiting for the provider: the server is shutting down or the query was cancelled",
                        ));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ProviderError::local(
                        Disposition::Retry,
                        "internal",
                        "the provider call ended without an answer (a bug in vibe_ft: please report it)",
                    ))
                }
            }
        }
    }
}

/// Start `f` on a new thread that has every signal blocked.
fn spawn_with_signals_blocked(f: impl FnOnce() + Send + 'static) -> Result<()> {
    // SAFETY: plain calls on zero-initialised signal sets; the caller's mask is
    // restored before returning, and the new thread inherits the blocked one.
    let spawned = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let spawned = std::thread::Builder::new().name("vibe_ft provider".into()).spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned
    };
    spawned.map(|_| ()).map_err(|e| {
        ProviderError::local(
            Disposition::Retry,
            "internal",
            format!("cannot start a thread for the provider call: {e}"),
        )
    })
}

impl Provider for Interruptible {
    fn flavor(&self) -> Flavor {
        self.flavor
    }
    fn upload_file(&self, path: &Path, filename: &str) -> Result<FileObject> {
        let (path, filename): (PathBuf, String) = (path.to_path_buf(), filename.to_string());
        self.run(move |p| p.upload_file(&path, &filename))
    }
    fn find_files(&self, filename: &str) -> Result<Vec<FileObject>> {
        let filename = filename.to_string();
        self.run(move |p| p.find_files(&filename))
    }
    fn delete_file(&self, file_id: &str) -> Result<()> {
        let file_id = file_id.to_string();
        self.run(move |p| p.delete_file(&file_id))
    }
    fn create_job(&self, job: &NewJob) -> Result<Job> {
        let job = job.clone();
        self.run(move |p| p.create_job(&job))
    }
    fn retrieve_job(&self, job_id: &str) -> Result<Job> {
        let job_id = job_id.to_string();
        self.run(move |p| p.retrieve_job(&job_id))
    }
    fn find_jobs(&self, tag: &JobTag) -> Result<Vec<Job>> {
        let tag = tag.clone();
        self.run(move |p| p.find_jobs(&tag))
    }
    fn cancel_job(&self, job_id: &str) -> Result<Job> {
        let job_id = job_id.to_string();
        self.run(move |p| p.cancel_job(&job_id))
    }
    fn job_events(&self, job_id: &str, last_seen: Option<&str>, max: usize) -> Result<Vec<JobEvent>> {
        let (job_id, last_seen) = (job_id.to_string(), last_seen.map(str::to_string));
        self.run(move |p| p.job_events(&job_id, last_seen.as_deref(), max))
    }
    fn checkpoints(&self, job_id: &str) -> Result<Vec<Checkpoint>> {
        let job_id = job_id.to_string();
        self.run(move |p| p.checkpoints(&job_id))
    }
    fn estimate(&self, job: &NewJob) -> Result<Option<Estimate>> {
        let job = job.clone();
        self.run(move |p| p.estimate(&job))
    }
    fn deploy(&self, req: &DeployRequest) -> Result<Deployment> {
        let req = req.clone();
        self.run(move |p| p.deploy(&req))
    }
    fn deployment(&self, id: &str) -> Result<Deployment> {
        let id = id.to_string();
        self.run(move |p| p.deployment(&id))
    }
    fn find_deployments(&self, display_name: &str) -> Result<Vec<Deployment>> {
        let name = display_name.to_string();
        self.run(move |p| p.find_deployments(&name))
    }
    fn start_deployment(&self, id: &str, req: &DeployRequest) -> Result<Deployment> {
        let (id, req) = (id.to_string(), req.clone());
        self.run(move |p| p.start_deployment(&id, &req))
    }
    fn stop_deployment(&self, id: &str) -> Result<Deployment> {
        let id = id.to_string();
        self.run(move |p| p.stop_deployment(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    /// A provider whose every call takes `delay`.
    struct Slow(Duration);

    impl Provider for Slow {
        fn flavor(&self) -> Flavor {
            Flavor::OpenAi
        }
        fn upload_file(&self, _: &Path, _: &str) -> Result<FileObject> {
            std::thread::sleep(self.0);
            Ok(FileObject {
                id: "file-1".into(),
                bytes: Some(1),
                filename: None,
                purpose: None,
                status: None,
            })
        }
        fn find_files(&self, _: &str) -> Result<Vec<FileObject>> {
            std::thread::sleep(self.0);
            Ok(vec![])
        }
        fn delete_file(&self, _: &str) -> Result<()> {
            panic!("a bug in a client");
        }
        fn create_job(&self, _: &NewJob) -> Result<Job> {
            unimplemented!()
        }
        fn retrieve_job(&self, _: &str) -> Result<Job> {
            unimplemented!()
        }
        fn find_jobs(&self, _: &JobTag) -> Result<Vec<Job>> {
            unimplemented!()
        }
        fn cancel_job(&self, _: &str) -> Result<Job> {
            unimplemented!()
        }
        fn job_events(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<JobEvent>> {
            unimplemented!()
        }
        fn checkpoints(&self, _: &str) -> Result<Vec<Checkpoint>> {
            unimplemented!()
        }
    }

    #[test]
    fn answers_pass_through() {
        let p = Interruptible::new(Box::new(Slow(Duration::from_millis(120))), || false);
        assert_eq!(p.upload_file(Path::new("x"), "x").unwrap().id, "file-1");
        assert_eq!(p.find_files("x").unwrap(), vec![]);
    }

    #[test]
    fn the_caller_gives_up_when_interrupted() {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let p = Interruptible::new(Box::new(Slow(Duration::from_secs(600))), move || {
            flag.load(Ordering::Relaxed)
        });
        let setter = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            setter.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let e = p.find_files("x").unwrap_err();
        assert_eq!(e.code.as_deref(), Some(INTERRUPTED));
        // Not a timing test: only "did not wait for the 10-minute call".
        assert!(start.elapsed() < Duration::from_secs(300));
    }

    #[test]
    fn a_panicking_client_is_an_error_not_a_crash() {
        let p = Interruptible::new(Box::new(Slow(Duration::ZERO)), || false);
        assert_eq!(p.delete_file("f").unwrap_err().code.as_deref(), Some("internal"));
    }
}
