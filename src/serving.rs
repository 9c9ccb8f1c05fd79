//! Serving fine-tuned models that need dedicated hardware (Together's
//! endpoints, billed per minute even when idle). Nothing here runs by itself:
//! `deploy` is an explicit, capped request; `stop` ends the billing; `refresh`
//! keeps `vibe_ft.deployments.state` current (an endpoint the provider stopped
//! when idle can no longer be called, and `vibe_ft.models` must say so).

use crate::core::provider::{DeployRequest, Deployment, Flavor, Provider};
use crate::error::{Result, VibeError};
use crate::keys;
use crate::runner::{self, Mode};
use crate::store;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, Uuid};

/// What `deploy` and `stop` report.
pub struct Deployed {
    pub endpoint_name: Option<String>,
    pub state: String,
    pub hourly_usd: AnyNumeric,
}

pub struct Request<'a> {
    pub job_id: Uuid,
    pub max_hourly_usd: AnyNumeric,
    pub hardware: &'a str,
    pub inactive_timeout_minutes: i32,
    pub min_replicas: i32,
    pub max_replicas: i32,
}

/// The display name vibe_ft gives a job's endpoint: how a deployment whose
/// answer was lost (or whose transaction rolled back) is found again.
fn display_name(job: Uuid) -> String {
    format!("vibe_ft-{job}")
}

fn provider_error(what: &str) -> impl Fn(crate::core::provider::ProviderError) -> VibeError + '_ {
    move |e| VibeError::Provider(format!("{what}: {e}"))
}

struct JobFacts {
    provider: String,
    model: String,
}

fn succeeded_job(c: &SpiClient<'_>, job: Uuid) -> Result<JobFacts> {
    let t = c.select(
        "SELECT status, provider, fine_tuned_model, installation_id IS NOT DISTINCT FROM vibe_ft.installation_id()
           FROM vibe_ft.jobs WHERE id = $1",
        None,
        &[job.into()],
    )?;
    if t.is_empty() {
        return Err(VibeError::NotFound(format!("job {job} does not exist (p_job_id)")));
    }
    let r = t.first();
    let status: String = r.get(1)?.unwrap_or_default();
    let provider: String = r.get(2)?.unwrap_or_default();
    let model: Option<String> = r.get(3)?;
    let ours: bool = r.get(4)?.unwrap_or(false);
    let Some(model) = model.filter(|_| status == "succeeded") else {
        return Err(VibeError::State(format!(
            "job {job} is {status}: only a succeeded job's model can be deployed"
        )));
    };
    if !ours {
        return Err(VibeError::State(format!(
            "job {job} was created by another installation of vibe_ft (a restored copy): its endpoints are the original's; \
             SELECT vibe_ft.adopt_jobs('{job}') first"
        )));
    }
    let flavor = Flavor::parse(&provider).ok_or_else(|| VibeError::Unsupported {
        message: format!("no provider module for '{provider}'"),
        hint: "Providers available: openai, azure, together.".into(),
    })?;
    if !flavor.needs_deployment() {
        return Err(VibeError::Unsupported {
            message: format!(
                "{provider} serves fine-tuned models per token as soon as they exist: there is nothing to deploy"
            ),
            hint: "vibe_ft.serving_model() tells an app the model and base URL to call.".into(),
        });
    }
    Ok(JobFacts { provider, model })
}

fn record(c: &mut SpiClient<'_>, job: Uuid, d: &Deployment, note: Option<&str>) -> Result<String> {
    let state = d.state.clone().unwrap_or_else(|| "PENDING".into());
    c.update(
        "UPDATE vibe_ft.deployments SET endpoint_id = $2, endpoint_name = coalesce($3, endpoint_name), state = $4,
                updated_at = now(), checked_at = now(), last_error = NULL
          WHERE job_id = $1",
        None,
        &[
            job.into(),
            d.id.as_str().into(),
            d.name.as_deref().into(),
            state.as_str().into(),
        ],
    )?;
    if let Some(note) = note {
        c.update(
            "SELECT vibe_ft.record_job_event($1, 'note', NULL, NULL, $2, $3)",
            None,
            &[
                job.into(),
                note.into(),
                pgrx::JsonB(serde_json::json!({ "endpoint_id": d.id, "endpoint_name": d.name, "state": state })).into(),
            ],
        )?;
    }
    Ok(state)
}

