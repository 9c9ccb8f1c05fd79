//! Evaluating running experiments: the rated answers of each arm per phase
//! (`vibe_ft.experiment_counts`), the rule in `core::experiment`, and the
//! decision applied by the same SQL functions a person calls by hand
//! (`vibe_ft.ramp_experiment`, `vibe_ft.end_experiment`).

use crate::core::experiment::{self, ArmStats, Decision, Inconclusive, PhaseStats, Policy, Standing};
use crate::error::{Result, VibeError};
use pgrx::spi::SpiClient;
use pgrx::JsonB;

pub struct Evaluated {
    pub experiment_id: i64,
    pub dataset_name: String,
    pub decision: &'static str,
    pub state: String,
    pub share: f64,
    pub reason: String,
}

/// An experiment's policy as it kept it (`vibe_ft.experiment_policy`).
fn policy(v: &serde_json::Value) -> Result<Policy> {
    let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let bad = |what: &str| VibeError::Internal(format!("experiment policy {v}: {what}"));
    let steps = v
        .get("steps")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("no steps"))?
        .iter()
        .map(|s| s.as_f64().ok_or_else(|| bad("a step is not a number")))
        .collect::<Result<Vec<f64>>>()?;
    let p = Policy {
        steps,
        min_rated: num("min_rated").ok_or_else(|| bad("no min_rated"))?,
        min_phase_hours: num("min_phase_hours").ok_or_else(|| bad("no min_phase_hours"))?,
        max_days: num("max_days").ok_or_else(|| bad("no max_days"))?,
        on_inconclusive: v
            .get("on_inconclusive")
            .and_then(serde_json::Value::as_str)
            .and_then(Inconclusive::parse)
            .ok_or_else(|| bad("no on_inconclusive"))?,
    };
    Ok(p)
}

