//! `vibe_ft.report_html`: one self-contained page (inline SVG, no scripts, no
//! external assets) with the jobs timeline, each job's training loss by step,
//! the positive rate per model over time with 95% intervals, and each
//! experiment's share, state and decision. The drawing is `core::report`.

use crate::core::report::{self, Bar, Series, XAxis};
use crate::error::{required, OrRaise, Result, VibeError};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;
use std::collections::BTreeMap;

/// The report as an HTML page, for one dataset or all (NULL), over the last
/// p_days days. Write it to a file (psql: `\pset format unaligned` and
/// `\o report.html`) and open it in any browser.
#[pg_extern(stable)]
#[search_path(pg_catalog, pg_temp)]
fn report_html(p_dataset_id: default!(Option<Uuid>, "NULL"), p_days: default!(Option<i32>, "90")) -> String {
    let days = required(p_days, "p_days").or_raise();
    if !(1..=3660).contains(&days) {
        VibeError::OutOfRange(format!("p_days must be 1 to 3660, got {days}")).raise();
    }
    Spi::connect(|c| build(c, p_dataset_id, days)).or_raise()
}

fn f(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn build(c: &SpiClient<'_>, ds: Option<Uuid>, days: i32) -> Result<String> {
    let title = match ds {
        Some(id) => {
            let name = crate::store::first_value::<String>(c.select(
                "SELECT name FROM vibe_ft.datasets WHERE id = $1",
                None,
                &[id.into()],
            )?)?
            .ok_or_else(|| crate::store::not_found_dataset(id))?;
            format!("vibe_ft: dataset {name}")
        }
        None => "vibe_ft: all datasets".to_string(),
    };
    let now = crate::store::first_value::<String>(c.select(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')",
        None,
        &[],
    )?)?
    .unwrap_or_default();
    let subtitle = format!("Generated {now} UTC, the last {days} days.");
    let sections = vec![
        ("Jobs".to_string(), jobs_section(c, ds, days)?),
        ("Training loss by step".to_string(), loss_section(c, ds, days)?),
        ("Positive rate per model".to_string(), ratings_section(c, ds, days)?),
        ("Experiments".to_string(), experiments_section(c, ds, days)?),
    ];
    Ok(report::page(&title, &subtitle, &sections))
}

fn jobs_section(c: &SpiClient<'_>, ds: Option<Uuid>, days: i32) -> Result<String> {
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for r in c.select(
        "SELECT j.id::text, d.name, j.status, coalesce(j.fine_tuned_model, j.base_model), j.provider,
                extract(epoch FROM j.created_at)::float8,
                extract(epoch FROM coalesce(j.finished_at, now()))::float8,
                coalesce(j.error_message, ''), coalesce(j.trained_tokens::text, ''),
                coalesce(coalesce(j.cost_usd, j.estimated_cost_usd)::text, '')
           FROM vibe_ft.jobs j JOIN vibe_ft.datasets d ON d.id = j.dataset_id
          WHERE ($1::uuid IS NULL OR j.dataset_id = $1)
            AND j.created_at > now() - make_interval(days => $2)
          ORDER BY j.created_at DESC LIMIT 40",
        None,
        &[ds.into(), days.into()],
    )? {
        let id = r.get::<String>(1)?.unwrap_or_default();
        let dataset = r.get::<String>(2)?.unwrap_or_default();
        let status = r.get::<String>(3)?.unwrap_or_default();
        let model = r.get::<String>(4)?.unwrap_or_default();
        let provider = r.get::<String>(5)?.unwrap_or_default();
        let (start, end) = (f(r.get::<f64>(6)?), f(r.get::<f64>(7)?));
        let error = r.get::<String>(8)?.unwrap_or_default();
        bars.push(Bar {
            label: format!("{} {}", &id[..8.min(id.len())], status),
            start,
            end,
            class: status.clone(),
            title: format!(
                "{model} ({provider}, dataset {dataset}): {status}; {} to {}",
                report::date_time(start),
                report::date_time(end)
            ),
        });
        rows.push(vec![
            report::date_time(start),
            dataset,
            provider,
            model,
            status,
            r.get::<String>(9)?.unwrap_or_default(),
            r.get::<String>(10)?.unwrap_or_default(),
            error,
        ]);
    }
    bars.reverse();
    Ok(report::timeline("jobs", "Jobs over time (colour: status)", &bars)
        + &report::table(
            &[
                "created (UTC)",
                "dataset",
                "provider",
                "model",
                "status",
                "trained tokens",
                "cost / estimate (USD)",
                "error",
            ],
            &rows,
        ))
}

/// A jsonb number as float8, NULL for anything else (a string, or a number
/// float8 cannot hold: a provider's odd value must not fail the report).
fn num(x: &str) -> String {
    format!(
        "CASE WHEN jsonb_typeof({x}) IS DISTINCT FROM 'number' THEN NULL \
              WHEN abs(({x})::numeric) = 0 OR abs(({x})::numeric) BETWEEN 1e-300 AND 1e300 \
              THEN ({x})::numeric::float8 END"
    )
}

fn loss_section(c: &SpiClient<'_>, ds: Option<Uuid>, days: i32) -> Result<String> {
    // (job, model) of the newest jobs with loss figures, oldest first
    let mut jobs: Vec<(String, String)> = Vec::new();
    for r in c.select(
        "SELECT j.id::text, coalesce(j.fine_tuned_model, j.base_model)
           FROM vibe_ft.jobs j
          WHERE ($1::uuid IS NULL OR j.dataset_id = $1)
            AND j.created_at > now() - make_interval(days => $2)
            AND (EXISTS (SELECT 1 FROM vibe_ft.job_events e WHERE e.job_id = j.id AND e.kind = 'provider'
                          AND (jsonb_typeof(e.data->'data'->'train_loss') = 'number'
                               OR e.message ~ '(training|Evaluation) loss'))
                 OR jsonb_typeof(j.metrics->'checkpoints') = 'array')
          ORDER BY j.created_at DESC LIMIT 6",
        None,
        &[ds.into(), days.into()],
    )? {
        jobs.push((
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<String>(2)?.unwrap_or_default(),
        ));
    }
    jobs.reverse();
    if jobs.is_empty() {
        return Ok(report::line_chart(
            "loss",
            "Training loss",
            XAxis::Number,
            "loss",
            None,
            &[],
        ));
    }
    let mut out = String::new();
    for (i, (job, model)) in jobs.iter().enumerate() {
        let mut train = Series {
            name: "training".into(),
            ..Default::default()
        };
        let mut valid = Series {
            name: "validation".into(),
            ..Default::default()
        };
        let sql = format!(
                        "SELECT step, train, valid FROM (
                 SELECT {step} AS step,
                        coalesce({train},
                                 substring(e.message FROM 'training loss[=:] ?([0-9]{{1,20}}(?:\\.[0-9]{{1,20}})?)')::float8) AS train,
                        coalesce({valid},
                                 substring(e.message FROM 'Evaluation loss: ([0-9]{{1,20}}(?:\\.[0-9]{{1,20}})?)')::float8) AS valid
                   FROM vibe_ft.job_events e
                  WHERE e.job_id = $1::uuid AND e.kind = 'provider'
                 UNION ALL
                 SELECT {cp_step}, NULL, {cp_valid}
                   FROM vibe_ft.jobs j,
                        jsonb_array_elements(CASE WHEN jsonb_typeof(j.metrics->'checkpoints') = 'array'
                                                  THEN j.metrics->'checkpoints' ELSE '[]' END) cp
                  WHERE j.id = $1::uuid) l
              WHERE step IS NOT NULL AND (train IS NOT NULL OR valid IS NOT NULL)
              ORDER BY step",
            step = num("e.data->'data'->'step'"),
            train = num("e.data->'data'->'train_loss'"),
            valid = num("e.data->'data'->'valid_loss'"),
            cp_step = num("cp->'step'"),
            cp_valid = num("cp->'metrics'->'valid_loss'"),
        );
        for r in c.select(&sql, None, &[job.as_str().into()])? {
            let step = f(r.get::<f64>(1)?);
            if let Some(t) = r.get::<f64>(2)? {
                train.points.push((step, t));
            }
            if let Some(v) = r.get::<f64>(3)? {
                valid.points.push((step, v));
            }
        }
        let series: Vec<Series> = [train, valid].into_iter().filter(|s| !s.points.is_empty()).collect();
        out.push_str(&report::line_chart(
            &format!("loss-{}", i + 1),
            &format!("Loss by step: {model} (job {job})"),
            XAxis::Number,
            "loss",
            None,
            &series,
        ));
    }
    Ok(out)
}

