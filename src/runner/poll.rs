//! The provider's states: poll, store events and metrics, record the result and
//! its cost; cancel duplicates made by a create that outlived its timeout.

use super::*;


pub(super) fn poll(mode: Mode, job: &Job) -> Result<()> {
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let pid = job.provider_job_id.clone().unwrap_or_default();
    let fetched = (|| -> provider::Result<_> {
        let pj = p.retrieve_job(&pid)?;
        let events = p.job_events(&pid, job.event_cursor.as_deref(), 500)?;
        let checkpoints = if pj.state == JobStatus::Succeeded {
            p.checkpoints(&pid)?
        } else {
            Vec::new()
        };
        let status = pj.state;
        let mut notes = Vec::new();
        // Where the provider keeps no metadata its jobs run at once: look at
        // every poll, not only while ours waits.
        if matches!(status, JobStatus::ValidatingFiles | JobStatus::Queued)
            || status.is_final()
            || !p.flavor().keeps_metadata()
        {
            notes.extend(cancel_duplicates(&p, job, &pid));
        }
        if status.is_final() {
            notes.extend(sweep_files(&p, job));
        }
        Ok((pj, events, checkpoints, notes))
    })();
    let (pj, events, checkpoints, swept) = match fetched {
        Ok(v) => v,
        Err(mut e) => {
            // A paid job is still out there: only "it does not exist" ends our interest.
            if e.http_status != Some(404) {
                e.disposition = provider::retry::Disposition::Retry;
            }
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            return record_failure(mode, job, "poll", &e.message.clone(), Some(&e), outcome);
        }
    };
    let status = pj.state;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let finish_in = plan::seconds_until(pj.estimated_finish, now);
    let delay = plan::poll_delay(status, gucs::cadence(), finish_in);
    tx(mode, || {
        Spi::connect_mut(|c| {
            let mut latest_metrics = None;
            for e in &events {
                if e.kind.as_deref() == Some("metrics") {
                    latest_metrics = e.data.clone();
                }
                let data = serde_json::json!({
                    "id": e.id, "created_at": e.created_at, "level": e.level, "type": e.kind, "data": e.data,
                });
                event(c, job.id, "provider", e.message.as_deref().unwrap_or(""), Some(data))?;
            }
            for note in &swept {
                event(c, job.id, "note", note, None)?;
            }
            let mut metrics = serde_json::Map::new();
            if let Some(m) = latest_metrics {
                metrics.insert("latest".into(), m);
            }
            if !checkpoints.is_empty() {
                let mut cps: Vec<_> = checkpoints.iter().collect();
                cps.sort_by_key(|c| c.step_number.unwrap_or(0));
                if let Some(last) = cps.last().and_then(|c| c.metrics.clone()) {
                    metrics.insert("final".into(), last);
                }
                metrics.insert(
                    "checkpoints".into(),
                    cps.iter()
                        .map(|c| serde_json::json!({ "step": c.step_number, "model": c.fine_tuned_model_checkpoint, "metrics": c.metrics }))
                        .collect(),
                );
            }
            let (err_code, err_msg) = match (&status, &pj.error) {
                (JobStatus::Failed, Some(e)) => (e.code.clone(), e.message.clone()),
                (JobStatus::Failed, None) => (
                    None,
                    Some("the provider reported the job failed without a reason".into()),
                ),
                _ => (None, None),
            };
            let cursor = events.last().map(|e| e.id.clone()).or(job.event_cursor.clone());
            let finish_at = finish_in.and(pj.estimated_finish).filter(|_| !status.is_final());
            c.update(
                "UPDATE vibe_ft.jobs SET
                        status = $2, provider_status = $3, provider_event_cursor = $4, attempts = 0,
                        next_attempt_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN NULL
                                               ELSE clock_timestamp() + make_interval(secs => $5) END,
                        estimated_finish_at = to_timestamp($6),
                        fine_tuned_model = coalesce($7, fine_tuned_model),
                        trained_tokens = coalesce($8, trained_tokens),
                        metrics = metrics || $9,
                        error_code = coalesce($10, error_code),
                        error_message = coalesce($11, error_message),
                        cost_usd = coalesce($12, cost_usd)
                  WHERE id = $1",
                None,
                &[
                    job.id.into(),
                    status.as_str().into(),
                    pj.status.as_str().into(),
                    cursor.as_deref().into(),
                    delay.as_secs_f64().into(),
                    finish_at.map(|t| t as f64).into(),
                    pj.model.as_deref().into(),
                    pj.trained_tokens.into(),
                    JsonB(serde_json::Value::Object(metrics)).into(),
                    err_code.as_deref().into(),
                    err_msg.as_deref().into(),
                    pj.cost_usd.map(|c| AnyNumeric::try_from(c).unwrap_or_else(|_| AnyNumeric::from(0))).into(),
                ],
            )?;
            Ok(())
        })
    })
}

/// Cancel provider jobs tagged with our id other than the one we track. A
/// create request can outlive our timeout and complete after we looked and
/// created again; such a duplicate shows up while ours is still validating or
/// queued, and is cancelled before it trains. Best effort; returns notes.
pub(super) fn cancel_duplicates(p: &dyn Provider, job: &Job, ours: &str) -> Vec<String> {
    match p.find_jobs(&job.tag()) {
        Ok(found) => found
            .iter()
            .filter(|j| j.id != ours && !j.state.is_final())
            .map(|j| match p.cancel_job(&j.id) {
                Ok(_) => format!(
                    "cancelled duplicate provider job {} (a create request that outlived its timeout)",
                    j.id
                ),
                Err(e) => format!("could not cancel duplicate provider job {}: {e}", j.id),
            })
            .collect(),
        Err(e) => vec![format!("could not look for duplicate provider jobs: {e}")],
    }
}
