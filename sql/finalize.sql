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
-- An inlined function cannot pin its search_path (a SET clause stops the
-- inlining), and its body is parsed with the caller's: so every name and every
-- operator in it is schema-qualified, and nothing resolves through a schema
-- another role can write.
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft.openai_chat_line(p_messages jsonb) RETURNS text
-- Runs no SQL, so nothing resolves through search_path: not pinned (a SET
-- clause costs ~2 us a call, and this runs once per exported line).
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
       AND e.dataset_id OPERATOR(pg_catalog.=) p_dataset_id
       AND e.split OPERATOR(pg_catalog.=) p_split
       AND e.quality_score OPERATOR(pg_catalog.>=) p_min_quality_score
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
       j.updated_at,
       j.training_tokens,
       j.estimated_cost_usd,
       j.erasure_requested_at
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

-- The due jobs of this installation (restored copies of another's are left
-- alone until vibe_ft.adopt_jobs), oldest wait first, not counting those
-- another runner holds; NULL when there are none or p_deadline has passed.
CREATE FUNCTION vibe_ft.due_jobs(p_deadline timestamptz, p_busy uuid[]) RETURNS uuid[]
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(j.id ORDER BY j.next_attempt_at NULLS FIRST, j.created_at)
      FROM vibe_ft.jobs j
     WHERE p_deadline > clock_timestamp()
       AND j.status NOT IN ('succeeded', 'failed', 'cancelled')
       AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= clock_timestamp())
       AND j.installation_id = vibe_ft.installation_id()
       AND j.id <> ALL (p_busy)
$$;

-- One step of one job for run_jobs. A step that raises (work_dir not writable,
-- a full disk, Vault refusing) is rolled back, recorded on that job, which
-- backs off as in the worker, and the other jobs go on. Returns p_busy, plus
-- the job if another runner holds it (or its step failed); NULL once
-- p_deadline has passed.
CREATE FUNCTION vibe_ft.run_due_job(p_job_id uuid, p_deadline timestamptz, p_busy uuid[]) RETURNS uuid[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result text;
BEGIN
    BEGIN
        result := vibe_ft.run_job_step(p_job_id);
    EXCEPTION WHEN OTHERS THEN
        PERFORM vibe_ft.record_step_error(p_job_id, SQLSTATE, SQLERRM);
        result := 'busy';
    END;
    IF clock_timestamp() >= p_deadline THEN
        RETURN NULL;
    END IF;
    RETURN CASE WHEN result = 'busy' THEN p_busy || p_job_id ELSE p_busy END;
END
$$;

-- A procedure cannot pin its search_path (one with a SET clause cannot COMMIT),
-- so this body uses no operator and no unqualified name: it only calls
-- vibe_ft's own functions, which do.
CREATE PROCEDURE vibe_ft.run_jobs(p_max_seconds integer DEFAULT 50)
-- No SET search_path (a procedure with one cannot COMMIT): nothing below resolves a name.
LANGUAGE plpgsql AS $$
DECLARE
    deadline pg_catalog.timestamptz;
    due pg_catalog.uuid[];
    busy pg_catalog.uuid[] := '{}';
    job pg_catalog.uuid;
BEGIN
    -- NULL when vibe_ft.enabled is off (loads the library, so the setting exists)
    deadline := vibe_ft.run_jobs_deadline(p_max_seconds);
    LOOP
        due := vibe_ft.due_jobs(deadline, busy);
        EXIT WHEN due IS NULL;
        FOREACH job IN ARRAY due LOOP
            busy := vibe_ft.run_due_job(job, deadline, busy);
            COMMIT;
            EXIT WHEN busy IS NULL;
        END LOOP;
        EXIT WHEN busy IS NULL;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE vibe_ft.run_jobs(integer) IS
    'Advance every due job (export, upload, create, poll) for up to p_max_seconds, committing after each step. For hosts without the background worker.';

---------------------------------------------------------------------------
-- 0.5.0: which models can still be called, and where.
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

CREATE VIEW vibe_ft.status AS
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

-- A job remembers the installation that created it (vibe_ft.installation, a
-- row that CREATE EXTENSION makes and pg_dump does not copy). A restored copy
-- of a database (staging, a clone) must not poll, cancel or clean up after the
-- original's jobs at the provider: they are left alone until this is called.
CREATE FUNCTION vibe_ft.adopt_jobs(p_job_id uuid DEFAULT NULL) RETURNS integer
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
COMMENT ON FUNCTION vibe_ft.adopt_jobs(uuid) IS
    'Let this installation act at the provider for jobs restored from another one (a dump restored elsewhere): poll, cancel, clean up. All such jobs when p_job_id is NULL.';

---------------------------------------------------------------------------
-- 0.3.0: feedback in, examples and preference pairs out, checked and priced.
---------------------------------------------------------------------------

-- The 0..10 quality score of a rating: thumbs up / down score p_up / p_down,
-- n stars score p_stars_scores[n]; both given: their mean; NULL when there is
-- no rating. Exact, in numeric: a score compares with a dataset's threshold as
-- it is stored. An SQL expression so that Postgres inlines it into each query
-- of generate_examples (a function call per row per statement cost 1.2x the
-- whole run): so no SET clause, and every operator qualified. A rating it
-- cannot score goes to vibe_ft.rating_score, which says what is wrong.
CREATE FUNCTION vibe_ft.feedback_score(
    p_thumbs_up boolean,
    p_stars integer,
    p_up numeric DEFAULT 8,
    p_down numeric DEFAULT 2,
    p_stars_scores numeric[] DEFAULT '{0,2.5,5,7.5,10}')
RETURNS numeric
-- No SET search_path (it would stop the inlining): every name below is qualified.
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_thumbs_up IS NULL AND p_stars IS NULL THEN NULL::pg_catalog.numeric
        WHEN p_up IS NULL OR p_down IS NULL OR p_stars_scores IS NULL
             OR pg_catalog.cardinality(p_stars_scores) OPERATOR(pg_catalog.<>) 5
             OR pg_catalog.array_position(p_stars_scores, NULL::pg_catalog.numeric) IS NOT NULL
             OR p_stars OPERATOR(pg_catalog.<) 1 OR p_stars OPERATOR(pg_catalog.>) 5
            THEN vibe_ft.rating_score(p_thumbs_up, p_stars, p_up, p_down, p_stars_scores)
        WHEN p_stars IS NULL THEN CASE WHEN p_thumbs_up THEN p_up ELSE p_down END
        WHEN p_thumbs_up IS NULL THEN p_stars_scores[p_stars]
        ELSE ((CASE WHEN p_thumbs_up THEN p_up ELSE p_down END) OPERATOR(pg_catalog.+) p_stars_scores[p_stars])
             OPERATOR(pg_catalog.*) 0.5
    END
$$;
COMMENT ON FUNCTION vibe_ft.feedback_score(boolean, integer, numeric, numeric, numeric[]) IS
    'The 0..10 quality score of a rating (thumbs and/or stars) with the dataset''s scores; the mean when both are given.';

-- vibe_ft.feedback holds one row per answer the app's backend served: what it
-- said (recorded by the backend, never by the user), and the user's rating of
-- it once there is one.
--
-- Every writer (record_answer, submit_feedback, an import, a plain UPDATE) takes
-- this lock in shared mode before it takes a change number; generate_examples
-- takes it exclusively for an instant before it reads the newest change number,
-- so no change below that number can still commit later and be skipped.
CREATE FUNCTION vibe_ft.feedback_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1986426113, 1);
    IF TG_OP = 'INSERT' THEN
        PERFORM vibe_ft.check_feedback(NEW.messages, NEW.answer);
        NEW.prefix_hash := sha256(convert_to(NEW.messages::text, 'UTF8'));
        -- A restore brings its own numbers; everyone else gets the next one,
        -- taken here, under the lock (a column default would be taken before
        -- it, and could commit below a number generate_examples already read).
        NEW.change_seq := coalesce(NEW.change_seq, nextval('vibe_ft.feedback_change_seq'));
    ELSE
        -- One answer id has one content: a re-rating changes the rating only.
        IF (NEW.user_id, NEW.answer_id, NEW.messages, NEW.answer, NEW.model, NEW.provider, NEW.persona)
           IS DISTINCT FROM (OLD.user_id, OLD.answer_id, OLD.messages, OLD.answer, OLD.model, OLD.provider, OLD.persona) THEN
            RAISE EXCEPTION 'answer % of user % was recorded with other content; what an answer said never changes',
                            OLD.answer_id, OLD.user_id
                USING ERRCODE = '55000',
                      HINT = 'Only the rating (thumbs_up, stars, rated_at) of a recorded answer can change.';
        END IF;
        IF (NEW.thumbs_up, NEW.stars) IS DISTINCT FROM (OLD.thumbs_up, OLD.stars) THEN
            NEW.change_seq := nextval('vibe_ft.feedback_change_seq');
        END IF;
    END IF;
    NEW.rated_at := CASE WHEN NEW.thumbs_up IS NULL AND NEW.stars IS NULL THEN NULL
                         ELSE coalesce(NEW.rated_at, now()) END;
    RETURN NEW;