/// Serve a succeeded job's model on dedicated hardware, within an hourly cap.
/// Idempotent: a job already deployed (or starting) is reported as it is; a
/// stopped one is started again. Whatever runs afterwards runs with this
/// call's replicas and idle timeout, so this call's cap holds for it.
pub fn deploy(req: Request<'_>) -> Result<Deployed> {
    if req.min_replicas < 0 || req.max_replicas < 1 || req.max_replicas < req.min_replicas {
        return Err(VibeError::InvalidArgument(format!(
            "replicas: need 0 <= p_min_replicas <= p_max_replicas and p_max_replicas >= 1, got {} and {}",
            req.min_replicas, req.max_replicas
        )));
    }
    if req.inactive_timeout_minutes < 0 {
        return Err(VibeError::InvalidArgument(
            "p_inactive_timeout_minutes must be >= 0 (0: never stop when idle)".into(),
        ));
    }
    runner::lock_job(req.job_id)?;
    let (facts, hourly, existing) = Spi::connect(|c| -> Result<_> {
        let facts = succeeded_job(c, req.job_id)?;
        // Compared in numeric (never through a float: NaN and overflow would pass).
        let t = c.select(
            "SELECT p.price, p.price * $3, p.price * $3 <= $4,
                    $4 >= 0 AND $4 < 'Infinity'::numeric AND $4 <> 'NaN'::numeric
               FROM (SELECT vibe_ft.hardware_price($1, $2) AS price) p",
            None,
            &[
                facts.provider.as_str().into(),
                req.hardware.into(),
                req.max_replicas.into(),
                req.max_hourly_usd.clone().into(),
            ],
        )?;
        let r = t.first();
        if !r.get::<bool>(4)?.unwrap_or(false) {
            return Err(VibeError::InvalidArgument(format!(
                "p_max_hourly_usd must be a number >= 0, got {}",
                req.max_hourly_usd
            )));
        }
        let Some(price) = r.get::<AnyNumeric>(1)? else {
            return Err(VibeError::InvalidArgument(format!(
                "no hourly price for {} hardware '{}' in vibe_ft.hardware_prices: add one \
                 (INSERT INTO vibe_ft.hardware_prices (provider, hardware, hourly_usd) VALUES (...)) before deploying on it",
                facts.provider, req.hardware
            )));
        };
        let hourly = r.get::<AnyNumeric>(2)?.unwrap_or_else(|| AnyNumeric::from(0));
        if !r.get::<bool>(3)?.unwrap_or(false) {
            return Err(VibeError::InvalidArgument(format!(
                "{} x {} at ${price}/h costs up to ${hourly}/h, over p_max_hourly_usd ${}: nothing was started",
                req.max_replicas, req.hardware, req.max_hourly_usd
            )));
        }
        let t = c.select(
            "SELECT endpoint_id, state, hardware, installation_id IS NOT DISTINCT FROM vibe_ft.installation_id()
               FROM vibe_ft.deployments WHERE job_id = $1",
            None,
            &[req.job_id.into()],
        )?;
        let existing = if t.is_empty() {
            None
        } else {
            let r = t.first();
            if !r.get::<bool>(4)?.unwrap_or(false) {
                return Err(VibeError::State(format!(
                    "the deployment of job {} belongs to another installation of vibe_ft (a restored copy): \
                     its endpoint is the original's; SELECT vibe_ft.adopt_jobs('{}') first",
                    req.job_id, req.job_id
                )));
            }
            Some((
                r.get::<String>(1)?,
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
            ))
        };
        Ok((facts, hourly, existing))
    })?;
    let ep = Spi::connect(|c| keys::endpoint(c, &facts.provider))?;
    let p = runner::client(Mode::Sql, ep);
    let name = display_name(req.job_id);
    let wanted = DeployRequest {
        model: facts.model.clone(),
        hardware: req.hardware.to_string(),
        min_replicas: req.min_replicas as u32,
        max_replicas: req.max_replicas as u32,
        inactive_timeout_minutes: req.inactive_timeout_minutes as u32,
        display_name: Some(name.clone()),
    };
    let live = |state: &str| !matches!(state, "FAILED" | "ERROR" | "deleted" | "requested");
    let (d, how) = match &existing {
        Some((Some(id), state, hardware)) if live(state) => {
            if hardware != req.hardware {
                return Err(VibeError::State(format!(
                    "job {} is deployed on {hardware}: deploy it on the same hardware, or delete endpoint {id} \
                     at the provider and then its row in vibe_ft.deployments",
                    req.job_id
                )));
            }
            let d = p
                .start_deployment(id, &wanted)
                .map_err(provider_error("starting the endpoint"))?;
            (
                d,
                if state == "STARTED" {
                    "already deployed"
                } else {
                    "started"
                },
            )
        }
        _ => {
            // Before asking for a new endpoint: one we asked for whose answer was
            // lost (or whose row rolled back). Taken over only if it is what this
            // call asks for; it then runs with this call's replicas and timeout.
            let found: Vec<Deployment> = p
                .find_deployments(&name)
                .map_err(provider_error("listing endpoints"))?
                .into_iter()
                .filter(|d| !d.is_broken())
                .collect();
            match found.as_slice() {
                [d] if d.model.as_deref() == Some(facts.model.as_str())
                    && d.hardware.as_deref() == Some(req.hardware) =>
                {
                    (
                        p.start_deployment(&d.id, &wanted)
                            .map_err(provider_error("starting the endpoint"))?,
                        "found the endpoint asked for earlier",
                    )
                }
                [] => {
                    Spi::connect_mut(|c| upsert(c, &req, &facts, &hourly, None))?;
                    let d = p.deploy(&wanted).map_err(|e| {
                        VibeError::Provider(format!(
                            "creating the endpoint: {e} (if the provider made it anyway, calling vibe_ft.deploy_model \
                             again finds it by its display name {name})"
                        ))
                    })?;
                    (d, "deployed")
                }
                other => {
                    return Err(VibeError::State(format!(
                        "the provider has {} endpoint(s) named {name} that are not what this call asks for \
                         ({} on {}): {}; delete them at the provider first",
                        other.len(),
                        facts.model,
                        req.hardware,
                        other
                            .iter()
                            .map(|d| format!("{} ({:?} on {:?}, {:?})", d.id, d.model, d.hardware, d.state))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    };
    let state = Spi::connect_mut(|c| -> Result<String> {
        upsert(c, &req, &facts, &hourly, Some(&d))?;
        let note = format!(
            "{how}: {} on {} ({}-{} replicas, up to ${hourly}/h, cap ${}/h, {}), endpoint {}",
            facts.model,
            req.hardware,
            req.min_replicas,
            req.max_replicas,
            req.max_hourly_usd,
            if req.inactive_timeout_minutes == 0 {
                "never stopped when idle".to_string()
            } else {
                format!("stopped after {} idle minutes", req.inactive_timeout_minutes)
            },
            d.name.as_deref().unwrap_or(&d.id)
        );
        record(c, req.job_id, &d, Some(&note))
    })?;
    Ok(Deployed {
        endpoint_name: d.name,
        state,
        hourly_usd: hourly,
    })
}

/// The deployment's row as this call configures it; `d`: the endpoint the
/// provider has (none yet: a request in flight).
fn upsert(
    c: &mut SpiClient<'_>,
    req: &Request<'_>,
    facts: &JobFacts,
    hourly: &AnyNumeric,
    d: Option<&Deployment>,
) -> Result<()> {
    c.update(
        "INSERT INTO vibe_ft.deployments (job_id, provider, model, hardware, min_replicas, max_replicas,
                                          hourly_usd, max_hourly_usd, inactive_timeout_minutes, endpoint_id, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'requested')
         ON CONFLICT (job_id) DO UPDATE SET endpoint_id = EXCLUDED.endpoint_id,
               endpoint_name = CASE WHEN EXCLUDED.endpoint_id IS NULL THEN NULL ELSE vibe_ft.deployments.endpoint_name END,
               state = CASE WHEN EXCLUDED.endpoint_id IS NULL THEN 'requested' ELSE vibe_ft.deployments.state END,
               hardware = EXCLUDED.hardware, min_replicas = EXCLUDED.min_replicas,
               max_replicas = EXCLUDED.max_replicas, hourly_usd = EXCLUDED.hourly_usd,
               max_hourly_usd = EXCLUDED.max_hourly_usd,
               inactive_timeout_minutes = EXCLUDED.inactive_timeout_minutes, updated_at = now()",
        None,
        &[
            req.job_id.into(),
            facts.provider.as_str().into(),
            facts.model.as_str().into(),
            req.hardware.into(),
            req.min_replicas.into(),
            req.max_replicas.into(),
            hourly.clone().into(),
            req.max_hourly_usd.clone().into(),
            req.inactive_timeout_minutes.into(),
            d.map(|d| d.id.as_str()).into(),
        ],
    )?;
    Ok(())
}

/// Stop a job's endpoint (billing stops; the model is kept and can be
/// deployed again).
pub fn stop(job_id: Uuid) -> Result<String> {
    runner::lock_job(job_id)?;
    let (provider, endpoint_id) = Spi::connect(|c| -> Result<(String, String)> {
        let t = c.select(
            "SELECT provider, endpoint_id, installation_id IS NOT DISTINCT FROM vibe_ft.installation_id()
               FROM vibe_ft.deployments WHERE job_id = $1",
            None,
            &[job_id.into()],
        )?;
        let found = if t.is_empty() {
            None
        } else {
            let r = t.first();
            if !r.get::<bool>(3)?.unwrap_or(false) {
                return Err(VibeError::State(format!(
                    "the deployment of job {job_id} belongs to another installation of vibe_ft (a restored copy): \
                     its endpoint is the original's and is left alone here"
                )));
            }
            r.get::<String>(2)?
                .map(|id| (r.get::<String>(1).ok().flatten().unwrap_or_default(), id))
        };
        found.ok_or_else(|| VibeError::NotFound(format!("job {job_id} has no deployment")))
    })?;
    let ep = Spi::connect(|c| keys::endpoint(c, &provider))?;
    let p = runner::client(Mode::Sql, ep);
    let d = p
        .stop_deployment(&endpoint_id)
        .map_err(provider_error("stopping the endpoint"))?;
    Spi::connect_mut(|c| {
        let who = store::first_value::<String>(c.select("SELECT current_user::text", None, &[])?)?.unwrap_or_default();
        record(c, job_id, &d, Some(&format!("endpoint {endpoint_id} stopped by {who}")))
    })
}

/// Ask the provider how each of this installation's endpoints is doing and
/// record it (an idle endpoint is stopped by the provider: its model can no
/// longer be called). HTTP happens outside any transaction in the worker.
/// Returns how many were checked, and whether one is starting or stopping.
pub fn refresh(mode: Mode) -> Result<Refreshed> {
    let rows: Vec<(Uuid, String, String, String)> = runner::tx(mode, || {
        Spi::connect(|c| {
            let mut out = Vec::new();
            for r in c.select(
                "SELECT job_id, provider, endpoint_id, updated_at::text FROM vibe_ft.deployments
                  WHERE endpoint_id IS NOT NULL AND state <> 'deleted'
                    AND installation_id IS NOT DISTINCT FROM vibe_ft.installation_id()
                  ORDER BY checked_at NULLS FIRST LIMIT 100",
                None,
                &[],
            )? {
                if let (Some(j), Some(p), Some(e), Some(u)) = (
                    r.get::<Uuid>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<String>(4)?,
                ) {
                    out.push((j, p, e, u));
                }
            }
            Ok(out)
        })
    })?;
    let mut checked = 0;
    let mut changing = false;
    for (job, provider, endpoint_id, seen) in rows {
        let ep = match runner::tx(mode, || Spi::connect(|c| keys::endpoint(c, &provider))) {
            Ok(ep) => ep,
            Err(_) => continue,
        };
        let p = runner::client(mode, ep);
        let answer = p.deployment(&endpoint_id);
        if let Ok(d) = &answer {
            changing |= matches!(d.state.as_deref(), Some("PENDING" | "STARTING" | "STOPPING"));
        }
        runner::tx(mode, || {
            Spi::connect_mut(|c| {
                // Never wait for a deploy or stop in progress (a caller's open
                // transaction holds the row), and never write over what one of
                // them recorded after we read the row.
                let unchanged = c.update(
                    "SELECT 1 FROM vibe_ft.deployments WHERE job_id = $1 AND updated_at::text = $2 FOR UPDATE SKIP LOCKED",
                    None,
                    &[job.into(), seen.as_str().into()],
                )?;
                if unchanged.is_empty() {
                    return Ok(());
                }
                refreshed(c, job, &answer)
            })
        })?;
        checked += 1;
    }
    Ok(Refreshed { checked, changing })
}

fn refreshed(c: &mut SpiClient<'_>, job: Uuid, answer: &crate::core::provider::Result<Deployment>) -> Result<()> {
    match answer {
        Ok(d) => record(c, job, d, None).map(|_| ()),
        Err(e) => {
            // Gone at the provider: it cannot be called, and nothing is billed.
            let state = if e.http_status == Some(404) {
                Some("deleted")
            } else {
                None
            };
            c.update(
                "UPDATE vibe_ft.deployments SET checked_at = now(), last_error = $2,
                                state = coalesce($3, state), updated_at = now()
                          WHERE job_id = $1",
                None,
                &[job.into(), e.to_string().into(), state.into()],
            )?;
            Ok(())
        }
    }
}

pub struct Refreshed {
    pub checked: i64,
    pub changing: bool,
}
