//! Submitted: adopt the provider job made for ours (found by metadata, or by
//! training file and suffix), or price it (where the provider can) and create it.

use super::*;


pub(super) fn submit(mode: Mode, job: &Job) -> Result<()> {
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let found = match p.find_jobs(&job.tag()) {
        Ok(found) => found,
        Err(mut e) => {
            // We cannot know whether an earlier create went through: never fail here.
            e.disposition = provider::retry::Disposition::Retry;
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            return record_failure(mode, job, "look up provider job", &e.message.clone(), Some(&e), outcome);
        }
    };
    // Adopt a provider job of ours made from these files (a create whose answer
    // was lost). One made from files of an earlier export (before an erasure)
    // is not ours to train: a new one is created, and the poll cancels that
    // one as a duplicate.
    let made_from_these = |pj: &provider::Job| {
        pj.training_file.is_none() || pj.training_file.as_deref() == job.training_file_id.as_deref()
    };
    let (pj, how) = match found.into_iter().find(made_from_these) {
        Some(existing) => {
            let how = if existing.tagged.is_some() {
                "adopted provider job found by its metadata"
            } else {
                "adopted provider job found by its training file"
            };
            (existing, how)
        }
        None => {
            let new = job.new_job();
            if !price_allows(mode, job, &p, &new)? {
                return Ok(());
            }
            match p.create_job(&new) {
                Ok(created) => (created, "created provider job"),
                Err(e) => {
                    let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
                    record_failure(mode, job, "create job", &e.message, Some(&e), outcome.clone())?;
                    if matches!(outcome, Outcome::Fail { .. }) {
                        delete_uploaded(mode, job, &p);
                    }
                    return Ok(());
                }
            }
        }
    };
    let mapped = pj.state;
    // A job found already finished is finished by the next poll, which records its results.
    let status = if mapped.is_final() {
        JobStatus::Submitted
    } else {
        mapped
    };
    let delay = if mapped.is_final() {
        Duration::ZERO
    } else {
        plan::poll_delay(mapped, gucs::cadence(), None)
    };
    let linked = tx(mode, || {
        Spi::connect_mut(|c| {
            let t = c.update(
                "UPDATE vibe_ft.jobs SET provider_job_id = $2, provider_status = $3, status = $4, attempts = 0,
                        next_attempt_at = clock_timestamp() + make_interval(secs => $5)
                  WHERE id = $1 AND status = 'submitted' AND provider_job_id IS NULL RETURNING 1",
                None,
                &[
                    job.id.into(),
                    pj.id.as_str().into(),
                    pj.status.as_str().into(),
                    status.as_str().into(),
                    delay.as_secs_f64().into(),
                ],
            )?;
            if t.is_empty() {
                return Ok(false);
            }
            event(
                c,
                job.id,
                "provider",
                &format!("{how} {}", pj.id),
                Some(serde_json::json!({ "provider_job_id": pj.id, "status": pj.status })),
            )?;
            Ok(true)
        })
    })?;
    if !linked {
        // Cancelled while we created it: cancel it at the provider too.
        let r = p.cancel_job(&pj.id);
        let msg = match r {
            Ok(_) => format!(
                "cancelled provider job {} created while the job was being cancelled",
                pj.id
            ),
            Err(e) => format!("could not cancel provider job {}: {e}", pj.id),
        };
        tx(mode, || Spi::connect_mut(|c| event(c, job.id, "error", &msg, None)))?;
    }
    Ok(())
}

/// Before creating a job at a provider with an estimate API (Together): its
/// price, recorded as the job's estimate. The job fails, with its uploads
/// deleted, when the provider would refuse it (over the account's limit) or
/// when it would take the dataset over its monthly budget. `false`: do not
/// create. A failed estimate is not a reason to stop: the prices table's
/// estimate stands.
pub(super) fn price_allows(mode: Mode, job: &Job, p: &dyn Provider, new: &provider::NewJob) -> Result<bool> {
    let estimate = match p.estimate(new) {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(true),
        Err(e) if e.code.as_deref() == Some(provider::interruptible::INTERRUPTED) => return Ok(false),
        // The file is still being processed (or the provider rejected it): the
        // step runs again, or the job fails, as a create would.
        Err(e) if matches!(e.code.as_deref(), Some("file_processing") | Some("invalid_training_file")) => {
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            record_failure(mode, job, "price estimate", &e.message, Some(&e), outcome.clone())?;
            if matches!(outcome, Outcome::Fail { .. }) {
                delete_uploaded(mode, job, p);
            }
            return Ok(false);
        }
        Err(e) => {
            let msg = format!("the provider's price estimate failed ({e}); the prices table's estimate stands");
            tx(mode, || Spi::connect_mut(|c| event(c, job.id, "note", &msg, None)))?;
            return Ok(true);
        }
    };
    let source = format!("{} estimate", p.flavor().name());
    let refusal = tx(mode, || {
        Spi::connect_mut(|c| {
            let t = c.update(
                concat!(
                    "UPDATE vibe_ft.jobs j SET estimated_cost_usd = round($2::numeric, 4), estimated_cost_source = $3
                      WHERE j.id = $1
                     RETURNING (SELECT d.monthly_budget_usd::float8 FROM vibe_ft.datasets d WHERE d.id = j.dataset_id),
                               (SELECT coalesce(sum(",
                    crate::store::job_spend_usd!(),
                    "), 0)::float8
                                  FROM vibe_ft.jobs o
                                 WHERE o.dataset_id = j.dataset_id AND o.id <> j.id
                                   AND o.created_at >= date_trunc('month', now()))"
                ),
                None,
                &[job.id.into(), estimate.total_usd.into(), source.as_str().into()],
            )?;
            let (budget, spent) = t.first().get_two::<f64, f64>()?;
            event(
                c,
                job.id,
                "note",
                &format!("{source}: ${:.2}", estimate.total_usd),
                Some(serde_json::json!({
                    "estimated_total_usd": estimate.total_usd, "train_tokens": estimate.train_tokens,
                    "allowed_to_proceed": estimate.allowed, "user_limit_usd": estimate.user_limit_usd,
                })),
            )?;
            let spent = spent.unwrap_or(0.0);
            Ok(if !estimate.allowed {
                Some((
                    "over_provider_limit",
                    format!(
                        "{} would not run it: its estimate ${:.2} is over the account's limit{}",
                        p.flavor().name(),
                        estimate.total_usd,
                        estimate.user_limit_usd.map(|l| format!(" (${l:.2})")).unwrap_or_default()
                    ),
                ))
            } else if let Some(b) = budget.filter(|b| spent + estimate.total_usd > *b) {
                Some((
                    "over_budget",
                    format!(
                        "{source} ${:.2} plus ${spent:.2} spent this month is over the dataset's monthly budget ${b:.2}",
                        estimate.total_usd
                    ),
                ))
            } else {
                None
            })
        })
    })?;
    match refusal {
        None => Ok(true),
        Some((code, message)) => {
            tx(mode, || Spi::connect_mut(|c| fail_locally(c, job.id, code, &message)))?;
            delete_uploaded(mode, job, p);
            Ok(false)
        }
    }
}
