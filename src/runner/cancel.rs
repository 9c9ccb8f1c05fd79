//! Cancelling a job: at the provider when it has (or may have) one, and locally.

use super::*;


/// Cancel a job at the provider (when it has one there, or may have) and
/// locally. Waits for a step in progress on the job to finish first.
pub fn cancel(job_id: Uuid) -> Result<String> {
    lock_job(job_id)?;
    let job = Spi::connect(|c| load(c, job_id))?;
    match job.status {
        JobStatus::Succeeded => {
            return Err(VibeError::Transition(crate::core::status::TransitionError::Finished {
                from: JobStatus::Succeeded,
                to: JobStatus::Cancelled,
            }))
        }
        JobStatus::Failed | JobStatus::Cancelled => return Ok(job.status.as_str().into()),
        _ => {}
    }
    // A job of another installation (a restored copy) is cancelled here only:
    // its provider objects are the original's.
    let touched_provider = job.ours
        && (job.training_file_id.is_some()
            || job.provider_job_id.is_some()
            || job.status == JobStatus::Submitted
            || job.export_round > 0);
    let mut provider_status = None;
    if touched_provider {
        let ep = Spi::connect(|c| keys::endpoint(c, &job.provider))?;
        let p = client(Mode::Sql, ep);
        let provider_err = |e: ProviderError| VibeError::Provider(format!("cancelling at the provider failed: {e}"));
        let mut targets: Vec<String> = job.provider_job_id.iter().cloned().collect();
        if targets.is_empty() && job.status == JobStatus::Submitted {
            targets = p
                .find_jobs(&job.tag())
                .map_err(provider_err)?
                .into_iter()
                .map(|j| j.id)
                .collect();
        }
        for t in &targets {
            match p.cancel_job(t) {
                Ok(pj) => provider_status = Some(pj.status),
                Err(e) if e.http_status == Some(400) => {
                    // Already finished there: record what it is and leave it.
                    let pj = p.retrieve_job(t).map_err(provider_err)?;
                    if pj.state == JobStatus::Succeeded {
                        return Err(VibeError::State(format!(
                            "provider job {t} already succeeded, and a succeeded job cannot be cancelled; \
                             the next poll records its model"
                        )));
                    }
                    provider_status = Some(pj.status);
                }
                Err(e) => return Err(provider_err(e)),
            }
        }
        if targets.is_empty() {
            delete_uploaded(Mode::Sql, &job, &p);
            if job.export_round > 0 {
                for note in sweep_files(&p, &job) {
                    Spi::connect_mut(|c| event(c, job_id, "note", &note, None))?;
                }
            }
        }
    }
    remove_local_files(job_id);
    Spi::connect_mut(|c| {
        c.update(
            "UPDATE vibe_ft.jobs SET status = 'cancelled', provider_status = coalesce($2, provider_status),
                    next_attempt_at = NULL
              WHERE id = $1",
            None,
            &[job_id.into(), provider_status.as_deref().into()],
        )?;
        let who = store::first_value::<String>(c.select("SELECT current_user::text", None, &[])?)?.unwrap_or_default();
        let note = if job.ours {
            format!("cancelled by {who}")
        } else {
            format!("cancelled by {who}, here only: the job belongs to another installation, whose provider objects are left alone")
        };
        event(c, job_id, "note", &note, None)
    })?;
    Ok("cancelled".into())
}
