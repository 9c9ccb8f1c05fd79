//! Exporting: snapshot the data again (under the erasure lock) and write the
//! JSONL files, every line checked against the provider's rules as it is written.

use super::*;


pub(super) fn work_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(gucs::work_dir());
    std::fs::create_dir_all(&dir)
        .map_err(|e| VibeError::Internal(format!("cannot create vibe_ft.work_dir {}: {e}", dir.display())))?;
    Ok(dir)
}

pub(super) fn local_file(job: Uuid, split: Split) -> Result<PathBuf> {
    Ok(work_dir()?.join(format!("{job}-{}.jsonl", split.as_str())))
}

pub fn remove_local_files(job: Uuid) {
    for split in [Split::Train, Split::Validation] {
        if let Ok(p) = local_file(job, split) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The export, under the erasure lock (shared): an erasure in flight commits
/// first, and what it deleted is not read, because the data is read with a
/// snapshot taken after the lock (which needs READ COMMITTED).
pub(super) fn export_step(job: &Job) -> Result<()> {
    Spi::connect(|c| -> Result<()> {
        let iso = store::first_value::<String>(c.select("SELECT current_setting('transaction_isolation')", None, &[])?)?;
        if iso.as_deref() != Some("read committed") {
            return Err(VibeError::WrongIsolation(
                "exporting a job needs READ COMMITTED (it must read what committed while it waited)".into(),
            ));
        }
        c.select(
            "SELECT pg_advisory_xact_lock_shared($1, $2)",
            None,
            &[ERASURE_LOCK.0.into(), ERASURE_LOCK.1.into()],
        )?;
        Ok(())
    })?;
    // SAFETY: a snapshot pushed and popped around our own reads; should they
    // raise, the (sub)transaction's abort pops it.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let result = Spi::connect_mut(|c| export(c, job));
    unsafe { pg_sys::PopActiveSnapshot() };
    result
}

pub(super) fn export(c: &mut SpiClient<'_>, job: &Job) -> Result<()> {
    let Some(flavor) = Flavor::parse(&job.provider) else {
        return fail_locally(
            c,
            job.id,
            "unsupported_provider",
            &format!("no provider module for '{}'", job.provider),
        );
    };
    let Some(data) = store::Data::for_method(&job.method) else {
        return fail_locally(
            c,
            job.id,
            "unsupported_method",
            &format!("no export for method '{}' (supervised or dpo)", job.method),
        );
    };
    if let Some(s) = &job.suffix {
        if let Err(m) = flavor.check_suffix(s) {
            return fail_locally(c, job.id, "invalid_suffix", &m);
        }
    }
    if let Err((code, m)) = provider::check_job(flavor, &job.new_job()) {
        return fail_locally(c, job.id, code, &m);
    }
    let retired = store::first_value::<String>(c.select(
        "SELECT format('%s (%s) takes no fine-tuning jobs since %s: %s', $2, $1,
                       to_char(l.training_ends AT TIME ZONE 'UTC', 'YYYY-MM-DD'), coalesce(l.note, 'vibe_ft.model_lifecycle'))
           FROM vibe_ft.model_lifecycle_of($1, $2) l WHERE l.training_ends <= now()",
        None,
        &[job.provider.as_str().into(), job.base_model.as_str().into()],
    )?)?;
    if let Some(m) = retired {
        return fail_locally(c, job.id, "model_retired", &m);
    }
    // The snapshot again, now: what is exported is what the job records.
    let min_quality = job.min_quality.clone().unwrap_or_else(|| AnyNumeric::from(0));
    let t = c.update(
        &format!(
            "UPDATE vibe_ft.jobs j SET
                train_examples = s.train, validation_examples = s.validation,
                avg_train_quality = s.avg_train, avg_validation_quality = s.avg_validation,
                last_example_id = s.last_id
           FROM (SELECT count(*) FILTER (WHERE e.split = 'train' AND e.quality_score >= $3)::int AS train,
                        count(*) FILTER (WHERE e.split = 'validation' AND e.quality_score >= $3)::int AS validation,
                        round(avg(e.quality_score) FILTER (WHERE e.split = 'train' AND e.quality_score >= $3), 2) AS avg_train,
                        round(avg(e.quality_score) FILTER (WHERE e.split = 'validation' AND e.quality_score >= $3), 2) AS avg_validation,
                        coalesce(max(e.id), 0) AS last_id
                   FROM {} e WHERE e.dataset_id = $2) s
          WHERE j.id = $1
         RETURNING j.train_examples, j.validation_examples, j.last_example_id",
            data.table()
        ),
        None,
        &[job.id.into(), job.dataset_id.into(), min_quality.clone().into()],
    )?;
    let (train, validation, last_id) = t.first().get_three::<i32, i32, i64>()?;
    let (train, validation, last_id) = (train.unwrap_or(0), validation.unwrap_or(0), last_id.unwrap_or(0));
    if (train as i64) < plan::MIN_TRAINING_EXAMPLES {
        return fail_locally(
            c,
            job.id,
            "invalid_n_examples",
            &format!(
                "the training split has {train} example(s) with quality >= {min_quality}; providers need at least {}",
                plan::MIN_TRAINING_EXAMPLES
            ),
        );
    }
    // Write the files, checking every line as it is written: what is checked
    // is exactly what would be uploaded and paid for.
    let encoding = Encoding::for_model(&job.base_model);
    let exact = Encoding::exact_for(&job.base_model);
    let mut written = Vec::new();
    let mut reports = Vec::new();
    for (split, n) in [(Split::Train, train), (Split::Validation, validation)] {
        if n > 0 {
            let mut checker = Checker::new(encoding, data.format()).with_rules(Rules::for_provider(&job.provider));
            written.push(write_split(job, data, split, &min_quality, last_id, &mut checker)?);
            reports.push((split, checker.finish()));
        }
    }
    let report_json = serde_json::Value::Object(
        reports
            .iter()
            .map(|(split, r)| (split.as_str().to_string(), r.to_json(encoding, exact)))
            .collect(),
    );
    if let Some((split, bad)) = reports.iter().find(|(_, r)| !r.is_valid()) {
        remove_local_files(job.id);
        let what = format!("{} file failed validation", split.as_str());
        fail_locally(c, job.id, "invalid_training_data", &bad.summary(&what))?;
        return event(c, job.id, "note", "validation report (nothing was uploaded)", Some(report_json));
    }
    let tokens = |s: Split| reports.iter().find(|r| r.0 == s).map(|r| r.1.billable_tokens as i64);
    let (train_tokens, validation_tokens) = (tokens(Split::Train).unwrap_or(0), tokens(Split::Validation));
    let epochs = check::epochs_for(&job.provider, &job.hyperparameters, train as u64) as i64;
    c.update(
        "UPDATE vibe_ft.jobs SET status = 'uploading', attempts = 0, next_attempt_at = NULL,
                training_tokens = $2, validation_tokens = $3,
                estimated_cost_usd = round($2::numeric * $4 * vibe_ft.training_price(provider, base_model) / 1000000, 2),
                estimated_cost_source = 'prices table'
          WHERE id = $1",
        None,
        &[job.id.into(), train_tokens.into(), validation_tokens.into(), epochs.into()],
    )?;
    let bytes: u64 = written.iter().map(|w| w.1).sum();
    event(
        c,
        job.id,
        "note",
        &format!(
            "exported and checked {train} training and {validation} validation examples ({bytes} bytes, {}{train_tokens} training tokens)",
            if exact { "" } else { "an estimated " }
        ),
        Some(serde_json::json!({
            "train": train, "validation": validation, "bytes": bytes, "last_example_id": last_id,
            "epochs": epochs, "validation_report": report_json,
        })),
    )
}

/// Write one split's JSONL to the work directory (via a temporary name, so a
/// file that exists is complete), feeding each line to `checker`.
/// Returns its path and size.
pub(super) fn write_split(
    job: &Job,
    data: store::Data,
    split: Split,
    min_quality: &AnyNumeric,
    last_id: i64,
    checker: &mut Checker,
) -> Result<(PathBuf, u64)> {
    let path = local_file(job.id, split)?;
    let tmp = path.with_extension("jsonl.partial");
    let io = |e: std::io::Error| VibeError::Internal(format!("writing {}: {e}", tmp.display()));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    let mut bytes = 0u64;
    store::for_each_line(data, job.dataset_id, split, min_quality, last_id, |id, line| {
        checker.line(id, line);
        out.write_all(line).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        bytes += line.len() as u64 + 1;
        Ok(())
    })?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok((path, bytes))
}
