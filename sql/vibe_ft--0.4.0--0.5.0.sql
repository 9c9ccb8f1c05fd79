-- vibe_ft 0.4.0 -> 0.5.0: providers after OpenAI, and which model can be called.
--  - Together AI as a provider (the runner and its module; nothing here but
--    data and functions), Azure's open-weight models (a body field);
--  - jobs record what the provider charged (cost_usd) and where their
--    estimate came from (estimated_cost_source);
--  - vibe_ft.model_lifecycle: when base models stop training and serving
--    (OpenAI's 2027-01-06 / 2027-01-14, Azure's dates shipped);
--  - vibe_ft.deployments and hardware_prices: dedicated endpoints, started
--    only by vibe_ft.deploy_model within an hourly cap, stopped by
--    vibe_ft.stop_deployment;
--  - vibe_ft.models, vibe_ft.serving_model(): every fine-tuned model, the
--    name and base URL an app calls, whether it can be called now;
--    get_latest_finetuned_model returns only callable models;
--  - validate_dataset checks the dataset's provider's rules and says whether
--    its token counts are exact (tokens_exact);
--  - the status view warns 30 days before a model in use retires.
-- Hand-written; once released, never edited. A fresh 0.5.0 install and
-- 0.4.0 + this script must define the same objects (checked by tests/e2e:
-- test_upgrade_from_0_4_0_matches_a_fresh_install).
\echo Use "ALTER EXTENSION vibe_ft UPDATE TO '0.5.0'" to load this file. \quit

-- Roles given access with vibe_ft.grant_access (what it grants them: INSERT on
-- vibe_ft.jobs and EXECUTE on validate_dataset) get the new objects at the end.
SELECT pg_catalog.set_config('vibe_ft_upgrade.grantees',
       coalesce((SELECT pg_catalog.string_agg(r.oid::pg_catalog.text, ',')
                   FROM pg_catalog.pg_roles r
                  WHERE r.oid OPERATOR(pg_catalog.<>) (SELECT c.relowner FROM pg_catalog.pg_class c
                                                        WHERE c.oid OPERATOR(pg_catalog.=) 'vibe_ft.jobs'::pg_catalog.regclass)
                    AND pg_catalog.has_table_privilege(r.oid, 'vibe_ft.jobs', 'INSERT')
                    AND pg_catalog.has_function_privilege(r.oid,
                            'vibe_ft.validate_dataset(uuid, text, text, numeric)', 'EXECUTE')
                    AND NOT r.rolsuper), ''),
       true);

