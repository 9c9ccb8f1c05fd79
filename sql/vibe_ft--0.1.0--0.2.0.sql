-- vibe_ft 0.1.0 -> 0.2.0: the job runner (provider clients, background
-- worker, SQL-only runner, cancel, status view). Hand-written; once released,
-- never edited. A fresh 0.2.0 install and 0.1.0 + this script must define the
-- same objects (checked by tests/e2e: test_upgrade_from_0_1_0).
\echo Use "ALTER EXTENSION vibe_ft UPDATE TO '0.2.0'" to load this file. \quit

ALTER TABLE vibe_ft.jobs
    ADD COLUMN seed                  bigint,
    ADD COLUMN provider_status       text,
    ADD COLUMN provider_event_cursor text,
    ADD COLUMN estimated_finish_at   timestamptz,
    ADD COLUMN attempts              integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at       timestamptz;
CREATE INDEX jobs_due ON vibe_ft.jobs (next_attempt_at)
    WHERE status NOT IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX job_events_errors ON vibe_ft.job_events (id) WHERE kind = 'error';


-- New Rust functions (as cargo pgrx schema generates them for 0.2.0).
CREATE FUNCTION vibe_ft."run_job_step"(
	"p_job_id" uuid
) RETURNS TEXT
LANGUAGE c
AS 'MODULE_PATHNAME', 'run_job_step_wrapper';

CREATE FUNCTION vibe_ft."wake_worker"() RETURNS void
STRICT PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'wake_worker_wrapper';

CREATE FUNCTION vibe_ft."worker_loaded"() RETURNS bool
STRICT STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'worker_loaded_wrapper';

CREATE FUNCTION vibe_ft."worker_info"() RETURNS TABLE (
	"pid" INT,
	"started_at" double precision,
	"heartbeat_at" double precision,
	"last_error" TEXT,
	"last_error_at" double precision
)
STRICT STABLE
LANGUAGE c
AS 'MODULE_PATHNAME', 'worker_info_wrapper';

CREATE FUNCTION vibe_ft."provider_key_source"(
	"p_provider" TEXT
) RETURNS TEXT
LANGUAGE c
AS 'MODULE_PATHNAME', 'provider_key_source_wrapper';

CREATE FUNCTION public."cancel_finetuning_job"(
	"p_job_id" uuid
) RETURNS TEXT
LANGUAGE c
AS 'MODULE_PATHNAME', 'cancel_finetuning_job_wrapper';

CREATE FUNCTION vibe_ft."schedule_job_runner"(
	"p_schedule" TEXT DEFAULT '* * * * *'
) RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'schedule_job_runner_wrapper';

CREATE FUNCTION vibe_ft."unschedule_job_runner"() RETURNS bool
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'unschedule_job_runner_wrapper';

CREATE FUNCTION vibe_ft.jobs_wake_worker() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM vibe_ft.wake_worker();
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_wake_worker
    AFTER INSERT OR UPDATE OF status, next_attempt_at ON vibe_ft.jobs
    FOR EACH STATEMENT EXECUTE FUNCTION vibe_ft.jobs_wake_worker();

-- No SET clause: a procedure with one cannot COMMIT. Every name is qualified.
CREATE PROCEDURE vibe_ft.run_jobs(p_max_seconds integer DEFAULT 50)
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz;
    due uuid[];
    busy uuid[] := '{}';
    job uuid;
    result text;
    steps integer := 0;
BEGIN
    IF p_max_seconds IS NULL OR p_max_seconds < 0 THEN
        RAISE EXCEPTION 'p_max_seconds must be >= 0, got %', coalesce(p_max_seconds::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF NOT pg_catalog.current_setting('vibe_ft.enabled')::boolean THEN
        RAISE NOTICE 'vibe_ft.enabled is off: no provider calls are made';
        RETURN;
    END IF;
    deadline := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_max_seconds);
    LOOP
        SELECT pg_catalog.array_agg(j.id ORDER BY j.next_attempt_at NULLS FIRST, j.created_at) INTO due
          FROM vibe_ft.jobs j
         WHERE j.status NOT IN ('succeeded', 'failed', 'cancelled')
           AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= pg_catalog.clock_timestamp())
           AND j.id <> ALL (busy);
        EXIT WHEN due IS NULL;
        FOREACH job IN ARRAY due LOOP
            result := vibe_ft.run_job_step(job);
            COMMIT;
            steps := steps + 1;
            IF result = 'busy' THEN
                busy := busy || job;
            END IF;
            EXIT WHEN pg_catalog.clock_timestamp() >= deadline;
        END LOOP;
        EXIT WHEN pg_catalog.clock_timestamp() >= deadline;
    END LOOP;
    RAISE DEBUG 'vibe_ft.run_jobs: % step(s)', steps;