fn ratings_section(c: &SpiClient<'_>, ds: Option<Uuid>, days: i32) -> Result<String> {
    // the models of the dataset (its fine-tunes, their endpoints, its base
    // models), the eight most rated
    let mut models: Vec<String> = Vec::new();
    let mut span = 0.0;
    for r in c.select(
        "SELECT f.model, extract(epoch FROM max(f.created_at) - min(f.created_at))::float8
           FROM vibe_ft.feedback f
          WHERE f.created_at > now() - make_interval(days => $2) AND f.rated_at IS NOT NULL AND f.model IS NOT NULL
            AND ($1::uuid IS NULL OR f.model IN (
                    SELECT j.fine_tuned_model FROM vibe_ft.jobs j WHERE j.dataset_id = $1 AND j.fine_tuned_model IS NOT NULL
                    UNION SELECT dp.endpoint_name FROM vibe_ft.deployments dp JOIN vibe_ft.jobs j ON j.id = dp.job_id
                           WHERE j.dataset_id = $1 AND dp.endpoint_name IS NOT NULL
                    UNION SELECT j.base_model FROM vibe_ft.jobs j WHERE j.dataset_id = $1
                    UNION SELECT d.base_model FROM vibe_ft.datasets d WHERE d.id = $1))
          GROUP BY f.model ORDER BY count(*) DESC, f.model LIMIT 8",
        None,
        &[ds.into(), days.into()],
    )? {
        models.push(r.get::<String>(1)?.unwrap_or_default());
        span = f64::max(span, r.get::<f64>(2)?.unwrap_or(0.0));
    }
    if models.is_empty() {
        return Ok(report::line_chart(
            "ratings",
            "Positive rate per model",
            XAxis::Time,
            "positive rate",
            Some((0.0, 1.0)),
            &[],
        ));
    }
    // days when the ratings span more than three days, hours otherwise
    let unit = if span > 3.0 * 86_400.0 { "day" } else { "hour" };
    let half = if unit == "day" { 43_200.0 } else { 1_800.0 };
    let mut by_model: BTreeMap<String, Series> = BTreeMap::new();
    let mut rows = Vec::new();
    for r in c.select(
        "SELECT f.model, extract(epoch FROM date_trunc($3, f.created_at))::float8,
                count(*)::float8, count(f.rated_at)::float8,
                count(*) FILTER (WHERE f.thumbs_up OR f.stars >= 4)::float8
           FROM vibe_ft.feedback f
          WHERE f.created_at > now() - make_interval(days => $2) AND f.model = ANY ($1)
          GROUP BY 1, 2 ORDER BY 1, 2",
        None,
        &[models.clone().into(), days.into(), unit.into()],
    )? {
        let model = r.get::<String>(1)?.unwrap_or_default();
        let at = f(r.get::<f64>(2)?) + half;
        let (answers, n, pos) = (f(r.get::<f64>(3)?), f(r.get::<f64>(4)?), f(r.get::<f64>(5)?));
        if n < 1.0 {
            continue;
        }
        let (p, lo, hi) = wilson(pos, n);
        let s = by_model.entry(model.clone()).or_insert_with(|| Series {
            name: model.clone(),
            ..Default::default()
        });
        s.points.push((at, p));
        s.band.push((at, lo, hi));
        rows.push((model, at, answers, n, p, lo, hi));
    }
    let series: Vec<Series> = models.iter().filter_map(|m| by_model.remove(m)).collect();
    let chart = report::line_chart(
        "ratings",
        &format!("Positive rate per model and {unit} (thumbs up or 4-5 stars), with 95% intervals"),
        XAxis::Time,
        "positive rate",
        Some((0.0, 1.0)),
        &series,
    );
    // totals per model
    let mut totals: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for (m, _, answers, n, p, _, _) in &rows {
        let t = totals.entry(m.clone()).or_default();
        t.0 += answers;
        t.1 += n;
        t.2 += p * n;
    }
    let table_rows: Vec<Vec<String>> = totals
        .into_iter()
        .map(|(m, (answers, n, pos))| {
            let (p, lo, hi) = wilson(pos.round(), n);
            vec![
                m,
                format!("{answers:.0}"),
                format!("{n:.0}"),
                format!("{:.1}% ({:.1} to {:.1})", 100.0 * p, 100.0 * lo, 100.0 * hi),
            ]
        })
        .collect();
    Ok(chart
        + &report::table(
            &["model", "answers", "rated", "positive rate (95% interval)"],
            &table_rows,
        ))
}