---------------------------------------------------------------------------
-- Data model
---------------------------------------------------------------------------
ALTER TABLE vibe_ft.jobs
    -- what the provider charged, when it says (Together's total_price)
    ADD COLUMN cost_usd              numeric CHECK (cost_usd >= 0),
    -- where estimated_cost_usd comes from: 'prices table' or '<provider> estimate'
    ADD COLUMN estimated_cost_source text;

-- When a provider's base model stops taking fine-tuning jobs and stops
-- serving (its fine-tuned models go with it). Dates are data, like prices:
-- rows shipped with vibe_ft are history, and a row with a newer valid_from
-- overrides them (the newest one in effect wins).
CREATE TABLE vibe_ft.model_lifecycle (
    provider      text NOT NULL,
    base_model    text NOT NULL,
    valid_from    date NOT NULL DEFAULT current_date,
    training_ends timestamptz,
    serving_ends  timestamptz,
    note          text,
    source        text NOT NULL DEFAULT 'user',
    PRIMARY KEY (provider, base_model, valid_from)
);
COMMENT ON TABLE vibe_ft.model_lifecycle IS
    'When base models stop training and serving (their fine-tunes with them); insert a row with a newer valid_from to change one.';
INSERT INTO vibe_ft.model_lifecycle (provider, base_model, valid_from, training_ends, serving_ends, note, source) VALUES
    ('openai', 'gpt-4o-2024-08-06',       '2026-10-14', '2027-01-06 00:00+00', '2027-01-14 00:00+00',
     'OpenAI: no new fine-tuning jobs from 2027-01-06; removed from the API with its fine-tunes on 2027-01-14 (notice of 2026-10-14)', 'vibe_ft'),
    ('openai', 'gpt-4o-2024-11-20',       '2026-10-14', '2027-01-06 00:00+00', '2027-01-14 00:00+00',
     'OpenAI: no new fine-tuning jobs from 2027-01-06; removed from the API with its fine-tunes on 2027-01-14 (notice of 2026-10-14)', 'vibe_ft'),
    ('openai', 'gpt-4o-mini-2024-07-18',  '2026-10-14', '2027-01-06 00:00+00', '2027-01-14 00:00+00',
     'OpenAI: no new fine-tuning jobs from 2027-01-06; removed from the API with its fine-tunes on 2027-01-14 (notice of 2026-10-14)', 'vibe_ft'),
    ('openai', 'gpt-4.1-2025-04-14',      '2026-10-14', '2027-01-06 00:00+00', '2027-01-14 00:00+00',
     'OpenAI: no new fine-tuning jobs from 2027-01-06; removed from the API with its fine-tunes on 2027-01-14 (notice of 2026-10-14)', 'vibe_ft'),
    ('openai', 'gpt-4.1-mini-2025-04-14', '2026-10-14', '2027-01-06 00:00+00', '2027-01-14 00:00+00',
     'OpenAI: no new fine-tuning jobs from 2027-01-06; removed from the API with its fine-tunes on 2027-01-14 (notice of 2026-10-14)', 'vibe_ft'),
    ('openai', 'gpt-4.1-nano-2025-04-14', '2026-10-14', '2026-10-23 00:00+00', '2026-10-23 00:00+00',
     'OpenAI: retired on 2026-10-23', 'vibe_ft'),
    ('azure',  'gpt-4o-2024-08-06',       '2026-10-14', '2027-04-01 00:00+00', '2027-10-01 00:00+00',
     'Azure OpenAI: training for existing customers until no earlier than 2027-04-01 (new customers: at base model retirement); deployments until 2027-10-01', 'vibe_ft'),
    ('azure',  'gpt-4o-mini-2024-07-18',  '2026-10-14', '2027-04-01 00:00+00', '2027-10-01 00:00+00',
     'Azure OpenAI: training for existing customers until no earlier than 2027-04-01 (new customers: at base model retirement); deployments until 2027-10-01', 'vibe_ft'),
    ('azure',  'gpt-4.1-2025-04-14',      '2026-10-14', '2027-04-14 00:00+00', '2027-10-14 00:00+00',
     'Azure OpenAI: training for existing customers until no earlier than 2027-04-14 (new customers: not at all); deployments until 2027-10-14', 'vibe_ft'),
    ('azure',  'gpt-4.1-mini-2025-04-14', '2026-10-14', '2027-04-14 00:00+00', '2027-10-14 00:00+00',
     'Azure OpenAI: training for existing customers until no earlier than 2027-04-14 (new customers: not at all); deployments until 2027-10-14', 'vibe_ft'),
    ('azure',  'gpt-4.1-nano-2025-04-14', '2026-10-14', '2027-04-14 00:00+00', '2027-10-14 00:00+00',
     'Azure OpenAI: training for existing customers until no earlier than 2027-04-14 (new customers: not at all); deployments until 2027-10-14', 'vibe_ft');

-- Hourly prices of dedicated hardware (Together's endpoints bill per minute,
-- even idle). Data, like prices: add a row with a newer valid_from.
CREATE TABLE vibe_ft.hardware_prices (
    provider   text NOT NULL,
    hardware   text NOT NULL,
    valid_from date NOT NULL DEFAULT current_date,
    -- a number: NaN and Infinity would defeat every cap
    hourly_usd numeric NOT NULL CHECK (hourly_usd >= 0 AND hourly_usd < 'Infinity'),
    source     text NOT NULL DEFAULT 'user',
    PRIMARY KEY (provider, hardware, valid_from)
);
COMMENT ON TABLE vibe_ft.hardware_prices IS
    'What an hour of a dedicated endpoint costs per replica; insert a row with a newer valid_from to change one.';
INSERT INTO vibe_ft.hardware_prices (provider, hardware, valid_from, hourly_usd, source) VALUES
    ('together', '1x_nvidia_h100_80gb_sxm', '2026-10-01', 3.99, 'vibe_ft'),
    ('together', '1x_nvidia_h200_141gb_sxm', '2026-10-01', 5.49, 'vibe_ft'),
    ('together', '1x_nvidia_b200_180gb_sxm', '2026-10-01', 9.95, 'vibe_ft');

-- A fine-tuned model served on dedicated hardware: started only by an
-- explicit vibe_ft.deploy_model (it costs money every minute), with a cap on
-- its hourly cost and an idle timeout; stopped by vibe_ft.stop_deployment or
-- by the provider when idle. One per job.
CREATE TABLE vibe_ft.deployments (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id                   uuid NOT NULL UNIQUE REFERENCES vibe_ft.jobs (id) ON DELETE RESTRICT,
    provider                 text NOT NULL,
    model                    text NOT NULL,
    -- the provider's id for the endpoint, and the name an app passes as model
    endpoint_id              text UNIQUE,
    endpoint_name            text,
    hardware                 text NOT NULL,
    min_replicas             integer NOT NULL CHECK (min_replicas >= 0),
    max_replicas             integer NOT NULL CHECK (max_replicas >= 1 AND max_replicas >= min_replicas),
    hourly_usd               numeric NOT NULL CHECK (hourly_usd >= 0 AND hourly_usd < 'Infinity'),
    max_hourly_usd           numeric NOT NULL CHECK (max_hourly_usd >= 0 AND max_hourly_usd < 'Infinity'),
    inactive_timeout_minutes integer NOT NULL CHECK (inactive_timeout_minutes >= 0),
    -- 'requested' until the provider answers; then its state (PENDING,
    -- STARTING, STARTED, STOPPING, STOPPED, FAILED, ERROR)
    state                    text NOT NULL DEFAULT 'requested',
    installation_id          uuid DEFAULT vibe_ft.installation_id(),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    checked_at               timestamptz,
    last_error               text
);
COMMENT ON TABLE vibe_ft.deployments IS
    'Fine-tuned models served on dedicated, per-minute-billed endpoints (Together): started only by vibe_ft.deploy_model.';

SELECT pg_catalog.pg_extension_config_dump('vibe_ft.model_lifecycle', 'WHERE source <> ''vibe_ft''');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.hardware_prices', 'WHERE source <> ''vibe_ft''');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.deployments', '');

---------------------------------------------------------------------------
-- Functions in Rust
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft."provider_base_url"(
	"p_provider" TEXT
) RETURNS TEXT
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'provider_base_url_wrapper';
CREATE FUNCTION vibe_ft."needs_deployment"(
	"p_provider" TEXT
) RETURNS bool
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'needs_deployment_wrapper';
CREATE FUNCTION vibe_ft."deploy_model"(
	"p_job_id" uuid,
	"p_max_hourly_usd" NUMERIC,
	"p_hardware" TEXT DEFAULT '1x_nvidia_h100_80gb_sxm',
	"p_inactive_timeout_minutes" INT DEFAULT 60,
	"p_min_replicas" INT DEFAULT 1,
	"p_max_replicas" INT DEFAULT 1
) RETURNS TABLE (
	"endpoint_name" TEXT,
	"state" TEXT,
	"hourly_usd" NUMERIC
)
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'deploy_model_wrapper';
CREATE FUNCTION vibe_ft."stop_deployment"(
	"p_job_id" uuid
) RETURNS TEXT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'stop_deployment_wrapper';
CREATE FUNCTION vibe_ft."refresh_deployments"() RETURNS bigint
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'refresh_deployments_wrapper';

-- validate_dataset gains tokens_exact (a new result column: drop and create).
DROP FUNCTION vibe_ft.validate_dataset(uuid, text, text, numeric);
CREATE FUNCTION vibe_ft."validate_dataset"(
	"p_dataset_id" uuid,
	"p_base_model" TEXT DEFAULT NULL,
	"p_method" TEXT DEFAULT NULL,
	"p_min_quality_score" NUMERIC DEFAULT NULL
) RETURNS TABLE (
	"split" TEXT,
	"valid" bool,
	"examples" bigint,
	"tokens" bigint,
	"billable_tokens" bigint,
	"max_example_tokens" INT,
	"examples_over_limit" bigint,
	"examples_with_problems" bigint,
	"problems" jsonb,
	"encoding" TEXT,
	"tokens_exact" bool
)

SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'validate_dataset_for_provider_wrapper';

---------------------------------------------------------------------------
-- Which models can still be called, and where
---------------------------------------------------------------------------
-- Rows shipped with vibe_ft (model dates, hardware prices) are history:
-- change one by adding a row with a newer valid_from.
CREATE FUNCTION vibe_ft.keep_shipped_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.source = 'vibe_ft' THEN
        RAISE EXCEPTION 'rows shipped with vibe_ft in %.% are kept as history', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = '55000',
                  HINT = 'Insert a row with a newer valid_from (e.g. current_date); the newest one in effect is used.';
    END IF;
    -- Shipped rows are not dumped (they come back with CREATE EXTENSION): a
    -- row of the user's must not claim to be one, or a restore would lose it.
    IF TG_OP = 'INSERT' AND NEW.source = 'vibe_ft' THEN
        RAISE EXCEPTION 'source ''vibe_ft'' is for the rows shipped with vibe_ft'
            USING ERRCODE = '55000', HINT = 'Leave source at its default (''user'').';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
-- (Created after the shipped rows were inserted, in CREATE EXTENSION and in
-- the upgrade alike.)
CREATE TRIGGER model_lifecycle_keep_shipped
    BEFORE INSERT OR UPDATE OR DELETE ON vibe_ft.model_lifecycle
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.keep_shipped_rows();
CREATE TRIGGER hardware_prices_keep_shipped
    BEFORE INSERT OR UPDATE OR DELETE ON vibe_ft.hardware_prices
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.keep_shipped_rows();

-- The dates in effect for a provider's base model (of a fine-tuned model
-- ft:<base>:..., its base); no row when none is known. Postgres inlines it
-- into its callers (the model rule runs on every chat request), so it has no
-- SET clause and qualifies every operator and function instead.
CREATE FUNCTION vibe_ft.model_lifecycle_of(p_provider text, p_base_model text)
RETURNS TABLE (training_ends timestamptz, serving_ends timestamptz, note text)
LANGUAGE sql STABLE AS $$
    SELECT l.training_ends, l.serving_ends, l.note FROM vibe_ft.model_lifecycle l
     WHERE l.provider OPERATOR(pg_catalog.=) p_provider
       AND l.base_model OPERATOR(pg_catalog.=)
           CASE WHEN p_base_model OPERATOR(pg_catalog.~~) 'ft:%'
                THEN pg_catalog.split_part(p_base_model, ':', 2) ELSE p_base_model END
       AND l.valid_from OPERATOR(pg_catalog.<=) CURRENT_DATE
     ORDER BY l.valid_from DESC LIMIT 1
$$;

-- The newest hourly price in effect for a provider's hardware; NULL when none.
CREATE FUNCTION vibe_ft.hardware_price(p_provider text, p_hardware text) RETURNS numeric
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT h.hourly_usd FROM vibe_ft.hardware_prices h
     WHERE h.provider = p_provider AND h.hardware = p_hardware AND h.valid_from <= current_date
     ORDER BY h.valid_from DESC LIMIT 1
$$;

-- Whether a succeeded job's model can be called now: its base model has not
-- retired, and where the provider serves fine-tunes on dedicated hardware,
-- this installation's endpoint for it has started. The one rule behind
-- vibe_ft.models, vibe_ft.serving_model and get_latest_finetuned_model (which
-- call it only on the newest candidates, in order, until one passes).
CREATE FUNCTION vibe_ft.model_callable(p_job_id uuid, p_provider text, p_base_model text) RETURNS boolean
-- plpgsql: its plans are kept for the session (an SQL function's are made again on every call).
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM vibe_ft.model_lifecycle_of(p_provider, p_base_model) l WHERE l.serving_ends <= now()) THEN
        RETURN false;
    END IF;
    IF NOT coalesce(vibe_ft.needs_deployment(p_provider), false) THEN
        RETURN true;
    END IF;
    RETURN EXISTS (SELECT 1 FROM vibe_ft.deployments dp
                    WHERE dp.job_id = p_job_id
                      AND dp.installation_id IS NOT DISTINCT FROM (SELECT i.id FROM vibe_ft.installation i)
                      AND dp.state = 'STARTED' AND dp.endpoint_name IS NOT NULL);
END
$$;

-- Every fine-tuned model: where it came from, the name an app passes as
-- model (the endpoint's name where the provider serves fine-tunes on
-- dedicated hardware), the base URL to call, when it retires, and whether it
-- can be called now (and if not, why).
CREATE VIEW vibe_ft.models AS
SELECT j.id                                     AS job_id,
       j.dataset_id,
       d.name                                   AS dataset_name,
       j.provider,
       j.base_model,
       j.fine_tuned_model,
       CASE WHEN vibe_ft.needs_deployment(j.provider) THEN dp.endpoint_name
            ELSE j.fine_tuned_model END         AS serve_model,
       vibe_ft.provider_base_url(j.provider)    AS base_url,
       l.serving_ends                           AS retires_at,
       dp.state                                 AS deployment_state,
       dp.hourly_usd                            AS deployment_hourly_usd,
       vibe_ft.model_callable(j.id, j.provider, j.base_model) AS callable,
       CASE WHEN l.serving_ends <= now() THEN
                 format('retired on %s: %s', to_char(l.serving_ends AT TIME ZONE 'UTC', 'YYYY-MM-DD'), l.note)
            WHEN coalesce(vibe_ft.needs_deployment(j.provider), false) AND dp.job_id IS NULL THEN
                 format('not deployed: SELECT * FROM vibe_ft.deploy_model(%L, <max USD per hour>) serves it on a dedicated endpoint, billed per minute', j.id)
            WHEN coalesce(vibe_ft.needs_deployment(j.provider), false) AND dp.state IS DISTINCT FROM 'STARTED' THEN
                 format('its endpoint is %s', dp.state)
       END                                      AS not_callable_because,
       j.created_at,
       j.finished_at,
       j.train_examples,
       j.avg_train_quality
  FROM vibe_ft.jobs j
  JOIN vibe_ft.datasets d ON d.id = j.dataset_id
  -- a restored copy does not serve through the original's endpoints
  LEFT JOIN vibe_ft.deployments dp
         ON dp.job_id = j.id AND dp.installation_id IS NOT DISTINCT FROM vibe_ft.installation_id()
  LEFT JOIN LATERAL vibe_ft.model_lifecycle_of(j.provider, j.base_model) l ON true
 WHERE j.status = 'succeeded' AND j.fine_tuned_model IS NOT NULL;
COMMENT ON VIEW vibe_ft.models IS
    'Every fine-tuned model: provider, base model, the name an app passes as model, the base URL, when it retires, and whether it can be called now.';

-- Everything an app needs to call the model to serve: its provider, the base
-- URL, the model (or endpoint) name. The newest callable fine-tuned model,
-- of a base model and/or a dataset when given; no row when there is none
-- (the app falls back to its base model).
CREATE FUNCTION vibe_ft.serving_model(p_base_model text DEFAULT NULL, p_dataset_id uuid DEFAULT NULL)
RETURNS TABLE (provider text, base_url text, model text, fine_tuned_model text, base_model text,
               job_id uuid, dataset_id uuid, retires_at timestamptz)
-- plpgsql: its plan is kept for the session (chat requests call this).
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT j.provider,
           vibe_ft.provider_base_url(j.provider),
           CASE WHEN coalesce(vibe_ft.needs_deployment(j.provider), false)
                THEN (SELECT dp.endpoint_name FROM vibe_ft.deployments dp WHERE dp.job_id = j.id)
                ELSE j.fine_tuned_model END,
           j.fine_tuned_model, j.base_model, j.id, j.dataset_id,
           (SELECT l.serving_ends FROM vibe_ft.model_lifecycle_of(j.provider, j.base_model) l)
      -- Newest first; the rule is checked in that order until a model passes
      -- (OFFSET 0 keeps it out of the subquery, where it would run for every job).
      FROM (SELECT jj.id, jj.provider, jj.base_model, jj.fine_tuned_model, jj.dataset_id
              FROM vibe_ft.jobs jj
             WHERE jj.status = 'succeeded' AND jj.fine_tuned_model IS NOT NULL
               AND (p_base_model IS NULL OR jj.base_model = p_base_model)
               AND (p_dataset_id IS NULL OR jj.dataset_id = p_dataset_id)
             ORDER BY jj.finished_at DESC, jj.created_at DESC
            OFFSET 0) j
     WHERE vibe_ft.model_callable(j.id, j.provider, j.base_model)
     LIMIT 1;
END
$$;
COMMENT ON FUNCTION vibe_ft.serving_model(text, uuid) IS
    'The model an app should call now: provider, base URL, model or endpoint name (newest callable fine-tune; no row: use the base model).';

-- Warnings for the status view: a model in use (what serving_model gives a
-- dataset) that retires within 30 days, and a dataset whose base model stops
-- taking fine-tuning jobs within 30 days.
CREATE FUNCTION vibe_ft.model_warnings() RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(w.message ORDER BY w.at), '{}')
      FROM (SELECT format('%s (%s, dataset %s) can no longer be called after %s: switch the dataset to another provider '
                          '(UPDATE vibe_ft.datasets SET provider = ..., base_model = ...) and train its successor',
                          s.model, s.provider, d.name, to_char(s.retires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) AS message,
                   s.retires_at AS at
              FROM vibe_ft.datasets d
             CROSS JOIN LATERAL vibe_ft.serving_model(NULL, d.id) s
             WHERE s.retires_at < now() + interval '30 days'
            UNION ALL
            SELECT format('dataset %s trains %s (%s), which takes no fine-tuning jobs after %s: %s',
                          d.name, d.base_model, d.provider, to_char(l.training_ends AT TIME ZONE 'UTC', 'YYYY-MM-DD'), l.note),
                   l.training_ends
              FROM vibe_ft.datasets d
             CROSS JOIN LATERAL vibe_ft.model_lifecycle_of(d.provider, d.base_model) l
             WHERE l.training_ends < now() + interval '30 days') w
$$;

CREATE OR REPLACE VIEW vibe_ft.status AS
SELECT vibe_ft.worker_loaded()          AS worker_loaded,
       w.pid                            AS worker_pid,
       to_timestamp(w.started_at)       AS worker_started_at,
       to_timestamp(w.heartbeat_at)     AS worker_heartbeat_at,
       w.last_error                     AS worker_last_error,
       to_timestamp(w.last_error_at)    AS worker_last_error_at,
       (SELECT count(*) FROM vibe_ft.jobs j
         WHERE j.status IN ('pending', 'exporting', 'uploading', 'submitted')
           AND j.installation_id = vibe_ft.installation_id())::integer AS jobs_waiting,
       (SELECT count(*) FROM vibe_ft.jobs j
         WHERE j.status IN ('validating_files', 'queued', 'running', 'paused')
           AND j.installation_id = vibe_ft.installation_id())::integer AS jobs_running,
       (SELECT min(j.next_attempt_at) FROM vibe_ft.jobs j
         WHERE j.status NOT IN ('succeeded', 'failed', 'cancelled')
           AND j.installation_id = vibe_ft.installation_id()) AS next_attempt_at,
       e.job_id                 AS last_job_error_job_id,
       e.message                AS last_job_error,
       e.created_at             AS last_job_error_at,
       -- unfinished jobs restored from another installation: left alone until adopted
       (SELECT count(*) FROM vibe_ft.jobs j
         WHERE j.status NOT IN ('succeeded', 'failed', 'cancelled')
           AND j.installation_id IS DISTINCT FROM vibe_ft.installation_id())::integer AS foreign_jobs,
       -- 0.5.0: models in use that retire, base models that stop training, within 30 days
       vibe_ft.model_warnings() AS model_warnings
  FROM (SELECT 1) AS one
  LEFT JOIN vibe_ft.worker_info() w ON true
  LEFT JOIN LATERAL (SELECT ev.job_id, ev.message, ev.created_at FROM vibe_ft.job_events ev
                      WHERE ev.kind = 'error' ORDER BY ev.id DESC LIMIT 1) e ON true;
COMMENT ON VIEW vibe_ft.status IS
    'The job runner at a glance: worker heartbeat and last error, jobs waiting on us, jobs at the provider, the last job error, jobs of another installation, models about to retire.';

CREATE OR REPLACE FUNCTION vibe_ft.grant_access(p_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    role_name name;
    f regprocedure;
BEGIN
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'p_role must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT rolname INTO role_name FROM pg_roles WHERE oid = p_role;
    EXECUTE format('GRANT USAGE ON SCHEMA vibe_ft TO %I', role_name);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA vibe_ft TO %I', role_name);
    -- What runs on paid hardware, and its prices (which the caps are checked
    -- against), are the owner's to change.
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON vibe_ft.deployments, vibe_ft.hardware_prices FROM %I', role_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA vibe_ft TO %I', role_name);
    EXECUTE format('GRANT SELECT ON public.finetuning_job_stats TO %I', role_name);
    EXECUTE format('GRANT SELECT ON vibe_ft.status TO %I', role_name);
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_depend dep
               JOIN pg_extension x ON x.oid = dep.refobjid AND x.extname = 'vibe_ft'
               JOIN pg_proc p ON p.oid = dep.objid
              WHERE dep.classid = 'pg_proc'::regclass AND dep.deptype = 'e'
                AND p.proname NOT IN ('grant_access', 'revoke_access',
                                      'schedule_monthly_check', 'unschedule_monthly_check',
                                      'run_jobs', 'run_job_step', 'provider_key_source',
                                      'run_jobs_deadline', 'due_jobs', 'run_due_job', 'record_step_error',
                                      'schedule_job_runner', 'unschedule_job_runner',
                                      'schedule_example_generation', 'unschedule_example_generation',
                                      'grant_feedback', 'adopt_jobs', 'cron_schedule',
                                      'deploy_model', 'stop_deployment', 'refresh_deployments')
    LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, role_name);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vibe_ft.grant_access(regrole) IS
    'Grant a trusted backend role (e.g. service_role) what it needs to use vibe_ft: data, functions, the views. Not running jobs, scheduling or grants.';

-- adopt_jobs adopts a restored job's endpoint too.
CREATE OR REPLACE FUNCTION vibe_ft.adopt_jobs(p_job_id uuid DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := 0;
    job uuid;
BEGIN
    IF p_job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vibe_ft.jobs j WHERE j.id = p_job_id) THEN
        RAISE EXCEPTION 'job % does not exist (p_job_id)', p_job_id USING ERRCODE = '42704';
    END IF;
    FOR job IN
        UPDATE vibe_ft.jobs j SET installation_id = vibe_ft.installation_id(), next_attempt_at = NULL
         WHERE j.installation_id IS DISTINCT FROM vibe_ft.installation_id()
           AND (p_job_id IS NULL OR j.id = p_job_id)
        RETURNING j.id
    LOOP
        PERFORM vibe_ft.record_job_event(job, 'note', NULL, NULL,
            'adopted by this installation (vibe_ft.adopt_jobs): it may act on the job''s provider objects now', NULL);
        n := n + 1;
    END LOOP;
    -- Their endpoints too (and those of finished jobs, which have no other way in).
    UPDATE vibe_ft.deployments dp SET installation_id = vibe_ft.installation_id(), updated_at = now()
     WHERE dp.installation_id IS DISTINCT FROM vibe_ft.installation_id()
       AND (p_job_id IS NULL OR dp.job_id = p_job_id);
    RETURN n;
END
$$;

-- estimate_cost says where its price comes from, and when its tokens are estimates.
CREATE OR REPLACE FUNCTION vibe_ft.estimate_cost(
    p_dataset_id uuid,
    p_base_model text DEFAULT NULL,
    p_hyperparameters jsonb DEFAULT NULL,
    p_method text DEFAULT NULL,
    p_min_quality_score numeric DEFAULT NULL)
RETURNS TABLE (provider text, base_model text, train_examples bigint, training_tokens bigint,
               n_epochs integer, billed_tokens bigint, training_per_million numeric,
               estimated_cost_usd numeric, valid boolean, note text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d vibe_ft.datasets;
    v record;
BEGIN
    IF p_dataset_id IS NULL THEN
        RAISE EXCEPTION 'p_dataset_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO d FROM vibe_ft.datasets WHERE id = p_dataset_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dataset % does not exist (p_dataset_id)', p_dataset_id USING ERRCODE = '42704';
    END IF;
    IF p_hyperparameters IS NOT NULL AND jsonb_typeof(p_hyperparameters) <> 'object' THEN
        RAISE EXCEPTION 'p_hyperparameters must be a JSON object' USING ERRCODE = '22023';
    END IF;
    provider := d.provider;
    base_model := coalesce(p_base_model, d.base_model);
    SELECT * INTO v FROM vibe_ft.validate_dataset(p_dataset_id, base_model, p_method, p_min_quality_score) s
     WHERE s.split = 'train';
    train_examples := v.examples;
    training_tokens := v.billable_tokens;
    n_epochs := CASE WHEN d.provider = 'together'
                     -- Together trains one epoch unless told otherwise
                     THEN CASE WHEN jsonb_typeof(coalesce(p_hyperparameters, d.hyperparameters) -> 'n_epochs') = 'number'
                               THEN greatest((coalesce(p_hyperparameters, d.hyperparameters) ->> 'n_epochs')::numeric::integer, 1)
                               ELSE 1 END
                     ELSE vibe_ft.training_epochs(coalesce(p_hyperparameters, d.hyperparameters), v.examples) END;
    billed_tokens := v.billable_tokens * n_epochs;
    training_per_million := vibe_ft.training_price(d.provider, base_model);
    estimated_cost_usd := round(billed_tokens * training_per_million / 1000000, 2);
    valid := v.valid;
    note := CASE
        WHEN training_per_million IS NULL THEN
            format('no training price for %s (%s) in vibe_ft.prices', base_model, d.provider)
            || CASE WHEN d.provider = 'together'
                    THEN '; Together''s own estimate (estimate-price) is asked for once the file is uploaded, before the job is created, and recorded as the job''s estimated_cost_usd'
                    ELSE '' END
        WHEN NOT v.valid THEN 'the training data fails validation: see vibe_ft.validate_dataset'
        ELSE format('%s tokens x %s epoch(s) x $%s per 1M tokens (vibe_ft.prices)', training_tokens, n_epochs, training_per_million)
            || CASE WHEN v.tokens_exact THEN '' ELSE '; the token count is an estimate' END
    END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION vibe_ft.estimate_cost(uuid, text, jsonb, text, numeric) IS
    'What a fine-tuning job on this dataset would cost: training tokens (real counts) x epochs x the price in vibe_ft.prices.';

-- No default grant on the new objects: PUBLIC's EXECUTE on functions, and
-- where Supabase's roles exist, their default privileges. (Only the new ones:
-- grants made since install, such as grant_feedback's, stay.)
DO $$
DECLARE
    target text;
    grantee text;
    grantees text[] := ARRAY['PUBLIC'];
BEGIN
    SELECT grantees || array_agg(quote_ident(rolname)) INTO grantees
      FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role');
    grantees := coalesce(grantees, ARRAY['PUBLIC']);
    FOREACH target IN ARRAY ARRAY[
        'ROUTINE vibe_ft.provider_base_url(text)', 'ROUTINE vibe_ft.needs_deployment(text)',
        'ROUTINE vibe_ft.deploy_model(uuid, numeric, text, integer, integer, integer)',
        'ROUTINE vibe_ft.stop_deployment(uuid)', 'ROUTINE vibe_ft.refresh_deployments()',
        'ROUTINE vibe_ft.validate_dataset(uuid, text, text, numeric)', 'ROUTINE vibe_ft.keep_shipped_rows()',
        'ROUTINE vibe_ft.model_lifecycle_of(text, text)', 'ROUTINE vibe_ft.hardware_price(text, text)',
        'ROUTINE vibe_ft.serving_model(text, uuid)', 'ROUTINE vibe_ft.model_warnings()',
        'ROUTINE vibe_ft.model_callable(uuid, text, text)',
        'TABLE vibe_ft.model_lifecycle', 'TABLE vibe_ft.hardware_prices', 'TABLE vibe_ft.deployments',
        'TABLE vibe_ft.models']
    LOOP
        FOREACH grantee IN ARRAY grantees LOOP
            EXECUTE format('REVOKE ALL ON %s FROM %s', target, grantee);
        END LOOP;
    END LOOP;
END
$$;

-- Roles given access with vibe_ft.grant_access get the new objects as it
-- grants them (and nothing else: privileges narrowed since stay narrowed).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY pg_catalog.string_to_array(pg_catalog.current_setting('vibe_ft_upgrade.grantees'), ',') LOOP
        r := pg_catalog.quote_ident(r::pg_catalog.oid::pg_catalog.regrole::pg_catalog.text);
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON vibe_ft.model_lifecycle, vibe_ft.models TO ' || r;
        EXECUTE 'GRANT SELECT ON vibe_ft.deployments, vibe_ft.hardware_prices TO ' || r;
        EXECUTE 'GRANT EXECUTE ON FUNCTION vibe_ft.validate_dataset(uuid, text, text, numeric),
                 vibe_ft.provider_base_url(text), vibe_ft.needs_deployment(text), vibe_ft.keep_shipped_rows(),
                 vibe_ft.model_lifecycle_of(text, text), vibe_ft.hardware_price(text, text),
                 vibe_ft.serving_model(text, uuid), vibe_ft.model_warnings(),
                 vibe_ft.model_callable(uuid, text, text) TO ' || r;
    END LOOP;
END
$$;

-- A running worker of this version starts serving this database now.
SELECT vibe_ft.wake_worker();