END
$$;
COMMENT ON PROCEDURE vibe_ft.run_jobs(integer) IS
    'Advance every due job (export, upload, create, poll) for up to p_max_seconds, committing after each step. For hosts without the background worker.';

CREATE VIEW vibe_ft.status AS
SELECT vibe_ft.worker_loaded()          AS worker_loaded,
       w.pid                            AS worker_pid,
       to_timestamp(w.started_at)       AS worker_started_at,
       to_timestamp(w.heartbeat_at)     AS worker_heartbeat_at,
       w.last_error                     AS worker_last_error,
       to_timestamp(w.last_error_at)    AS worker_last_error_at,
       (SELECT count(*) FROM vibe_ft.jobs j
         WHERE j.status IN ('pending', 'exporting', 'uploading', 'submitted'))::integer AS jobs_waiting,
       (SELECT count(*) FROM vibe_ft.jobs j
         WHERE j.status IN ('validating_files', 'queued', 'running', 'paused'))::integer AS jobs_running,
       (SELECT min(j.next_attempt_at) FROM vibe_ft.jobs j
         WHERE j.status NOT IN ('succeeded', 'failed', 'cancelled')) AS next_attempt_at,
       e.job_id                 AS last_job_error_job_id,
       e.message                AS last_job_error,
       e.created_at             AS last_job_error_at
  FROM (SELECT 1) AS one
  LEFT JOIN vibe_ft.worker_info() w ON true
  LEFT JOIN LATERAL (SELECT ev.job_id, ev.message, ev.created_at FROM vibe_ft.job_events ev
                      WHERE ev.kind = 'error' ORDER BY ev.id DESC LIMIT 1) e ON true;
COMMENT ON VIEW vibe_ft.status IS
    'The job runner at a glance: worker heartbeat and last error, jobs waiting on us, jobs at the provider, the last job error.';

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
                                      'schedule_job_runner', 'unschedule_job_runner')
    LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, role_name);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vibe_ft.grant_access(regrole) IS
    'Grant a trusted backend role (e.g. service_role) what it needs to use vibe_ft: data, functions, the views. Not running jobs, scheduling or grants.';

CREATE OR REPLACE FUNCTION vibe_ft.revoke_access(p_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    role_name name;
    f regprocedure;
BEGIN
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'p_role must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT rolname INTO role_name FROM pg_roles WHERE oid = p_role;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA vibe_ft FROM %I', role_name);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA vibe_ft FROM %I', role_name);
    EXECUTE format('REVOKE ALL ON public.finetuning_job_stats FROM %I', role_name);
    EXECUTE format('REVOKE ALL ON vibe_ft.status FROM %I', role_name);
    FOR f IN SELECT dep.objid::regprocedure
               FROM pg_depend dep
               JOIN pg_extension x ON x.oid = dep.refobjid AND x.extname = 'vibe_ft'
              WHERE dep.classid = 'pg_proc'::regclass AND dep.deptype = 'e'
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM %I', f, role_name);
    END LOOP;
    EXECUTE format('REVOKE ALL ON SCHEMA vibe_ft FROM %I', role_name);
END
$$;
COMMENT ON FUNCTION vibe_ft.revoke_access(regrole) IS 'Undo vibe_ft.grant_access for a role.';

-- Nothing new for PUBLIC (nor Supabase's default roles, where they exist).
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
        'ROUTINE vibe_ft.run_job_step(uuid)', 'ROUTINE vibe_ft.wake_worker()', 'ROUTINE vibe_ft.worker_loaded()', 'ROUTINE vibe_ft.worker_info()',
        'ROUTINE vibe_ft.provider_key_source(text)', 'ROUTINE public.cancel_finetuning_job(uuid)',
        'ROUTINE vibe_ft.schedule_job_runner(text)', 'ROUTINE vibe_ft.unschedule_job_runner()',
        'ROUTINE vibe_ft.jobs_wake_worker()', 'ROUTINE vibe_ft.run_jobs(integer)',
        'TABLE vibe_ft.status']
    LOOP
        FOREACH grantee IN ARRAY grantees LOOP
            EXECUTE format('REVOKE ALL ON %s FROM %s', target, grantee);
        END LOOP;
    END LOOP;
END
$$;

-- A running worker starts serving this database now, not at its next look.
SELECT vibe_ft.wake_worker();
