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
-- 0.3.0: feedback in, examples and preference pairs out, checked and priced.
---------------------------------------------------------------------------

-- Every writer of feedback (submit_feedback, an import, a plain UPDATE) takes
-- this lock in shared mode before it takes a change number; generate_examples
-- takes it exclusively for an instant before it reads the newest change number,
-- so no change below that number can still commit later and be skipped.
CREATE FUNCTION vibe_ft.feedback_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1986426113, 1);
    IF TG_OP = 'INSERT' OR NEW.messages IS DISTINCT FROM OLD.messages OR NEW.answer IS DISTINCT FROM OLD.answer THEN
        PERFORM vibe_ft.check_feedback(NEW.messages, NEW.answer);
        NEW.prefix_hash := sha256(convert_to(NEW.messages::text, 'UTF8'));
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- A restore brings its own numbers; everyone else gets the next one.
        NEW.change_seq := coalesce(NEW.change_seq, nextval('vibe_ft.feedback_change_seq'));
    ELSIF (NEW.messages, NEW.answer, NEW.model, NEW.thumbs_up, NEW.stars, NEW.persona)
          IS DISTINCT FROM (OLD.messages, OLD.answer, OLD.model, OLD.thumbs_up, OLD.stars, OLD.persona) THEN
        NEW.change_seq := nextval('vibe_ft.feedback_change_seq');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER feedback_before_write
    BEFORE INSERT OR UPDATE ON vibe_ft.feedback
    FOR EACH ROW EXECUTE FUNCTION vibe_ft.feedback_before_write();

-- The one call an app makes per rated answer. Safe to expose to signed-in
-- users (vibe_ft.grant_feedback('authenticated')): it validates its input,
-- writes one row of vibe_ft.feedback and nothing else, and under PostgREST the
-- user is the JWT's subject, so nobody can rate (or re-rate) for someone else.
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
    subject text;
    uid text;
    at timestamptz := coalesce(p_rated_at, now());
    fid bigint;
BEGIN
    subject := nullif(current_setting('request.jwt.claim.sub', true), '');
    IF subject IS NULL THEN
        BEGIN
            subject := nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub';
        EXCEPTION WHEN invalid_text_representation THEN
            subject := NULL;
        END;
    END IF;
    IF subject IS NOT NULL THEN
        IF p_user_id IS NOT NULL AND p_user_id <> subject THEN
            RAISE EXCEPTION 'p_user_id must be the signed-in user or left out'
                USING ERRCODE = '42501';
        END IF;
        uid := subject;
    ELSIF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be NULL (no signed-in user in request.jwt.claims)'
            USING ERRCODE = '22004';
    ELSE
        uid := p_user_id;
    END IF;
    IF p_answer_id IS NULL THEN
        RAISE EXCEPTION 'p_answer_id must not be NULL' USING ERRCODE = '22004';
    ELSIF p_messages IS NULL THEN
        RAISE EXCEPTION 'p_messages must not be NULL' USING ERRCODE = '22004';
    ELSIF p_answer IS NULL THEN
        RAISE EXCEPTION 'p_answer must not be NULL' USING ERRCODE = '22004';
    ELSIF p_thumbs_up IS NULL AND p_stars IS NULL THEN
        RAISE EXCEPTION 'a rating needs p_thumbs_up or p_stars (or both)' USING ERRCODE = '22023';
    ELSIF p_stars NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'p_stars must be 1 to 5, got %', p_stars USING ERRCODE = '22003';
    ELSIF char_length(uid) NOT BETWEEN 1 AND 256 OR char_length(p_answer_id) NOT BETWEEN 1 AND 256
          OR char_length(p_model) > 256 OR char_length(p_persona) > 256 THEN
        RAISE EXCEPTION 'user id, p_answer_id, p_model and p_persona must be 1 to 256 characters'
            USING ERRCODE = '22023';
    ELSIF octet_length(p_messages::text) + octet_length(p_answer) > 4 * 1024 * 1024 THEN
        RAISE EXCEPTION 'p_messages and p_answer together exceed 4 MB' USING ERRCODE = '54000';
    ELSIF at > now() + interval '5 minutes' THEN
        RAISE EXCEPTION 'p_rated_at is in the future' USING ERRCODE = '22023';
    END IF;
    INSERT INTO vibe_ft.feedback AS f
           (user_id, answer_id, messages, answer, model, thumbs_up, stars, persona, rated_at)
    VALUES (uid, p_answer_id, p_messages, p_answer, p_model, p_thumbs_up, p_stars, p_persona, at)
    ON CONFLICT (user_id, answer_id) DO UPDATE
       SET messages = EXCLUDED.messages, answer = EXCLUDED.answer, model = EXCLUDED.model,
           thumbs_up = EXCLUDED.thumbs_up, stars = EXCLUDED.stars, persona = EXCLUDED.persona,
           rated_at = EXCLUDED.rated_at
     -- a re-rating replaces the earlier one; a stale one arriving late does not
     WHERE f.rated_at <= EXCLUDED.rated_at
    RETURNING f.id INTO fid;
    IF fid IS NULL THEN
        SELECT f.id INTO fid FROM vibe_ft.feedback f WHERE f.user_id = uid AND f.answer_id = p_answer_id;
    END IF;
    RETURN fid;
