-- Runs last in CREATE EXTENSION, after the Rust functions exist: triggers, the
-- streaming export, the caller-facing view, access control.

---------------------------------------------------------------------------
-- Examples: validate messages, hash them, pick the split when not given.
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft.examples_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.messages IS NOT NULL THEN
        PERFORM vibe_ft.validate_messages(NEW.messages);
        -- jsonb text is canonical (key order, whitespace), so equal conversations hash equal
        NEW.content_hash := sha256(convert_to(NEW.messages::text, 'UTF8'));
    END IF;
    IF NEW.split IS NULL AND NEW.content_hash IS NOT NULL THEN
        NEW.split := vibe_ft.split_for_hash(
            NEW.content_hash,
            (SELECT d.validation_share FROM vibe_ft.datasets d WHERE d.id = NEW.dataset_id));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER examples_before_write
    BEFORE INSERT OR UPDATE OF messages, split, dataset_id ON vibe_ft.examples
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.examples_before_write();

---------------------------------------------------------------------------
-- Jobs: one state machine for every writer (functions, worker, plain UPDATE).
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft.jobs_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.status IS DISTINCT FROM OLD.status THEN
            PERFORM vibe_ft.check_job_transition(OLD.status, NEW.status);
        END IF;
        NEW.updated_at := clock_timestamp();
    END IF;
    IF NEW.status <> 'pending' AND NEW.started_at IS NULL THEN
        NEW.started_at := clock_timestamp();
    END IF;
    IF NEW.status IN ('succeeded', 'failed', 'cancelled') AND NEW.finished_at IS NULL THEN
        NEW.finished_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_before_write
    BEFORE INSERT OR UPDATE ON vibe_ft.jobs
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.jobs_before_write();

-- Status changes become events. (Creation is recorded by the functions that
-- create jobs, not here: restoring a dump re-inserts rows and must not add events.)
CREATE FUNCTION vibe_ft.jobs_after_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM vibe_ft.record_job_event(NEW.id, 'status', OLD.status, NEW.status, NULL, NULL);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_after_write
    AFTER UPDATE OF status ON vibe_ft.jobs
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.jobs_after_write();