/// Evaluate every running experiment this session can lock (one another
/// session is evaluating is skipped) and apply the decisions.
pub fn evaluate_all(c: &mut SpiClient<'_>) -> Result<Vec<Evaluated>> {
    struct Row {
        id: i64,
        dataset: String,
        step: i32,
        policy: serde_json::Value,
        experiment_hours: f64,
        phase_hours: f64,
        phase: i32,
    }
    // Lock the running experiments this session can have (one that another
    // session is evaluating, or a person is changing, is skipped), then read
    // each afresh: a ramp committed meanwhile is seen, never made twice.
    let mut ids = Vec::new();
    for r in c.update(
        "SELECT id FROM vibe_ft.experiments WHERE state = 'running' ORDER BY id FOR UPDATE SKIP LOCKED",
        None,
        &[],
    )? {
        ids.push(r.get::<i64>(1)?.unwrap_or_default());
    }
    let mut rows = Vec::new();
    for id in ids {
        for r in c.select(
            "SELECT x.id, d.name, x.step, x.policy,
                    extract(epoch FROM now() - x.started_at)::float8 / 3600,
                    extract(epoch FROM now() - ph.started_at)::float8 / 3600, ph.phase
               FROM vibe_ft.experiments x
               JOIN vibe_ft.datasets d ON d.id = x.dataset_id
               JOIN vibe_ft.experiment_phases ph ON ph.experiment_id = x.id AND ph.ended_at IS NULL
              WHERE x.id = $1 AND x.state = 'running'",
            None,
            &[id.into()],
        )? {
            rows.push(Row {
                id: r.get::<i64>(1)?.unwrap_or_default(),
                dataset: r.get::<String>(2)?.unwrap_or_default(),
                step: r.get::<i32>(3)?.unwrap_or_default(),
                policy: r.get::<JsonB>(4)?.map(|j| j.0).unwrap_or_default(),
                experiment_hours: r.get::<f64>(5)?.unwrap_or_default(),
                phase_hours: r.get::<f64>(6)?.unwrap_or_default(),
                phase: r.get::<i32>(7)?.unwrap_or(1),
            });
        }
    }
    let mut out = Vec::new();
    for row in rows {
        // A policy this version cannot read (hand-edited) stops this
        // experiment's decisions, not everyone's: say so and go on.
        let pol = match policy(&row.policy).and_then(|p| match p.problem() {
            Some(problem) => Err(VibeError::InvalidArgument(problem)),
            None => Ok(p),
        }) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("not evaluated: its policy {}: {e}", row.policy);
                c.update(
                    "UPDATE vibe_ft.experiments SET evaluated_at = now(), decision = $2 WHERE id = $1",
                    None,
                    &[row.id.into(), why.clone().into()],
                )?;
                out.push(Evaluated {
                    experiment_id: row.id,
                    dataset_name: row.dataset,
                    decision: "error",
                    state: "running".into(),
                    share: f64::NAN,
                    reason: why,
                });
                continue;
            }
        };
        let mut phases = vec![PhaseStats::default(); row.phase.max(1) as usize];
        for r in c.select(
            "SELECT phase, candidate, rated, positive, sum_n2, sum_s2, sum_sn, users
               FROM vibe_ft.experiment_counts($1)",
            None,
            &[row.id.into()],
        )? {
            let phase = r.get::<i32>(1)?.unwrap_or(0);
            if phase < 1 || phase as usize > phases.len() {
                continue;
            }
            let arm = ArmStats {
                n: r.get::<f64>(3)?.unwrap_or(0.0),
                s: r.get::<f64>(4)?.unwrap_or(0.0),
                sum_n2: r.get::<f64>(5)?.unwrap_or(0.0),
                sum_s2: r.get::<f64>(6)?.unwrap_or(0.0),
                sum_sn: r.get::<f64>(7)?.unwrap_or(0.0),
                users: r.get::<f64>(8)?.unwrap_or(0.0),
            };
            let ph = &mut phases[phase as usize - 1];
            if r.get::<bool>(2)?.unwrap_or(false) {
                ph.candidate = arm;
            } else {
                ph.control = arm;
            }
        }
        let step = (row.step.max(0) as usize).min(pol.steps.len() - 1);
        let standing = Standing {
            step,
            phase_hours: row.phase_hours,
            experiment_hours: row.experiment_hours,
        };
        let (decision, ev) = experiment::evaluate(&pol, &standing, &phases);
        let evidence = serde_json::to_value(&ev).map_err(|e| VibeError::Internal(e.to_string()))?;
        let reason = ev.reason.clone();
        c.update(
            "UPDATE vibe_ft.experiments SET evidence = $2, evaluated_at = now() WHERE id = $1",
            None,
            &[row.id.into(), JsonB(evidence.clone()).into()],
        )?;
        let (state, share) = match decision {
            Decision::Wait => ("running", pol.steps[step]),
            Decision::Ramp { to } => {
                c.update(
                    "SELECT vibe_ft.ramp_experiment($1, $2, $3::numeric, $4, $5)",
                    None,
                    &[
                        row.id.into(),
                        (step as i32 + 1).into(),
                        to.into(),
                        reason.clone().into(),
                        JsonB(evidence).into(),
                    ],
                )?;
                ("running", to)
            }
            Decision::Promote | Decision::Rollback | Decision::Expire { .. } => {
                let (state, kind, how) = match decision {
                    Decision::Promote => ("promoted", "promote", "experiment"),
                    Decision::Rollback => ("rolled_back", "rollback", "experiment"),
                    Decision::Expire { promote: true } => ("promoted", "expire", "expired"),
                    _ => ("ended", "expire", "expired"),
                };
                c.update(
                    "SELECT vibe_ft.end_experiment($1, $2, $3, $4, $5, $6)",
                    None,
                    &[
                        row.id.into(),
                        state.into(),
                        kind.into(),
                        reason.clone().into(),
                        JsonB(evidence).into(),
                        how.into(),
                    ],
                )?;
                (state, pol.steps[step])
            }
        };
        out.push(Evaluated {
            experiment_id: row.id,
            dataset_name: row.dataset,
            decision: decision.name(),
            state: state.to_string(),
            share,
            reason,
        });
    }
    Ok(out)
}