END
$$;
COMMENT ON FUNCTION public.submit_feedback(text, jsonb, text, boolean, integer, text, text, text, timestamptz) IS
    'Record a user''s rating (thumbs and/or 1-5 stars) of an answer; a re-rating replaces the earlier one. Returns the feedback id.';

CREATE FUNCTION vibe_ft.grant_feedback(p_role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'p_role must not be NULL' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION public.submit_feedback(text, jsonb, text, boolean, integer, text, text, text, timestamptz) TO %s', p_role);
END
$$;
COMMENT ON FUNCTION vibe_ft.grant_feedback(regrole) IS
    'Let a role (e.g. Supabase''s authenticated) call public.submit_feedback, and nothing else of vibe_ft.';

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
    n_epochs := vibe_ft.training_epochs(coalesce(p_hyperparameters, d.hyperparameters), v.examples);
    billed_tokens := v.billable_tokens * n_epochs;
    training_per_million := vibe_ft.training_price(d.provider, base_model);
    estimated_cost_usd := round(billed_tokens * training_per_million / 1000000, 2);
    valid := v.valid;
    note := CASE
        WHEN training_per_million IS NULL THEN
            format('no training price for %s (%s) in vibe_ft.prices', base_model, d.provider)
        WHEN NOT v.valid THEN 'the training data fails validation: see vibe_ft.validate_dataset'
        ELSE format('%s tokens x %s epoch(s) x $%s per 1M tokens', training_tokens, n_epochs, training_per_million)
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
LANGUAGE sql STABLE ROWS 1000
AS $$
    SELECT vibe_ft.preference_line(e.input, e.preferred, e.non_preferred)
      FROM vibe_ft.preference_examples AS e
     WHERE vibe_ft.check_export_args(p_dataset_id, p_split, p_min_quality_score)
       AND vibe_ft.check_dataset_exists(p_dataset_id)
       AND e.dataset_id = p_dataset_id
       AND e.split = p_split
       AND e.quality_score >= p_min_quality_score
     ORDER BY e.id
$$;
COMMENT ON FUNCTION vibe_ft.export_preference_jsonl(uuid, text, numeric) IS
    'One compact preference (DPO) JSONL line per pair of the dataset and split with quality >= threshold, oldest first.';

-- A user's own redaction, (text) RETURNS text, applied to every message text
-- after the built-in patterns. Only a function the caller owns or a superuser
-- owns is called: a scheduled superuser job must not run a lesser role's code.
CREATE FUNCTION vibe_ft.check_redact_function(p_function regprocedure) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
BEGIN
    SELECT p.prorettype, p.proargtypes, p.pronargs, r.rolsuper, p.proowner, p.oid::regproc::text AS name
      INTO f FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = p_function;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'redact_function % does not exist', p_function USING ERRCODE = '42883';
    END IF;
    IF f.pronargs <> 1 OR f.proargtypes[0] <> 'text'::regtype OR f.prorettype <> 'text'::regtype THEN
        RAISE EXCEPTION 'redact_function % must take text and return text', p_function USING ERRCODE = '42804';
    END IF;
    IF NOT f.rolsuper AND f.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'redact_function % must be owned by % or a superuser', p_function, current_user
            USING ERRCODE = '42501';
    END IF;
    RETURN f.name;
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
    -- Wait for feedback writers in flight, then read the newest change number:
    -- everything up to it is committed and visible to the statements below.
    PERFORM pg_advisory_lock(1986426113, 1);
    BEGIN
        SELECT coalesce(max(f.change_seq), 0) INTO hi FROM vibe_ft.feedback f;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(1986426113, 1);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(1986426113, 1);

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
                   count(*) FILTER (WHERE vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up::float8,
                                      d.score_thumbs_down::float8, d.score_stars::float8[]) >= d.min_quality_score)
              INTO n, qualifying
              FROM vibe_ft.feedback f
             WHERE f.change_seq > lo AND f.change_seq <= up_to
               AND (d.feedback_persona IS NULL OR f.persona = d.feedback_persona);
            feedback_read := feedback_read + n;

            -- Examples of re-rated answers whose score changed and still qualifies.
            WITH up AS (
                UPDATE vibe_ft.examples e SET quality_score = s.score
                  FROM (SELECT f.id::text AS sid,
                               round(vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up::float8,
                                     d.score_thumbs_down::float8, d.score_stars::float8[])::numeric, 2) AS score
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
                           jsonb_build_object('model', b.model, 'persona', b.persona, 'redactions', b.x->'redactions')
                      FROM (SELECT f.id, f.model, f.persona, round(s.score::numeric, 2) AS score,
                                   vibe_ft.feedback_example(f.messages, f.answer, $6) AS x
                              FROM vibe_ft.feedback f
                             CROSS JOIN LATERAL (SELECT vibe_ft.feedback_score(f.thumbs_up, f.stars, $3, $4, $5) AS score) s
                             WHERE f.change_seq > $1 AND f.change_seq <= $2
                               AND ($7::text IS NULL OR f.persona = $7)
                               AND s.score >= $8) b
                    ON CONFLICT (dataset_id, content_hash) DO NOTHING
                    RETURNING (e.metadata -> 'redactions') AS r
                )
                SELECT count(*), coalesce(sum((r->>'emails')::int + (r->>'cards')::int + (r->>'phones')::int), 0)
                  FROM ins
                $q$, format(redact_msgs, 'b.x->''messages'''))
              INTO n, m
              USING lo, up_to, d.score_thumbs_up::float8, d.score_thumbs_down::float8,
                    d.score_stars::float8[], d.redact, d.feedback_persona, d.min_quality_score, d.id;
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
                        OR vibe_ft.feedback_score(f.thumbs_up, f.stars, d.score_thumbs_up::float8,
                               d.score_thumbs_down::float8, d.score_stars::float8[]) < d.min_quality_score)
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
                           b.id AS preferred_id, w.id AS non_preferred_id, round(b.score::numeric, 2) AS score
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
              USING lo, up_to, d.score_thumbs_up::float8, d.score_thumbs_down::float8,
                    d.score_stars::float8[], d.redact, d.feedback_persona, d.min_quality_score, d.id,
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
RETURNS TABLE (feedback_deleted bigint, examples_deleted bigint, pairs_deleted bigint, jobs_marked bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ids bigint[];
    prefixes bytea[];
    first_example jsonb;
    first_pair jsonb;
    job uuid;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'p_user_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT coalesce(array_agg(f.id), '{}'), coalesce(array_agg(DISTINCT f.prefix_hash), '{}')
      INTO ids, prefixes
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

    -- Jobs whose exported data held one of them: the file went to the provider,
    -- and a model trained on it may exist. The user id is not recorded.
    jobs_marked := 0;
    FOR job IN
        UPDATE vibe_ft.jobs j SET erasure_requested_at = now()
         WHERE j.training_file_id IS NOT NULL
           AND CASE j.method WHEN 'dpo' THEN (first_pair ->> j.dataset_id::text)::bigint
                             ELSE (first_example ->> j.dataset_id::text)::bigint END <= j.last_example_id
        RETURNING j.id
    LOOP
        PERFORM vibe_ft.record_job_event(job, 'note', NULL, NULL,
            'trained on data of a user whose data was since erased (vibe_ft.forget_user)', NULL);
        jobs_marked := jobs_marked + 1;
    END LOOP;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION vibe_ft.forget_user(text) IS
    'Erase a user: delete their feedback and the examples and preference pairs made from it; mark the jobs (and so the models) that were trained on them.';

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
                                      'schedule_job_runner', 'unschedule_job_runner',
                                      'schedule_example_generation', 'unschedule_example_generation',
                                      'grant_feedback')
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