---------------------------------------------------------------------------
-- Export. The line encoder is C-ABI Rust that prints the stored jsonb and
-- compacts it in one pass. The public function is plain SQL on purpose: Postgres
-- inlines it into the caller's query, so rows stream straight from the index
-- scan (also under PostgREST's LATERAL call and with LIMIT) instead of being
-- materialised the way any set-returning C function called in FROM would be.
-- The argument checks run before the first row: check_export_args is immutable
-- (constant arguments are checked while planning, so a NULL cannot be folded
-- into a silent WHERE false), check_dataset_exists is a one-time filter.
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft.openai_chat_line(p_messages jsonb) RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'vibe_ft_openai_chat_line';
COMMENT ON FUNCTION vibe_ft.openai_chat_line(jsonb) IS
    'The compact chat-format JSONL line {"messages":[...]} for a messages array.';

CREATE FUNCTION public.export_training_dataset_openai_jsonl(
    p_dataset_id uuid,
    p_split text DEFAULT 'train',
    p_min_quality_score numeric DEFAULT 0)
RETURNS TABLE (jsonl_line text)
LANGUAGE sql STABLE ROWS 1000
AS $$
    SELECT vibe_ft.openai_chat_line(e.messages)
      FROM vibe_ft.examples AS e
     WHERE vibe_ft.check_export_args(p_dataset_id, p_split, p_min_quality_score)
       AND vibe_ft.check_dataset_exists(p_dataset_id)
       AND e.dataset_id = p_dataset_id
       AND e.split = p_split
       AND e.quality_score >= p_min_quality_score
     ORDER BY e.id
$$;
COMMENT ON FUNCTION public.export_training_dataset_openai_jsonl(uuid, text, numeric) IS
    'One compact OpenAI chat JSONL line per example of the dataset and split with quality >= threshold, oldest first.';

---------------------------------------------------------------------------
-- The decision runs two statements whose plans each backend keeps. Left to
-- itself the plan cache keeps re-planning them (custom plans look cheaper), and
-- planning "id > $2" near the end of the id range probes the index for its
-- actual maximum: work that grows with the table. The generic plans are exact
-- index range scans; pin them for the duration of these calls only.
---------------------------------------------------------------------------
ALTER FUNCTION public.should_create_finetuning_job(uuid, integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION vibe_ft.run_monthly_check() SET plan_cache_mode = force_generic_plan;

---------------------------------------------------------------------------
-- The caller-facing view (supabase.from('finetuning_job_stats')).
---------------------------------------------------------------------------
CREATE VIEW public.finetuning_job_stats WITH (security_invoker = true) AS
SELECT j.id                     AS job_id,
       j.dataset_id,
       d.name                   AS dataset_name,
       j.status,
       j.provider,
       j.base_model,
       j.method,
       j.fine_tuned_model,
       j.provider_job_id        AS openai_job_id,
       j.train_examples,
       j.validation_examples,
       j.avg_train_quality,
       j.avg_validation_quality,
       j.trained_tokens,
       j.suffix,
       j.hyperparameters,
       j.created_at             AS job_created_at,
       j.started_at,
       j.finished_at,
       round(extract(epoch FROM j.finished_at - j.started_at))::integer AS training_duration_seconds,
       j.error_message,
       j.updated_at
  FROM vibe_ft.jobs j
  JOIN vibe_ft.datasets d ON d.id = j.dataset_id;
COMMENT ON VIEW public.finetuning_job_stats IS 'One row per fine-tuning job, for dashboards and the seed''s monitoring calls.';

---------------------------------------------------------------------------
-- The job runner (0.2.0). A committed change to a job wakes the background
-- worker at once; without the worker, CALL vibe_ft.run_jobs() (from pg_cron:
-- vibe_ft.schedule_job_runner()) runs the same steps.
---------------------------------------------------------------------------
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

---------------------------------------------------------------------------
-- Access control: nothing for PUBLIC (nor Supabase's anon / authenticated /
-- service_role default grants); one call grants a trusted backend role.
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft.grant_access(p_role regrole) RETURNS void
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

CREATE FUNCTION vibe_ft.revoke_access(p_role regrole) RETURNS void
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

-- Revoke every default grant on every member object: PUBLIC's EXECUTE on
-- functions, and where Supabase's roles exist, their default privileges.
DO $$
DECLARE
    obj record;
    grantee text;
    grantees text[] := ARRAY['PUBLIC'];
BEGIN
    SELECT grantees || array_agg(quote_ident(rolname)) INTO grantees
      FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role');
    grantees := coalesce(grantees, ARRAY['PUBLIC']);
    FOR obj IN
        SELECT CASE dep.classid
                 WHEN 'pg_proc'::regclass THEN 'ROUTINE ' || dep.objid::regprocedure::text
                 WHEN 'pg_class'::regclass THEN
                    CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || dep.objid::regclass::text
               END AS target
          FROM pg_depend dep
          JOIN pg_extension x ON x.oid = dep.refobjid AND x.extname = 'vibe_ft'
          LEFT JOIN pg_class c ON dep.classid = 'pg_class'::regclass AND c.oid = dep.objid
         WHERE dep.deptype = 'e' AND dep.classid IN ('pg_proc'::regclass, 'pg_class'::regclass)
    LOOP
        FOREACH grantee IN ARRAY grantees LOOP
            EXECUTE format('REVOKE ALL ON %s FROM %s', obj.target, grantee);
        END LOOP;
    END LOOP;
    FOREACH grantee IN ARRAY grantees LOOP
        EXECUTE format('REVOKE ALL ON SCHEMA vibe_ft FROM %s', grantee);
    END LOOP;
END
$$;

-- A running worker starts serving this database now, not at its next look.
SELECT vibe_ft.wake_worker();