/// The positive rate and its 95% Wilson interval.
fn wilson(pos: f64, n: f64) -> (f64, f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let p = pos / n;
    let d = 1.0 + z * z / n;
    let mid = (p + z * z / (2.0 * n)) / d;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (p, (mid - half).max(0.0), (mid + half).min(1.0))
}

fn experiments_section(c: &SpiClient<'_>, ds: Option<Uuid>, days: i32) -> Result<String> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut ids = Vec::new();
    for r in c.select(
        "SELECT r.experiment_id, r.dataset_name, r.candidate_model, r.control_model, r.state, r.share::float8,
                r.control_rated, r.control_rate::float8, r.candidate_rated, r.candidate_rate::float8,
                r.lift::float8, r.lift_low_95::float8, r.lift_high_95::float8, r.p_better::float8,
                coalesce(r.decision, ''), extract(epoch FROM r.started_at)::float8,
                extract(epoch FROM r.decided_at)::float8
           FROM vibe_ft.experiment_results r
          WHERE ($1::uuid IS NULL OR r.dataset_id = $1)
            AND coalesce(r.decided_at, now()) > now() - make_interval(days => $2)
          ORDER BY r.experiment_id DESC LIMIT 8",
        None,
        &[ds.into(), days.into()],
    )? {
        let id = r.get::<i64>(1)?.unwrap_or_default();
        let pct = |v: Option<f64>| v.map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_else(|| "–".into());
        let n = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "0".into());
        let lift = match (r.get::<f64>(11)?, r.get::<f64>(12)?, r.get::<f64>(13)?) {
            (Some(l), Some(lo), Some(hi)) => {
                format!("{:+.1} ({:+.1} to {:+.1}) points", 100.0 * l, 100.0 * lo, 100.0 * hi)
            }
            _ => "–".into(),
        };
        let state = r.get::<String>(5)?.unwrap_or_default();
        rows.push(vec![
            id.to_string(),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<String>(4)?.unwrap_or_default(),
            state.clone(),
            format!("{:.0}%", f(r.get::<f64>(6)?)),
            format!("{} ({})", pct(r.get::<f64>(8)?), n(r.get::<i64>(7)?)),
            format!("{} ({})", pct(r.get::<f64>(10)?), n(r.get::<i64>(9)?)),
            lift,
            r.get::<f64>(14)?
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "–".into()),
            r.get::<String>(15)?.unwrap_or_default(),
        ]);
        ids.push((id, state, r.get::<f64>(17)?));
    }
    ids.reverse();
    for (id, state, decided) in &ids {
        let mut s = Series {
            name: format!("experiment {id}"),
            steps: true,
            ..Default::default()
        };
        let mut last_end = None;
        for r in c.select(
            "SELECT extract(epoch FROM started_at)::float8, extract(epoch FROM coalesce(ended_at, now()))::float8, share::float8
               FROM vibe_ft.experiment_phases WHERE experiment_id = $1 ORDER BY phase",
            None,
            &[(*id).into()],
        )? {
            let (a, b, share) = (f(r.get::<f64>(1)?), f(r.get::<f64>(2)?), f(r.get::<f64>(3)?));
            if let Some(e) = last_end {
                if a > e {
                    s.points.push((e, 0.0)); // paused in between
                }
            }
            s.points.push((a, share));
            s.points.push((b, share));
            last_end = Some(b);
        }
        if let Some(at) = decided {
            s.points.push((*at, if state == "promoted" { 100.0 } else { 0.0 }));
        }
        series.push(s);
    }
    let chart = report::line_chart(
        "experiments",
        "Candidate's share of users (100: promoted, 0: rolled back or ended)",
        XAxis::Time,
        "share, %",
        Some((0.0, 100.0)),
        &series,
    );
    let mut events = Vec::new();
    for r in c.select(
        "SELECT to_char(ev.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), ev.experiment_id, ev.kind, ev.message
           FROM vibe_ft.experiment_events ev JOIN vibe_ft.experiments x ON x.id = ev.experiment_id
          WHERE ($1::uuid IS NULL OR x.dataset_id = $1) AND ev.created_at > now() - make_interval(days => $2)
          ORDER BY ev.id DESC LIMIT 30",
        None,
        &[ds.into(), days.into()],
    )? {
        events.push(vec![
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<i64>(2)?.unwrap_or_default().to_string(),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<String>(4)?.unwrap_or_default(),
        ]);
    }
    Ok(chart
        + &report::table(
            &[
                "experiment",
                "dataset",
                "candidate",
                "control",
                "state",
                "share",
                "control: positive (rated)",
                "candidate: positive (rated)",
                "lift (95% interval)",
                "P(better)",
                "decision",
            ],
            &rows,
        )
        + "<h3>Decisions</h3>\n"
        + &report::table(&["at (UTC)", "experiment", "kind", "what"], &events))
}