END
$$;
CREATE TRIGGER feedback_before_write
    BEFORE INSERT OR UPDATE ON vibe_ft.feedback
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.feedback_before_write();

-- The signed-in user of a PostgREST request (the JWT's subject), or NULL.
CREATE FUNCTION vibe_ft.jwt_subject() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    subject text := nullif(current_setting('request.jwt.claim.sub', true), '');
BEGIN
    IF subject IS NULL THEN
        BEGIN
            subject := nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '');
        EXCEPTION WHEN OTHERS THEN
            subject := NULL;  -- claims that are not a JSON object carry no subject
        END;
    END IF;
    RETURN subject;
END
$$;

-- Whether the role calling (the session's role: PostgREST's SET ROLE, or the
-- login) is trusted with training data: a superuser or a role that
-- vibe_ft.grant_access let write it. Meaningful inside SECURITY DEFINER
-- functions too, where current_user is the owner.
CREATE FUNCTION vibe_ft.caller_is_trusted() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT r.rolsuper OR has_table_privilege(r.oid, 'vibe_ft.feedback', 'INSERT')
                       FROM pg_roles r
                      WHERE r.rolname = CASE current_setting('role') WHEN 'none' THEN session_user::text
                                                                      ELSE current_setting('role') END), false)
$$;

-- What the app's backend calls when it has served an answer: who it was for,
-- the conversation before it, what it said, and the model and provider that
-- produced it (the model is what a later choice of which model to serve is
-- measured on). Only trusted roles (vibe_ft.grant_access) may call it; users
-- then rate the answer by its id with submit_feedback. Recording the same
-- answer again is harmless; recording other content under its id is refused.
CREATE FUNCTION public.record_answer(
    p_answer_id text,
    p_user_id text,
    p_messages jsonb,
    p_answer text,
    p_model text,
    p_provider text DEFAULT NULL,
    p_persona text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fid bigint;
    same boolean;
BEGIN
    IF p_answer_id IS NULL THEN
        RAISE EXCEPTION 'p_answer_id must not be NULL' USING ERRCODE = '22004';
    ELSIF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be NULL' USING ERRCODE = '22004';
    ELSIF p_messages IS NULL THEN
        RAISE EXCEPTION 'p_messages must not be NULL' USING ERRCODE = '22004';
    ELSIF p_answer IS NULL THEN
        RAISE EXCEPTION 'p_answer must not be NULL' USING ERRCODE = '22004';
    ELSIF p_model IS NULL THEN
        RAISE EXCEPTION 'p_model must not be NULL (the model that produced the answer)' USING ERRCODE = '22004';
    ELSIF char_length(p_user_id) NOT BETWEEN 1 AND 256 OR char_length(p_answer_id) NOT BETWEEN 1 AND 256
          OR char_length(p_model) NOT BETWEEN 1 AND 256 OR char_length(p_persona) > 256
          OR char_length(p_provider) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'p_user_id, p_answer_id, p_model and p_persona must be 1 to 256 characters, p_provider 1 to 64'
            USING ERRCODE = '22023';
    ELSIF octet_length(p_messages::text) + octet_length(p_answer) > 4 * 1024 * 1024 THEN
        RAISE EXCEPTION 'p_messages and p_answer together exceed 4 MB' USING ERRCODE = '54000';
    END IF;
    IF EXISTS (SELECT 1 FROM vibe_ft.feedback f WHERE f.answer_id = p_answer_id AND f.user_id <> p_user_id) THEN
        RAISE EXCEPTION 'answer id % is already recorded for another user', p_answer_id USING ERRCODE = '23505';
    END IF;
    INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, model, provider, persona)
    VALUES (p_user_id, p_answer_id, p_messages, p_answer, p_model, p_provider, p_persona)
    ON CONFLICT (user_id, answer_id) DO NOTHING
    RETURNING id INTO fid;
    IF fid IS NULL THEN
        SELECT f.id, (f.messages, f.answer, f.model, f.provider, f.persona)
                     IS NOT DISTINCT FROM (p_messages, p_answer, p_model, p_provider, p_persona)
          INTO fid, same
          FROM vibe_ft.feedback f WHERE f.user_id = p_user_id AND f.answer_id = p_answer_id;
        IF NOT same THEN
            RAISE EXCEPTION 'answer % of user % is already recorded with other content', p_answer_id, p_user_id
                USING ERRCODE = '23505', HINT = 'What an answer said never changes; give a new answer a new id.';
        END IF;
    END IF;
    RETURN fid;
END
$$;
COMMENT ON FUNCTION public.record_answer(text, text, jsonb, text, text, text, text) IS
    'For the trusted backend that served an answer: record it (user, conversation before it, answer, model, provider, persona) so its user can rate it. Returns its feedback id.';

