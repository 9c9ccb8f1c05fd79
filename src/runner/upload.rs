//! Uploading: one split's file; a lost upload is found again by its name.

use super::*;


pub(super) fn upload(mode: Mode, job: &Job, split: Split) -> Result<()> {
    let path = local_file(job.id, split)?;
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(_) => {
            // The file is gone (a restore, a new disk, a crash before the rename):
            // export again, under new names, so no upload of the old file is reused.
            return tx(mode, || {
                Spi::connect_mut(|c| {
                    c.update(
                        "UPDATE vibe_ft.jobs SET status = 'exporting', training_file_id = NULL, validation_file_id = NULL,
                                export_round = export_round + 1, attempts = 0, next_attempt_at = NULL
                          WHERE id = $1 AND status = 'uploading'",
                        None,
                        &[job.id.into()],
                    )?;
                    event(c, job.id, "note", &format!("{} is gone: exporting again", path.display()), None)
                })
            });
        }
    };
    let Some(ep) = endpoint_or_wait(mode, job)? else {
        return Ok(());
    };
    let p = client(mode, ep);
    let name = plan::provider_filename(&job.id.to_string(), split, job.export_round);
    let attempt = (|| -> provider::Result<(provider::FileObject, &'static str, Vec<String>)> {
        let mut deleted = Vec::new();
        // Uploads of earlier exports of this job (its data changed since) go
        // first, and so does any provider job made from one (a create that
        // outlived its timeout before the data changed): it would train on
        // data that is gone. (Found by metadata, or by that training file.)
        for round in 0..job.export_round {
            for f in p.find_files(&plan::provider_filename(&job.id.to_string(), split, round))? {
                if split == Split::Train {
                    let tag = provider::JobTag {
                        training_file: Some(f.id.clone()),
                        ..job.tag()
                    };
                    for pj in p.find_jobs(&tag)? {
                        let from_this_file = pj.training_file.as_deref().is_none_or(|t| t == f.id);
                        if from_this_file && !pj.state.is_final() {
                            p.cancel_job(&pj.id)?;
                            deleted.push(format!("{} (a provider job made from it, cancelled)", pj.id));
                        }
                    }
                }
                p.delete_file(&f.id)?;
                deleted.push(f.id);
            }
        }
        let found = p.find_files(&name)?;
        let mut keep = None;
        for f in found {
            if keep.is_none() && f.bytes == Some(size) && f.status.as_deref() != Some("error") {
                keep = Some(f);
            } else {
                p.delete_file(&f.id)?;
                deleted.push(f.id);
            }
        }
        match keep {
            Some(f) => Ok((f, "reused", deleted)),
            None => Ok((p.upload_file(&path, &name)?, "uploaded", deleted)),
        }
    })();
    match attempt {
        Ok((file, how, deleted)) => {
            let recorded = tx(mode, || {
                Spi::connect_mut(|c| {
                    let sql = match split {
                        Split::Train => {
                            "UPDATE vibe_ft.jobs SET training_file_id = $2, attempts = 0, next_attempt_at = NULL
                                          WHERE id = $1 AND status = 'uploading' RETURNING 1"
                        }
                        Split::Validation => {
                            "UPDATE vibe_ft.jobs SET validation_file_id = $2, attempts = 0, next_attempt_at = NULL
                                               WHERE id = $1 AND status = 'uploading' RETURNING 1"
                        }
                    };
                    let t = c.update(sql, None, &[job.id.into(), file.id.as_str().into()])?;
                    if t.is_empty() {
                        return Ok(false);
                    }
                    let mut msg = format!("{how} {} file {} ({size} bytes)", split.as_str(), file.id);
                    if !deleted.is_empty() {
                        msg.push_str(&format!(
                            "; deleted incomplete or duplicate uploads {}",
                            deleted.join(", ")
                        ));
                    }
                    event(
                        c,
                        job.id,
                        "note",
                        &msg,
                        Some(serde_json::json!({ "file_id": file.id, "bytes": size })),
                    )?;
                    Ok(true)
                })
            })?;
            if !recorded {
                // Cancelled while we uploaded: do not leave the file behind.
                let _ = p.delete_file(&file.id);
            }
            Ok(())
        }
        Err(e) => {
            let outcome = plan::on_failure(&e, job.attempts as u32, gucs::retry_delay());
            record_failure(
                mode,
                job,
                &format!("upload {}", split.as_str()),
                &e.message,
                Some(&e),
                outcome.clone(),
            )?;
            if matches!(outcome, Outcome::Fail { .. }) {
                delete_uploaded(mode, job, &p);
            }
            Ok(())
        }
    }
}