-- The one call an app makes per rated answer. Safe to expose to signed-in
-- users (vibe_ft.grant_feedback('authenticated')): a user rates an answer the
-- backend recorded for them, by its id, and nothing else. Under PostgREST the
-- user is the JWT's subject; trusted roles without a JWT may name the user
-- (p_user_id) and the time of the rating (p_rated_at, for imports).
CREATE FUNCTION public.submit_feedback(
    p_answer_id text,
    p_thumbs_up boolean DEFAULT NULL,
    p_stars integer DEFAULT NULL,
    p_user_id text DEFAULT NULL,
    p_rated_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    subject text := vibe_ft.jwt_subject();
    trusted boolean := vibe_ft.caller_is_trusted();
    at timestamptz := coalesce(p_rated_at, now());
    uid text;
    fid bigint;
    n bigint;
BEGIN
    IF p_answer_id IS NULL THEN
        RAISE EXCEPTION 'p_answer_id must not be NULL' USING ERRCODE = '22004';
    ELSIF char_length(p_answer_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'p_answer_id must be 1 to 256 characters' USING ERRCODE = '22023';
    ELSIF p_thumbs_up IS NULL AND p_stars IS NULL THEN
        RAISE EXCEPTION 'a rating needs p_thumbs_up or p_stars (or both)' USING ERRCODE = '22023';
    ELSIF p_stars NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'p_stars must be 1 to 5, got %', p_stars USING ERRCODE = '22003';
    ELSIF subject IS NULL AND NOT trusted THEN
        RAISE EXCEPTION 'submit_feedback needs a signed-in user (the sub of request.jwt.claims)'
            USING ERRCODE = '42501';
    ELSIF subject IS NOT NULL AND p_user_id IS DISTINCT FROM subject AND p_user_id IS NOT NULL THEN
        RAISE EXCEPTION 'p_user_id must be the signed-in user or left out' USING ERRCODE = '42501';
    ELSIF p_rated_at IS NOT NULL AND NOT trusted THEN
        RAISE EXCEPTION 'p_rated_at is for trusted callers (imports); a user''s rating is dated now'
            USING ERRCODE = '42501';
    ELSIF at > now() + interval '5 minutes' THEN
        RAISE EXCEPTION 'p_rated_at is in the future' USING ERRCODE = '22023';
    END IF;
    uid := coalesce(subject, p_user_id);
    IF uid IS NOT NULL THEN
        SELECT f.id INTO fid FROM vibe_ft.feedback f WHERE f.user_id = uid AND f.answer_id = p_answer_id;
        IF fid IS NULL AND EXISTS (SELECT 1 FROM vibe_ft.feedback f WHERE f.answer_id = p_answer_id) THEN
            RAISE EXCEPTION 'answer % was not served to this user', p_answer_id USING ERRCODE = '42501';
        END IF;
    ELSE
        SELECT count(*), min(f.id) INTO n, fid FROM vibe_ft.feedback f WHERE f.answer_id = p_answer_id;
        IF n > 1 THEN
            RAISE EXCEPTION 'answer % is recorded for % users: pass p_user_id', p_answer_id, n USING ERRCODE = '22023';
        END IF;
    END IF;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'answer % was never recorded', p_answer_id
            USING ERRCODE = '42704',
                  HINT = 'The backend that serves an answer records it with record_answer(...) before its user can rate it.';
    END IF;
    -- A re-rating replaces the earlier one; a stale one arriving late does not.
    UPDATE vibe_ft.feedback f SET thumbs_up = p_thumbs_up, stars = p_stars, rated_at = at
     WHERE f.id = fid AND (f.rated_at IS NULL OR f.rated_at <= at);
    RETURN fid;
END
$$;
COMMENT ON FUNCTION public.submit_feedback(text, boolean, integer, text, timestamptz) IS
    'Rate an answer the backend recorded (thumbs and/or 1-5 stars), by its id; a re-rating replaces the earlier one. Returns the feedback id.';

-- 0.3.0's form, which took the conversation and the answer from the caller.
-- Signed-in users never send what becomes training data: for them it is
-- refused with what to call instead. Trusted roles keep using it: it records
-- the answer (the same content again, or refused) and rates it.
CREATE FUNCTION public.submit_feedback(
    p_answer_id text,
    p_messages jsonb,
    p_answer text,
    p_thumbs_up boolean DEFAULT NULL,
    p_stars integer DEFAULT NULL,
    p_model text DEFAULT NULL,
    p_persona text DEFAULT NULL,
    p_user_id text DEFAULT NULL,
    p_rated_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    uid text;
BEGIN
    IF NOT vibe_ft.caller_is_trusted() THEN
        RAISE EXCEPTION 'users rate answers by id, they do not send them: call submit_feedback(p_answer_id, p_thumbs_up, p_stars)'
            USING ERRCODE = '42501',
                  HINT = 'The backend that served the answer records it first: record_answer(p_answer_id, p_user_id, p_messages, p_answer, p_model, p_provider, p_persona).';
    END IF;
    uid := coalesce(vibe_ft.jwt_subject(), p_user_id);
    PERFORM public.record_answer(p_answer_id, uid, p_messages, p_answer, p_model, NULL, p_persona);
    RETURN public.submit_feedback(p_answer_id, p_thumbs_up, p_stars, uid, p_rated_at);
END
$$;
COMMENT ON FUNCTION public.submit_feedback(text, jsonb, text, boolean, integer, text, text, text, timestamptz) IS
    '0.3.0''s form, for trusted roles only: record the answer (record_answer) and rate it (submit_feedback by id).';

CREATE FUNCTION vibe_ft.grant_feedback(p_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'p_role must not be NULL' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.submit_feedback(text, boolean, integer, text, timestamptz) TO %s', p_role);
    -- 0.3.0's form too, so that an old client hears what to call instead.
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.submit_feedback(text, jsonb, text, boolean, integer, text, text, text, timestamptz) TO %s', p_role);
END
$$;
COMMENT ON FUNCTION vibe_ft.grant_feedback(regrole) IS
    'Let a role (e.g. Supabase''s authenticated) rate answers recorded for its users with public.submit_feedback, and nothing else of vibe_ft.';

-- The newest price in effect for a provider's base model (of a fine-tuned
-- model ft:<base>:..., its base); NULL when vibe_ft.prices has none.
CREATE FUNCTION vibe_ft.training_price(p_provider text, p_base_model text) RETURNS numeric
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.training_per_million FROM vibe_ft.prices p
     WHERE p.provider = p_provider
       AND p.base_model = CASE WHEN p_base_model LIKE 'ft:%' THEN split_part(p_base_model, ':', 2) ELSE p_base_model END
       AND p.valid_from <= current_date
     ORDER BY p.valid_from DESC LIMIT 1
$$;

-- Shipped prices are history: change a price by adding a row.
CREATE FUNCTION vibe_ft.prices_keep_shipped() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.source = 'vibe_ft' THEN
        RAISE EXCEPTION 'prices shipped with vibe_ft are kept as history'
            USING ERRCODE = '55000',
                  HINT = 'Insert a row with a newer valid_from (e.g. current_date); the newest one in effect is used.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER prices_keep_shipped
    BEFORE UPDATE OR DELETE ON vibe_ft.prices
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.prices_keep_shipped();

CREATE FUNCTION vibe_ft.estimate_cost(
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

-- Preference (DPO) JSONL, as the runner uploads it for jobs with method dpo.
CREATE FUNCTION vibe_ft.export_preference_jsonl(
    p_dataset_id uuid,
    p_split text DEFAULT 'train',
    p_min_quality_score numeric DEFAULT 0)
RETURNS TABLE (jsonl_line text)
-- No SET search_path (it would stop the inlining): every name below is qualified.
LANGUAGE sql STABLE ROWS 1000
AS $$
    SELECT vibe_ft.preference_line(e.input, e.preferred, e.non_preferred)
      FROM vibe_ft.preference_examples AS e
     WHERE vibe_ft.check_export_args(p_dataset_id, p_split, p_min_quality_score)
       AND vibe_ft.check_dataset_exists(p_dataset_id)
       AND e.dataset_id OPERATOR(pg_catalog.=) p_dataset_id
       AND e.split OPERATOR(pg_catalog.=) p_split
       AND e.quality_score OPERATOR(pg_catalog.>=) p_min_quality_score
     ORDER BY e.id
$$;
COMMENT ON FUNCTION vibe_ft.export_preference_jsonl(uuid, text, numeric) IS
    'One compact preference (DPO) JSONL line per pair of the dataset and split with quality >= threshold, oldest first.';

-- A user's own redaction, (text) RETURNS text, applied to every message text
-- after the built-in patterns. Stored as text (a reg* column would block
-- pg_upgrade): the schema-qualified signature, resolved here.
CREATE FUNCTION vibe_ft.redact_function_name(p_function text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fn regprocedure;
    f record;
BEGIN
    BEGIN
        fn := to_regprocedure(p_function);
    EXCEPTION WHEN OTHERS THEN
        fn := NULL;
    END;
    IF fn IS NULL THEN
        RAISE EXCEPTION 'redact_function % does not exist', p_function
            USING ERRCODE = '42883', HINT = 'Give its schema-qualified signature, e.g. ''public.my_redact(text)''.';
    END IF;
    SELECT p.prorettype, p.proargtypes, p.pronargs INTO f FROM pg_proc p WHERE p.oid = fn;
    IF f.pronargs <> 1 OR f.proargtypes[0] <> 'text'::regtype OR f.prorettype <> 'text'::regtype THEN
        RAISE EXCEPTION 'redact_function % must take text and return text', p_function USING ERRCODE = '42804';
    END IF;
    RETURN fn::text;  -- schema-qualified: this search_path holds only pg_catalog
END
$$;

CREATE FUNCTION vibe_ft.datasets_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.redact_function IS NOT NULL THEN
        NEW.redact_function := vibe_ft.redact_function_name(NEW.redact_function);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER datasets_before_write
    BEFORE INSERT OR UPDATE OF redact_function ON vibe_ft.datasets
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.datasets_before_write();

-- The function to call for a dataset's redact_function, as a schema-qualified
-- name. Only a function the caller owns or a superuser owns is called: a
-- scheduled superuser job must not run a lesser role's code.
CREATE FUNCTION vibe_ft.check_redact_function(p_function text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fn regprocedure := vibe_ft.redact_function_name(p_function)::regprocedure;
    f record;
BEGIN
    SELECT r.rolsuper, p.proowner INTO f FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = fn;
    IF NOT f.rolsuper AND f.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'redact_function % must be owned by % or a superuser', p_function, current_user
            USING ERRCODE = '42501';
    END IF;
    RETURN fn::regproc::text;
END
$$;

CREATE FUNCTION vibe_ft.generate_examples(p_dataset_id uuid DEFAULT NULL)
RETURNS TABLE (dataset_id uuid, dataset_name text, feedback_read bigint, examples_added bigint,
               examples_updated bigint, examples_removed bigint, duplicates bigint,
               pairs_added bigint, pairs_updated bigint, pairs_removed bigint, redactions bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d vibe_ft.datasets;
    hi bigint;
    fn text;
    redact_text text;
    redact_msgs text;
    qualifying bigint;
    n bigint;
    m bigint;
    k bigint;
    chunk_updated bigint;
    lo bigint;
    up_to bigint;
    -- Changes per chunk: each chunk's statements end (and Postgres' queue of
    -- foreign-key checks with them) before the next, so memory stays flat.
    chunk constant bigint := 100000;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'vibe_ft.generate_examples needs READ COMMITTED (it reads feedback committed while it waits)'
            USING ERRCODE = '25000';
    END IF;
    IF p_dataset_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vibe_ft.datasets x WHERE x.id = p_dataset_id) THEN
        RAISE EXCEPTION 'dataset % does not exist (p_dataset_id)', p_dataset_id USING ERRCODE = '42704';
    END IF;
    -- An erasure (forget_user) in flight finishes first, and none starts until
    -- this run ends: nothing it deletes can come back as an example.
    PERFORM pg_advisory_xact_lock_shared(1986426113, 2);
    -- Wait for feedback writers in flight, then read the newest change number:
    -- everything up to it is committed and visible to the statements below.
    -- The lock is a transaction lock taken in a block that then rolls back, so
    -- it is held for an instant only and no cancel or error can leave it
    -- behind (a session lock would outlive them in a pooled connection and
    -- block every feedback writer).
    BEGIN
        PERFORM pg_advisory_xact_lock(1986426113, 1);
        SELECT coalesce(max(f.change_seq), 0) INTO hi FROM vibe_ft.feedback f;
        RAISE EXCEPTION USING ERRCODE = 'VF001';  -- ends the block, and the lock with it
    EXCEPTION WHEN SQLSTATE 'VF001' THEN
        NULL;
    END;

    FOR d IN SELECT * FROM vibe_ft.datasets x
              WHERE (p_dataset_id IS NULL AND x.from_feedback) OR x.id = p_dataset_id
              ORDER BY x.name
    LOOP
        -- One run per dataset at a time; a second concurrent run waits, then finds nothing new.
        SELECT * INTO d FROM vibe_ft.datasets x WHERE x.id = d.id FOR NO KEY UPDATE;
        dataset_id := d.id;
        dataset_name := d.name;
        feedback_read := 0; examples_added := 0; examples_updated := 0; examples_removed := 0;
        duplicates := 0; pairs_added := 0; pairs_updated := 0; pairs_removed := 0; redactions := 0;
        IF hi <= d.feedback_watermark THEN
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF d.redact AND d.redact_function IS NOT NULL THEN
            fn := vibe_ft.check_redact_function(d.redact_function);
            redact_text := fn || '(%s)';
            redact_msgs := format(
                '(SELECT jsonb_agg(CASE WHEN jsonb_typeof(el->''content'') = ''string''
                                        THEN jsonb_set(el, ''{content}'', to_jsonb(%s(el->>''content''))) ELSE el END
                                   ORDER BY o)
                    FROM jsonb_array_elements(%%s) WITH ORDINALITY AS t(el, o))', fn);
        ELSE
            redact_text := '%s';
            redact_msgs := '%s';
        END IF;

        lo := d.feedback_watermark;
        WHILE lo < hi LOOP
            up_to := least(lo + chunk, hi);
            SELECT count(*),
                   count(*) FILTER (WHERE vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                      d.score_thumbs_down, d.score_stars) >= d.min_quality_score)
              INTO n, qualifying
              FROM vibe_ft.feedback f
             WHERE f.change_seq > lo AND f.change_seq <= up_to
               AND (f.thumbs_up IS NOT NULL OR f.stars IS NOT NULL)
               AND (d.feedback_persona IS NULL OR f.persona = d.feedback_persona);
            feedback_read := feedback_read + n;

            -- Examples of re-rated answers whose score changed and still qualifies.
            WITH up AS (
                UPDATE vibe_ft.examples e SET quality_score = s.score
                  FROM (SELECT f.id::text AS sid,
                               vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                                      d.score_thumbs_down, d.score_stars) AS score
                          FROM vibe_ft.feedback f
                         WHERE f.change_seq > lo AND f.change_seq <= up_to
                           AND (d.feedback_persona IS NULL OR f.persona = d.feedback_persona)) s
                 WHERE e.source = 'feedback' AND e.source_id = s.sid AND e.dataset_id = d.id
                   AND s.score >= d.min_quality_score AND e.quality_score <> s.score
                RETURNING 1)
            SELECT count(*) INTO chunk_updated FROM up;
            examples_updated := examples_updated + chunk_updated;

            -- New examples of rated answers that qualify, streamed from the
            -- changed feedback; a conversation already in the dataset is skipped.
            EXECUTE format($q$
                WITH ins AS (
                    INSERT INTO vibe_ft.examples AS e (dataset_id, messages, quality_score, source, source_id, metadata)
                    SELECT $9, %s, b.score, 'feedback', b.id::text,
                           jsonb_build_object('model', b.model, 'provider', b.provider, 'persona', b.persona,
                                              'redactions', b.x->'redactions')
                      FROM (SELECT f.id, f.model, f.provider, f.persona, s.score,
                                   vibe_ft.feedback_example(f.messages, f.answer, $6) AS x
                              FROM vibe_ft.feedback f
                             CROSS JOIN LATERAL (SELECT vibe_ft.feedback_score(f.thumbs_up, f.stars, $3, $4, $5) AS score) s
                             WHERE f.change_seq > $1 AND f.change_seq <= $2
                               AND ($7::text IS NULL OR f.persona = $7)
                               AND s.score >= $8
                            -- OFFSET 0 keeps the subquery: flattened, feedback_example
                            -- (redaction) would run once per use of b.x, twice a row.
                            OFFSET 0) b
                    ON CONFLICT (dataset_id, content_hash) DO NOTHING
                    RETURNING (e.metadata -> 'redactions') AS r
                )
                SELECT count(*), coalesce(sum((r->>'emails')::int + (r->>'cards')::int + (r->>'phones')::int
                                              + (r->>'ibans')::int + (r->>'national_ids')::int + (r->>'ips')::int
                                              + (r->>'addresses')::int + (r->>'names')::int), 0)
                  FROM ins
                $q$, format(redact_msgs, 'b.x->''messages'''))
              INTO n, m
              USING lo, up_to, d.score_thumbs_up, d.score_thumbs_down,
                    d.score_stars, d.redact, d.feedback_persona, d.min_quality_score, d.id;
            examples_added := examples_added + n;
            redactions := redactions + m;
            duplicates := duplicates + qualifying - n - chunk_updated;

            -- Examples whose rating no longer qualifies (a re-rating down).
            WITH gone AS (
                DELETE FROM vibe_ft.examples e
                 USING vibe_ft.feedback f
                 WHERE e.source = 'feedback' AND e.source_id = f.id::text AND e.dataset_id = d.id
                   AND f.change_seq > lo AND f.change_seq <= up_to
                   AND ((d.feedback_persona IS NOT NULL AND f.persona IS DISTINCT FROM d.feedback_persona)
                        OR coalesce(vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up,
                                        d.score_thumbs_down, d.score_stars) < d.min_quality_score, true))
                RETURNING 1)
            SELECT count(*) INTO n FROM gone;
            examples_removed := examples_removed + n;

            -- Preference pairs of every conversation prefix that changed: its best
            -- liked answer against its worst disliked one.
            EXECUTE format($q$
                WITH prefixes AS (
                    SELECT DISTINCT f.prefix_hash FROM vibe_ft.feedback f
                     WHERE f.change_seq > $1 AND f.change_seq <= $2
                ), rated AS (
                    SELECT f.id, f.prefix_hash, vibe_ft.feedback_score(f.thumbs_up, f.stars, $3, $4, $5) AS score
                      FROM vibe_ft.feedback f JOIN prefixes p ON p.prefix_hash = f.prefix_hash
                     WHERE ($7::text IS NULL OR f.persona = $7)
                ), best AS (
                    SELECT DISTINCT ON (prefix_hash) * FROM rated WHERE score >= $8
                     ORDER BY prefix_hash, score DESC, id
                ), worst AS (
                    SELECT DISTINCT ON (prefix_hash) * FROM rated WHERE score <= $10
                     ORDER BY prefix_hash, score ASC, id
                ), pairs AS (
                    SELECT b.prefix_hash, fb.messages, fb.answer AS preferred, fw.answer AS non_preferred,
                           b.id AS preferred_id, w.id AS non_preferred_id, b.score
                      FROM best b JOIN worst w ON w.prefix_hash = b.prefix_hash
                      JOIN vibe_ft.feedback fb ON fb.id = b.id
                      JOIN vibe_ft.feedback fw ON fw.id = w.id
                     WHERE fb.answer <> fw.answer
                ), gone AS (
                    DELETE FROM vibe_ft.preference_examples pe
                     USING prefixes p
                     WHERE pe.prefix_hash = p.prefix_hash AND pe.dataset_id = $9
                       AND NOT EXISTS (SELECT 1 FROM pairs x WHERE x.prefix_hash = pe.prefix_hash)
                    RETURNING 1
                ), up AS (
                    INSERT INTO vibe_ft.preference_examples AS pe
                           (dataset_id, prefix_hash, input, preferred, non_preferred,
                            preferred_feedback_id, non_preferred_feedback_id, quality_score, split)
                    SELECT $9, x.prefix_hash, %s, %s, %s, x.preferred_id, x.non_preferred_id, x.score,
                           vibe_ft.split_for_hash(x.prefix_hash, $11)
                      FROM pairs x
                    ON CONFLICT (prefix_hash, dataset_id) DO UPDATE
                       SET input = EXCLUDED.input, preferred = EXCLUDED.preferred, non_preferred = EXCLUDED.non_preferred,
                           preferred_feedback_id = EXCLUDED.preferred_feedback_id,
                           non_preferred_feedback_id = EXCLUDED.non_preferred_feedback_id,
                           quality_score = EXCLUDED.quality_score, updated_at = now()
                     WHERE (pe.preferred_feedback_id, pe.non_preferred_feedback_id, pe.quality_score, pe.preferred, pe.non_preferred)
                           IS DISTINCT FROM (EXCLUDED.preferred_feedback_id, EXCLUDED.non_preferred_feedback_id,
                                             EXCLUDED.quality_score, EXCLUDED.preferred, EXCLUDED.non_preferred)
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT (SELECT count(*) FROM gone), count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
                  FROM up
                $q$,
                format(redact_msgs, 'CASE WHEN $6 THEN vibe_ft.redact_messages(x.messages) ELSE x.messages END'),
                format(redact_text, 'CASE WHEN $6 THEN vibe_ft.redact_text(x.preferred) ELSE x.preferred END'),
                format(redact_text, 'CASE WHEN $6 THEN vibe_ft.redact_text(x.non_preferred) ELSE x.non_preferred END'))
              INTO n, m, k
              USING lo, up_to, d.score_thumbs_up, d.score_thumbs_down,
                    d.score_stars, d.redact, d.feedback_persona, d.min_quality_score, d.id,
                    d.max_rejected_score, d.validation_share;

            pairs_removed := pairs_removed + n;
            pairs_added := pairs_added + m;
            pairs_updated := pairs_updated + k;
            lo := up_to;
        END LOOP;
        UPDATE vibe_ft.datasets x SET feedback_watermark = hi, updated_at = now() WHERE x.id = d.id;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION vibe_ft.generate_examples(uuid) IS
    'The daily job: turn feedback rated since the last run into examples and preference pairs (redacted, deduplicated, split deterministically). Every dataset with from_feedback when p_dataset_id is NULL. Idempotent.';

CREATE FUNCTION vibe_ft.forget_user(p_user_id text)
RETURNS TABLE (feedback_deleted bigint, examples_deleted bigint, pairs_deleted bigint, jobs_marked bigint,
               jobs_exporting_again bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    prefixes bytea[];
    personas text[];
    since timestamptz;
    first_example jsonb;
    first_pair jsonb;
    job record;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'vibe_ft.forget_user needs READ COMMITTED (it must see what exports committed while it waited)'
            USING ERRCODE = '25000';
    END IF;
    -- No file may be written or sent with what is deleted below. Exports and
    -- generate_examples hold this lock shared: one in flight finishes first,
    -- a later one reads the data without the user.
    PERFORM pg_advisory_xact_lock(1986426113, 2);
    -- Uploads and job creations in flight finish first too (the runner holds
    -- the job's lock through a step); then no step of these jobs runs until
    -- this commits.
    FOR job IN SELECT j.id FROM vibe_ft.jobs j
                WHERE j.status IN ('uploading', 'submitted') AND j.provider_job_id IS NULL ORDER BY j.id LOOP
        PERFORM vibe_ft.lock_job(job.id);
    END LOOP;

    SELECT coalesce(array_agg(f.id), '{}'), coalesce(array_agg(DISTINCT f.prefix_hash), '{}'),
           coalesce(array_agg(DISTINCT f.persona), '{}'), min(f.created_at)
      INTO ids, prefixes, personas, since
      FROM vibe_ft.feedback f WHERE f.user_id = p_user_id;

    WITH gone AS (
        DELETE FROM vibe_ft.examples e
         WHERE e.source = 'feedback' AND e.source_id = ANY (ids::text[])
        RETURNING e.dataset_id, e.id),
    per AS (SELECT g.dataset_id, min(g.id) AS min_id, count(*) AS n FROM gone g GROUP BY g.dataset_id)
    SELECT coalesce(sum(per.n), 0), coalesce(jsonb_object_agg(per.dataset_id::text, per.min_id), '{}')
      INTO examples_deleted, first_example FROM per;
    WITH gone AS (
        DELETE FROM vibe_ft.preference_examples pe
         WHERE pe.prefix_hash = ANY (prefixes)
           AND (pe.preferred_feedback_id = ANY (ids) OR pe.non_preferred_feedback_id = ANY (ids))
        RETURNING pe.dataset_id, pe.id),
    per AS (SELECT g.dataset_id, min(g.id) AS min_id, count(*) AS n FROM gone g GROUP BY g.dataset_id)
    SELECT coalesce(sum(per.n), 0), coalesce(jsonb_object_agg(per.dataset_id::text, per.min_id), '{}')
      INTO pairs_deleted, first_pair FROM per;
    DELETE FROM vibe_ft.feedback f WHERE f.user_id = p_user_id;
    GET DIAGNOSTICS feedback_deleted = ROW_COUNT;

    -- Jobs whose files may have held the user's rows. What a file held is not
    -- recorded row by row (a rating changed since may have removed the row
    -- from the dataset already), so this errs on the safe side: a job holding
    -- one of the rows deleted above, or any job of a dataset that reads this
    -- user's feedback and had not finished before their first rating.
    jobs_marked := 0;
    jobs_exporting_again := 0;
    FOR job IN
        SELECT j.id, j.status, j.training_file_id, j.validation_file_id, j.provider_job_id
          FROM vibe_ft.jobs j JOIN vibe_ft.datasets d ON d.id = j.dataset_id
         WHERE ((j.status IN ('uploading', 'submitted') AND j.provider_job_id IS NULL) OR j.training_file_id IS NOT NULL)
           AND ((d.from_feedback AND (d.feedback_persona IS NULL OR d.feedback_persona = ANY (personas))
                 AND (j.finished_at IS NULL OR j.finished_at >= since))
                OR CASE j.method WHEN 'dpo' THEN (first_pair ->> j.dataset_id::text)::bigint
                                 ELSE (first_example ->> j.dataset_id::text)::bigint END <= j.last_example_id)
         ORDER BY j.id
    LOOP
        IF job.status IN ('uploading', 'submitted') AND job.provider_job_id IS NULL THEN
            -- Not at a provider job yet: export again without them, under new
            -- file names. The runner deletes the earlier uploads before it
            -- uploads anew, and a provider job a lost create made from them
            -- is cancelled as a duplicate.
            UPDATE vibe_ft.jobs j SET status = 'exporting', training_file_id = NULL, validation_file_id = NULL,
                                      export_round = j.export_round + 1, attempts = 0, next_attempt_at = NULL
             WHERE j.id = job.id;
            PERFORM vibe_ft.remove_job_files(job.id);
            PERFORM vibe_ft.record_job_event(job.id, 'note', NULL, NULL,
                'its files may have held data since erased (vibe_ft.forget_user): exporting again',
                jsonb_build_object('stale_files', jsonb_build_array(job.training_file_id, job.validation_file_id)));
            jobs_exporting_again := jobs_exporting_again + 1;
        ELSE
            -- The file went to the provider, and a model trained on it may exist.
            UPDATE vibe_ft.jobs j SET erasure_requested_at = now() WHERE j.id = job.id;
            PERFORM vibe_ft.record_job_event(job.id, 'note', NULL, NULL,
                'may have trained on data of a user whose data was since erased (vibe_ft.forget_user)', NULL);
            jobs_marked := jobs_marked + 1;
        END IF;
    END LOOP;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION vibe_ft.forget_user(text) IS
    'Erase a user: delete their feedback and the examples and preference pairs made from it; export again the jobs whose files may have held them and have not reached a provider job; mark the jobs (and so the models) that may have been trained on them.';

-- pg_cron's schedule, with a schedule it cannot read answered as a bad
-- argument (pg_cron raises it as an internal error, XX000).
CREATE FUNCTION vibe_ft.cron_schedule(p_name text, p_schedule text, p_command text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database' USING ERRCODE = '0A000';
    END IF;
    RETURN cron.schedule(p_name, p_schedule, p_command);
EXCEPTION WHEN internal_error THEN
    RAISE EXCEPTION 'p_schedule: %', SQLERRM USING ERRCODE = '22023';
END
$$;

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
    -- What runs on paid hardware, and its prices (which the caps are checked
    -- against), are the owner's to change.
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON vibe_ft.deployments, vibe_ft.hardware_prices FROM %I', role_name);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA vibe_ft TO %I', role_name);
    EXECUTE format('GRANT SELECT ON public.finetuning_job_stats TO %I', role_name);
    EXECUTE format('GRANT SELECT ON vibe_ft.status TO %I', role_name);
    EXECUTE format('GRANT SELECT ON vibe_ft.model_ratings, vibe_ft.experiment_results TO %I', role_name);
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
                                      'deploy_model', 'stop_deployment', 'refresh_deployments',
                                      'schedule_experiment_evaluation', 'unschedule_experiment_evaluation')
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
    EXECUTE format('REVOKE ALL ON vibe_ft.model_ratings, vibe_ft.experiment_results FROM %I', role_name);
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

---------------------------------------------------------------------------
-- 0.6.0: which model to serve, decided on live ratings.
---------------------------------------------------------------------------

-- What an app calls for a succeeded job's model (the endpoint's name where
-- the provider serves fine-tunes on dedicated hardware), if it can be called
-- now; no row otherwise.
CREATE FUNCTION vibe_ft.callable_target(p_job_id uuid)
RETURNS TABLE (model text, provider text, base_url text, fine_tuned_model text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT CASE WHEN coalesce(vibe_ft.needs_deployment(j.provider), false)
                THEN (SELECT dp.endpoint_name FROM vibe_ft.deployments dp WHERE dp.job_id = j.id)
                ELSE j.fine_tuned_model END,
           j.provider, vibe_ft.provider_base_url(j.provider), j.fine_tuned_model
      FROM vibe_ft.jobs j
     WHERE j.id = p_job_id AND j.status = 'succeeded' AND j.fine_tuned_model IS NOT NULL
       AND vibe_ft.model_callable(j.id, j.provider, j.base_model);
END
$$;

-- The names an arm's answers are recorded under (record_answer's p_model):
-- a job's fine-tuned model and its endpoint's name; with no job, the base model.
CREATE FUNCTION vibe_ft.arm_models(p_job_id uuid, p_base_model text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN p_job_id IS NULL THEN ARRAY[p_base_model]
                ELSE array_remove(ARRAY[(SELECT j.fine_tuned_model FROM vibe_ft.jobs j WHERE j.id = p_job_id),
                                        (SELECT dp.endpoint_name FROM vibe_ft.deployments dp WHERE dp.job_id = p_job_id)], NULL)
           END
$$;

-- The job a dataset serves to everyone outside an experiment: its newest
-- promotion whose model can be called; NULL: the base model.
CREATE FUNCTION vibe_ft.served_job(p_dataset_id uuid) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j uuid;
BEGIN
    FOR j IN SELECT p.job_id FROM vibe_ft.promotions p WHERE p.dataset_id = p_dataset_id ORDER BY p.id DESC LOOP
        IF EXISTS (SELECT 1 FROM vibe_ft.callable_target(j)) THEN
            RETURN j;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- The one call a chat function makes per conversation: what to call (model
-- or endpoint name, provider, base URL) for this user, and the arm. A user's
-- arm is a hash of the experiment's seed and the user id (vibe_ft.bucket), so
-- a user keeps one model for the experiment's life, and nothing is written.
-- A candidate that cannot be called is replaced by the control, a control
-- that cannot be called by the base model. Outside an experiment: the
-- dataset's promoted model, or the base model.
CREATE FUNCTION public.choose_model(p_user_id text, p_base_model text DEFAULT NULL, p_dataset_id uuid DEFAULT NULL)
RETURNS TABLE (model text, provider text, base_url text, arm text, experiment_id bigint, job_id uuid,
               fine_tuned_model text)
-- plpgsql: its plans are kept for the session (chat requests call this).
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
    ds record;
    served uuid;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be NULL' USING ERRCODE = '22004';
    ELSIF char_length(p_user_id) NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'p_user_id must be 1 to 256 characters' USING ERRCODE = '22023';
    ELSIF p_base_model IS NULL AND p_dataset_id IS NULL THEN
        RAISE EXCEPTION 'name the base model the app would call (p_base_model) or the dataset (p_dataset_id)'
            USING ERRCODE = '22004';
    END IF;
    IF p_dataset_id IS NOT NULL THEN
        SELECT d.id, d.provider, d.base_model INTO ds FROM vibe_ft.datasets d WHERE d.id = p_dataset_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dataset % does not exist', p_dataset_id USING ERRCODE = '42704';
        END IF;
        SELECT x.id, x.state, x.seed, x.share, x.candidate_job_id, x.control_job_id, x.provider, x.base_model
          INTO e FROM vibe_ft.experiments x
         WHERE x.dataset_id = p_dataset_id AND x.state IN ('running', 'paused');
    ELSE
        SELECT x.id, x.state, x.seed, x.share, x.candidate_job_id, x.control_job_id, x.provider, x.base_model,
               x.dataset_id
          INTO e FROM vibe_ft.experiments x
         WHERE x.base_model = p_base_model AND x.state IN ('running', 'paused')
         ORDER BY x.started_at DESC LIMIT 1;
        IF e.id IS NULL THEN
            SELECT d.id, d.provider, d.base_model INTO ds
              FROM vibe_ft.promotions p JOIN vibe_ft.jobs j ON j.id = p.job_id
              JOIN vibe_ft.datasets d ON d.id = p.dataset_id
             WHERE j.base_model = p_base_model ORDER BY p.id DESC LIMIT 1;
        END IF;
    END IF;
    IF e.id IS NOT NULL THEN
        IF e.state = 'running' AND vibe_ft.bucket(e.seed, p_user_id) < e.share * 100 THEN
            RETURN QUERY SELECT t.model, t.provider, t.base_url, 'candidate'::text, e.id, e.candidate_job_id, t.fine_tuned_model
                           FROM vibe_ft.callable_target(e.candidate_job_id) t;
            IF FOUND THEN
                RETURN;
            END IF;
        END IF;
        IF e.control_job_id IS NOT NULL THEN
            RETURN QUERY SELECT t.model, t.provider, t.base_url, 'control'::text, e.id, e.control_job_id, t.fine_tuned_model
                           FROM vibe_ft.callable_target(e.control_job_id) t;
            IF FOUND THEN
                RETURN;
            END IF;
        END IF;
        RETURN QUERY SELECT e.base_model::text, e.provider::text, vibe_ft.provider_base_url(e.provider),
                            CASE WHEN e.control_job_id IS NULL THEN 'control' ELSE 'base' END, e.id, NULL::uuid, NULL::text;
        RETURN;
    END IF;
    IF ds.id IS NOT NULL THEN
        served := vibe_ft.served_job(ds.id);
        IF served IS NOT NULL THEN
            RETURN QUERY SELECT t.model, t.provider, t.base_url, 'served'::text, NULL::bigint, served, t.fine_tuned_model
                           FROM vibe_ft.callable_target(served) t;
            RETURN;
        END IF;
        -- the dataset's own base model when it is named (its provider goes with it)
        RETURN QUERY SELECT CASE WHEN p_dataset_id IS NULL THEN p_base_model ELSE ds.base_model END,
                            ds.provider, vibe_ft.provider_base_url(ds.provider),
                            'base'::text, NULL::bigint, NULL::uuid, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT p_base_model, d.provider, vibe_ft.provider_base_url(d.provider), 'base'::text,
                        NULL::bigint, NULL::uuid, NULL::text
                   FROM (SELECT (SELECT dd.provider FROM vibe_ft.datasets dd WHERE dd.base_model = p_base_model
                                  ORDER BY dd.created_at LIMIT 1) AS provider) d;
END
$$;
COMMENT ON FUNCTION public.choose_model(text, text, uuid) IS
    'Per conversation: the model (or endpoint) to call for this user, its provider and base URL, and the experiment arm. Sticky per user; never writes.';

-- The dataset's experiment policy, as an experiment keeps it.
CREATE FUNCTION vibe_ft.experiment_policy(p_dataset_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('steps', to_jsonb(d.experiment_steps), 'min_rated', d.experiment_min_rated,
                              'min_phase_hours', d.experiment_min_phase_hours, 'max_days', d.experiment_max_days,
                              'on_inconclusive', d.experiment_on_inconclusive)
      FROM vibe_ft.datasets d WHERE d.id = p_dataset_id
$$;

-- Record what happened to an experiment.
CREATE FUNCTION vibe_ft.experiment_event(p_experiment_id bigint, p_kind text, p_message text, p_evidence jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_experiment_id IS NULL OR p_kind IS NULL OR p_message IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id, p_kind and p_message must not be NULL' USING ERRCODE = '22004';
    ELSIF NOT EXISTS (SELECT 1 FROM vibe_ft.experiments x WHERE x.id = p_experiment_id) THEN
        RAISE EXCEPTION 'experiment % does not exist', p_experiment_id USING ERRCODE = '42704';
    END IF;
    INSERT INTO vibe_ft.experiment_events (experiment_id, kind, message, evidence)
    VALUES (p_experiment_id, p_kind, p_message, p_evidence);
END
$$;

-- End an active experiment: promoted (its candidate served to everyone),
-- rolled_back, ended (inconclusive, the control kept) or superseded.
CREATE FUNCTION vibe_ft.end_experiment(p_experiment_id bigint, p_state text, p_kind text, p_message text,
                                       p_evidence jsonb, p_how text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    IF p_experiment_id IS NULL OR p_state IS NULL OR p_kind IS NULL OR p_message IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id, p_state, p_kind and p_message must not be NULL' USING ERRCODE = '22004';
    ELSIF p_state NOT IN ('promoted', 'rolled_back', 'ended', 'superseded') THEN
        RAISE EXCEPTION 'an experiment ends promoted, rolled_back, ended or superseded, not %', p_state USING ERRCODE = '22023';
    END IF;
    SELECT x.* INTO e FROM vibe_ft.experiments x WHERE x.id = p_experiment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment % does not exist', p_experiment_id USING ERRCODE = '42704';
    ELSIF e.state NOT IN ('running', 'paused') THEN
        RAISE EXCEPTION 'experiment % has already ended (%)', p_experiment_id, e.state USING ERRCODE = '55000';
    END IF;
    UPDATE vibe_ft.experiments
       SET state = p_state, decision = p_message, decided_at = now(), updated_at = now(),
           evidence = coalesce(p_evidence, evidence)
     WHERE id = p_experiment_id;
    UPDATE vibe_ft.experiment_phases SET ended_at = now()
     WHERE experiment_id = p_experiment_id AND ended_at IS NULL;
    IF p_state = 'promoted' THEN
        INSERT INTO vibe_ft.promotions (dataset_id, job_id, experiment_id, how)
        VALUES (e.dataset_id, e.candidate_job_id, p_experiment_id, coalesce(p_how, 'experiment'));
    END IF;
    PERFORM vibe_ft.experiment_event(p_experiment_id, p_kind, p_message, p_evidence);
END
$$;

-- The next share: a new phase (arms are compared within phases).
CREATE FUNCTION vibe_ft.ramp_experiment(p_experiment_id bigint, p_step integer, p_share numeric, p_message text,
                                        p_evidence jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    next_phase integer;
    st text;
    cur integer;
BEGIN
    IF p_experiment_id IS NULL OR p_step IS NULL OR p_share IS NULL OR p_message IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id, p_step, p_share and p_message must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT x.state, x.step INTO st, cur FROM vibe_ft.experiments x WHERE x.id = p_experiment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment % does not exist', p_experiment_id USING ERRCODE = '42704';
    ELSIF st <> 'running' THEN
        RAISE EXCEPTION 'experiment % is not running (%)', p_experiment_id, st USING ERRCODE = '55000';
    ELSIF p_step < 0 OR NOT (p_share > 0 AND p_share <= 100) THEN
        RAISE EXCEPTION 'p_step must be at least 0 and p_share above 0 and at most 100' USING ERRCODE = '22023';
    ELSIF p_step <> cur + 1 THEN
        -- another evaluation ramped it first
        RAISE EXCEPTION 'experiment % is at step %, not %', p_experiment_id, cur, p_step - 1 USING ERRCODE = '55000';
    END IF;
    UPDATE vibe_ft.experiment_phases SET ended_at = now()
     WHERE experiment_id = p_experiment_id AND ended_at IS NULL;
    SELECT coalesce(max(ph.phase), 0) + 1 INTO next_phase FROM vibe_ft.experiment_phases ph
     WHERE ph.experiment_id = p_experiment_id;
    INSERT INTO vibe_ft.experiment_phases (experiment_id, phase, share) VALUES (p_experiment_id, next_phase, p_share);
    UPDATE vibe_ft.experiments SET step = p_step, share = p_share, evidence = p_evidence, updated_at = now()
     WHERE id = p_experiment_id;
    PERFORM vibe_ft.experiment_event(p_experiment_id, 'ramp', p_message, p_evidence);
END
$$;

-- Start an experiment: a succeeded job's model against what the dataset
-- serves now (the base model at first), at the policy's first share. An
-- experiment of the dataset that is still running is superseded (its
-- control stays served). Called when a job succeeds (datasets.experiment_auto)
-- and by hand. Returns the experiment's id.
CREATE FUNCTION vibe_ft.start_experiment(p_job_id uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    active record;
    eid bigint;
    pol jsonb;
    first_share numeric;
    control uuid;
BEGIN
    IF p_job_id IS NULL THEN
        RAISE EXCEPTION 'p_job_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT jj.id, jj.dataset_id, jj.status, jj.provider, jj.base_model, jj.fine_tuned_model
      INTO j FROM vibe_ft.jobs jj WHERE jj.id = p_job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', p_job_id USING ERRCODE = '42704';
    ELSIF j.status <> 'succeeded' OR j.fine_tuned_model IS NULL THEN
        RAISE EXCEPTION 'job % has no model to test (status %)', p_job_id, j.status USING ERRCODE = '55000';
    END IF;
    -- one start at a time per dataset (NO KEY: a promotion's foreign key
    -- check, which an evaluator may be making, does not wait on it)
    PERFORM 1 FROM vibe_ft.datasets d WHERE d.id = j.dataset_id FOR NO KEY UPDATE;
    SELECT x.id, x.candidate_job_id INTO active FROM vibe_ft.experiments x
     WHERE x.dataset_id = j.dataset_id AND x.state IN ('running', 'paused');
    IF active.candidate_job_id = p_job_id THEN
        RETURN active.id;
    ELSIF active.id IS NOT NULL THEN
        PERFORM vibe_ft.end_experiment(active.id, 'superseded', 'superseded',
                                       format('superseded by job %s (%s); the control stays served', p_job_id, j.fine_tuned_model),
                                       NULL);
    END IF;
    pol := vibe_ft.experiment_policy(j.dataset_id);
    first_share := (pol->'steps'->>0)::numeric;
    control := vibe_ft.served_job(j.dataset_id);
    IF control = p_job_id THEN
        RAISE EXCEPTION 'job % is already served to everyone', p_job_id USING ERRCODE = '55000';
    END IF;
    eid := nextval('vibe_ft.experiments_id_seq');
    INSERT INTO vibe_ft.experiments (id, dataset_id, candidate_job_id, control_job_id, provider, base_model, seed,
                                     share, policy)
    VALUES (eid, j.dataset_id, p_job_id, control, j.provider, j.base_model,
            format('vibe_ft-experiment-%s', eid), first_share, pol);
    INSERT INTO vibe_ft.experiment_phases (experiment_id, phase, share) VALUES (eid, 1, first_share);
    PERFORM vibe_ft.experiment_event(eid, 'started',
        format('%s (job %s) against %s, at %s%% of users', j.fine_tuned_model, p_job_id,
               coalesce((SELECT format('%s (job %s)', jj.fine_tuned_model, jj.id) FROM vibe_ft.jobs jj WHERE jj.id = control),
                        format('the base model %s', j.base_model)),
               first_share), pol);
    RETURN eid;
END
$$;

-- An experiment's and a promotion's jobs are the dataset's own: one
-- dataset's model is never tested or served for another's users.
CREATE FUNCTION vibe_ft.experiment_jobs_of_dataset() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    jobs uuid[];
    j uuid;
BEGIN
    IF TG_TABLE_NAME = 'promotions' THEN
        jobs := ARRAY[(to_jsonb(NEW)->>'job_id')::uuid];
    ELSE
        jobs := ARRAY[(to_jsonb(NEW)->>'candidate_job_id')::uuid, (to_jsonb(NEW)->>'control_job_id')::uuid];
    END IF;
    FOREACH j IN ARRAY jobs LOOP
        IF j IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vibe_ft.jobs jj WHERE jj.id = j AND jj.dataset_id = NEW.dataset_id) THEN
            RAISE EXCEPTION 'job % is not a job of dataset %', j, NEW.dataset_id USING ERRCODE = '23514';
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
CREATE TRIGGER experiments_jobs_of_dataset
    BEFORE INSERT OR UPDATE OF dataset_id, candidate_job_id, control_job_id ON vibe_ft.experiments
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.experiment_jobs_of_dataset();
CREATE TRIGGER promotions_jobs_of_dataset
    BEFORE INSERT OR UPDATE OF dataset_id, job_id ON vibe_ft.promotions
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.experiment_jobs_of_dataset();

-- A job that succeeds starts an experiment when its dataset says so.
-- Whatever goes wrong there, the job has succeeded: it is noted on the job.
CREATE FUNCTION vibe_ft.jobs_start_experiment() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT d.experiment_auto FROM vibe_ft.datasets d WHERE d.id = NEW.dataset_id) THEN
        BEGIN
            PERFORM vibe_ft.start_experiment(NEW.id);
        EXCEPTION WHEN OTHERS THEN
            PERFORM vibe_ft.record_job_event(NEW.id, 'note', NULL, NULL,
                format('no experiment started for its model: %s (SQLSTATE %s); vibe_ft.start_experiment(%L) starts one',
                       SQLERRM, SQLSTATE, NEW.id), NULL);
        END;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_start_experiment
    AFTER UPDATE OF status, fine_tuned_model ON vibe_ft.jobs
    FOR EACH ROW
    WHEN (NEW.status = 'succeeded' AND NEW.fine_tuned_model IS NOT NULL
          AND (OLD.status IS DISTINCT FROM 'succeeded' OR OLD.fine_tuned_model IS NULL))
    EXECUTE FUNCTION vibe_ft.jobs_start_experiment();

-- By hand: serve the candidate to everyone now.
CREATE FUNCTION vibe_ft.promote_experiment(p_experiment_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_experiment_id IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM vibe_ft.end_experiment(p_experiment_id, 'promoted', 'promote',
        format('promoted by hand (%s)', current_user),
        (SELECT x.evidence FROM vibe_ft.experiments x WHERE x.id = p_experiment_id), 'manual');
END
$$;

-- By hand: back to the control for everyone now.
CREATE FUNCTION vibe_ft.rollback_experiment(p_experiment_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_experiment_id IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM vibe_ft.end_experiment(p_experiment_id, 'rolled_back', 'rollback',
        format('rolled back by hand (%s)', current_user),
        (SELECT x.evidence FROM vibe_ft.experiments x WHERE x.id = p_experiment_id));
END
$$;

-- By hand: everyone gets the control until resume_experiment; no decisions meanwhile.
CREATE FUNCTION vibe_ft.pause_experiment(p_experiment_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st text;
BEGIN
    IF p_experiment_id IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT x.state INTO st FROM vibe_ft.experiments x WHERE x.id = p_experiment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment % does not exist', p_experiment_id USING ERRCODE = '42704';
    ELSIF st <> 'running' THEN
        RAISE EXCEPTION 'experiment % is not running (%)', p_experiment_id, st USING ERRCODE = '55000';
    END IF;
    UPDATE vibe_ft.experiment_phases SET ended_at = now() WHERE experiment_id = p_experiment_id AND ended_at IS NULL;
    UPDATE vibe_ft.experiments SET state = 'paused', updated_at = now() WHERE id = p_experiment_id;
    PERFORM vibe_ft.experiment_event(p_experiment_id, 'pause', format('paused by hand (%s)', current_user), NULL);
END
$$;

-- By hand: the candidate gets its share again, in a new phase.
CREATE FUNCTION vibe_ft.resume_experiment(p_experiment_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    IF p_experiment_id IS NULL THEN
        RAISE EXCEPTION 'p_experiment_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT x.state, x.share INTO e FROM vibe_ft.experiments x WHERE x.id = p_experiment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment % does not exist', p_experiment_id USING ERRCODE = '42704';
    ELSIF e.state <> 'paused' THEN
        RAISE EXCEPTION 'experiment % is not paused (%)', p_experiment_id, e.state USING ERRCODE = '55000';
    END IF;
    INSERT INTO vibe_ft.experiment_phases (experiment_id, phase, share)
    SELECT p_experiment_id, coalesce(max(ph.phase), 0) + 1, e.share FROM vibe_ft.experiment_phases ph
     WHERE ph.experiment_id = p_experiment_id;
    UPDATE vibe_ft.experiments SET state = 'running', updated_at = now() WHERE id = p_experiment_id;
    PERFORM vibe_ft.experiment_event(p_experiment_id, 'resume', format('resumed by hand (%s) at %s%%', current_user, e.share), NULL);
END
$$;

-- Rated answers of one experiment, per phase and arm, summed per user (what
-- vibe_ft.evaluate_experiments decides on). Positive: a thumbs up or 4-5
-- stars. An answer counts for the arm whose model produced it, in the phase
-- it was given, and only if its user is assigned to that arm in that phase
-- (a user of the same model outside the experiment, or one who got the
-- control because the candidate could not be called, is not counted).
CREATE FUNCTION vibe_ft.experiment_counts(p_experiment_id bigint)
RETURNS TABLE (phase integer, candidate boolean, rated float8, positive float8,
               sum_n2 float8, sum_s2 float8, sum_sn float8, users float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cand text[];
    ctrl text[];
    sd text;
BEGIN
    SELECT vibe_ft.arm_models(x.candidate_job_id, NULL), vibe_ft.arm_models(x.control_job_id, x.base_model), x.seed
      INTO cand, ctrl, sd FROM vibe_ft.experiments x WHERE x.id = p_experiment_id;
    RETURN QUERY
    SELECT u.phase, u.cand, sum(u.n), sum(u.s), sum(u.n * u.n), sum(u.s * u.s), sum(u.s * u.n), count(*)::float8
      FROM (SELECT ph.phase, ph.share, f.model = ANY (cand) AS cand, f.user_id,
                   count(*)::float8 AS n,
                   count(*) FILTER (WHERE f.thumbs_up OR f.stars >= 4)::float8 AS s
              FROM vibe_ft.experiment_phases ph
              JOIN vibe_ft.feedback f
                ON f.model = ANY (cand || ctrl)
               AND f.created_at >= ph.started_at AND f.created_at < coalesce(ph.ended_at, 'infinity')
             WHERE ph.experiment_id = p_experiment_id AND f.rated_at IS NOT NULL
             GROUP BY 1, 2, 3, 4) u
     WHERE (vibe_ft.bucket(sd, u.user_id) < u.share * 100) = u.cand
     GROUP BY u.phase, u.cand
     ORDER BY u.phase, u.cand;
END
$$;

-- Per model and day: answers served, rated, positive (a thumbs up or 4-5
-- stars), the positive rate and its 95% (Wilson) interval.
CREATE VIEW vibe_ft.model_ratings WITH (security_invoker = true) AS
SELECT r.model, r.provider, r.period, r.answers, r.rated, r.positive,
       round(r.positive::numeric / nullif(r.rated, 0), 4) AS positive_rate,
       round(((r.p + 1.92 / r.n - 1.96 * sqrt(r.p * (1 - r.p) / r.n + 0.9604 / (r.n * r.n))) / (1 + 3.8416 / r.n))::numeric, 4) AS rate_low_95,
       round(((r.p + 1.92 / r.n + 1.96 * sqrt(r.p * (1 - r.p) / r.n + 0.9604 / (r.n * r.n))) / (1 + 3.8416 / r.n))::numeric, 4) AS rate_high_95
  FROM (SELECT f.model, f.provider, date_trunc('day', f.created_at) AS period,
               count(*) AS answers, count(f.rated_at) AS rated,
               count(*) FILTER (WHERE f.thumbs_up OR f.stars >= 4) AS positive,
               nullif(count(f.rated_at), 0)::float8 AS n,
               count(*) FILTER (WHERE f.thumbs_up OR f.stars >= 4)::float8 / nullif(count(f.rated_at), 0) AS p
          FROM vibe_ft.feedback f
         WHERE f.model IS NOT NULL
         GROUP BY 1, 2, 3) r;
COMMENT ON VIEW vibe_ft.model_ratings IS
    'Per model and day: answers, rated answers, positive rate (thumbs up or 4-5 stars) with a 95% interval.';

-- Every experiment: its arms, where it stands, and the lift of the candidate
-- over the control with its 95% interval (for a promoted model: its
-- before/after lift, measured side by side within the same periods).
CREATE VIEW vibe_ft.experiment_results WITH (security_invoker = true) AS
SELECT x.id AS experiment_id, x.dataset_id, d.name AS dataset_name, x.state, x.share,
       c.fine_tuned_model AS candidate_model, x.candidate_job_id,
       coalesce(k.fine_tuned_model, x.base_model) AS control_model, x.control_job_id,
       (x.evidence->>'control_rated')::float8::bigint      AS control_rated,
       round(((x.evidence->>'control_positive')::float8 / nullif((x.evidence->>'control_rated')::float8, 0))::numeric, 4) AS control_rate,
       (x.evidence->>'candidate_rated')::float8::bigint    AS candidate_rated,
       round(((x.evidence->>'candidate_positive')::float8 / nullif((x.evidence->>'candidate_rated')::float8, 0))::numeric, 4) AS candidate_rate,
       round((x.evidence->>'lift')::numeric, 4)            AS lift,
       round((x.evidence->>'lift_low_95')::numeric, 4)     AS lift_low_95,
       round((x.evidence->>'lift_high_95')::numeric, 4)    AS lift_high_95,
       round((x.evidence->>'p_better')::numeric, 4)        AS p_better,
       x.decision, x.started_at, x.decided_at, x.evaluated_at
  FROM vibe_ft.experiments x
  JOIN vibe_ft.datasets d ON d.id = x.dataset_id
  JOIN vibe_ft.jobs c ON c.id = x.candidate_job_id
  LEFT JOIN vibe_ft.jobs k ON k.id = x.control_job_id;
COMMENT ON VIEW vibe_ft.experiment_results IS
    'Every experiment: arms, state, share, rated answers and positive rate per arm, the lift with its 95% interval, P(better), the decision.';

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

-- vibe_ft's caller-facing functions live in public (the seed's contract). A
-- role that may create there can add overloads of them: say so.
DO $$
BEGIN
    IF has_schema_privilege('public', 'public', 'CREATE') THEN
        RAISE WARNING 'every role may create objects in schema public: a role could overload vibe_ft''s functions there'
            USING HINT = 'REVOKE CREATE ON SCHEMA public FROM PUBLIC (PostgreSQL 15''s default); grant it only to trusted roles.';
    END IF;
END
$$;

-- A running worker starts serving this database now, not at its next look.
SELECT vibe_ft.wake_worker();
