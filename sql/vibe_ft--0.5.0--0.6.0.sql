-- vibe_ft 0.5.0 -> 0.6.0: which model to serve, decided on live ratings.
--  - vibe_ft.experiments: a succeeded job's model is tested against the
--    model served (the base model at first), users split by a hash
--    (vibe_ft.bucket), ramped 10 -> 25 -> 50 %, promoted or rolled back by
--    vibe_ft.evaluate_experiments (worker, pg_cron, by hand); phases, events
--    and promotions; the datasets' experiment policy columns;
--  - public.choose_model: what a chat function calls per conversation;
--  - vibe_ft.model_ratings and vibe_ft.experiment_results: positive rates
--    with 95% intervals, lifts; vibe_ft.report_html, one self-contained page;
--  - each dataset's newest succeeded model (what 0.5.0 served) becomes its
--    promoted model, so choose_model serves what get_latest_finetuned_model did.
-- Hand-written; once released, never edited. A fresh 0.6.0 install and
-- 0.5.0 + this script must define the same objects (checked by tests/e2e:
-- test_upgrade_from_0_5_0_matches_a_fresh_install).
\echo Use "ALTER EXTENSION vibe_ft UPDATE TO '0.6.0'" to load this file. \quit

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
-- 0.6.0: which model to serve, decided on live ratings. A succeeded job's
-- model becomes the candidate of an experiment against the model served now
-- (the base model at first); vibe_ft.choose_model assigns users by a hash,
-- vibe_ft.evaluate_experiments ramps, promotes or rolls back on evidence.
---------------------------------------------------------------------------
-- Shares of users, percent: 1 to 10 of them, each above 0 and at most 100,
-- strictly rising (NaN, NULL and a falling step are refused).
CREATE FUNCTION vibe_ft.experiment_steps_valid(p_steps numeric[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    prev numeric := 0;
    v numeric;
BEGIN
    IF p_steps IS NULL OR array_ndims(p_steps) IS DISTINCT FROM 1 OR cardinality(p_steps) NOT BETWEEN 1 AND 10 THEN
        RETURN false;
    END IF;
    FOREACH v IN ARRAY p_steps LOOP
        IF v IS NULL OR NOT (v > prev AND v <= 100) THEN
            RETURN false;
        END IF;
        prev := v;
    END LOOP;
    RETURN true;
END
$$;

ALTER TABLE vibe_ft.datasets
    -- a succeeded job's model becomes a candidate at once (off: start_experiment by hand)
    ADD COLUMN experiment_auto            boolean NOT NULL DEFAULT true,
    -- the candidate's shares of users, percent, rising; promoted only at the last
    ADD COLUMN experiment_steps           numeric[] NOT NULL DEFAULT '{10,25,50}'
        CHECK (vibe_ft.experiment_steps_valid(experiment_steps)),
    -- rated answers per arm before any decision, and per arm in a phase before a ramp
    ADD COLUMN experiment_min_rated       integer NOT NULL DEFAULT 100 CHECK (experiment_min_rated >= 1),
    -- the shortest phase before a ramp (a day covers the daily cycle); finite
    ADD COLUMN experiment_min_phase_hours numeric NOT NULL DEFAULT 24
        CHECK (experiment_min_phase_hours >= 0 AND experiment_min_phase_hours < 'Infinity'),
    ADD COLUMN experiment_max_days        numeric NOT NULL DEFAULT 28
        CHECK (experiment_max_days > 0 AND experiment_max_days < 'Infinity'),
    ADD COLUMN experiment_on_inconclusive text NOT NULL DEFAULT 'keep_control'
        CHECK (experiment_on_inconclusive IN ('keep_control', 'promote'));

CREATE SEQUENCE vibe_ft.experiments_id_seq;
CREATE TABLE vibe_ft.experiments (
    id                 bigint PRIMARY KEY DEFAULT nextval('vibe_ft.experiments_id_seq'),
    dataset_id         uuid NOT NULL REFERENCES vibe_ft.datasets (id) ON DELETE CASCADE,
    candidate_job_id   uuid NOT NULL REFERENCES vibe_ft.jobs (id) ON DELETE CASCADE,
    -- the model served when the experiment began; NULL: the base model
    control_job_id     uuid REFERENCES vibe_ft.jobs (id) ON DELETE SET NULL,
    -- the candidate's provider and base model (the control's fallback)
    provider           text NOT NULL,
    base_model         text NOT NULL,
    -- hashed with the user id: a user keeps one arm for the experiment's life
    seed               text NOT NULL,
    state              text NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'paused', 'promoted', 'rolled_back', 'ended', 'superseded')),
    -- the current step (0-based) of policy.steps and its share, percent
    step               integer NOT NULL DEFAULT 0 CHECK (step >= 0),
    share              numeric NOT NULL CHECK (share >= 0 AND share <= 100),
    -- the dataset's experiment policy when it began
    policy             jsonb NOT NULL,
    -- the last evaluation's numbers, and the decision once there is one
    evidence           jsonb,
    evaluated_at       timestamptz,
    decision           text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE vibe_ft.experiments_id_seq OWNED BY vibe_ft.experiments.id;
-- at most one experiment running (or paused) per dataset
CREATE UNIQUE INDEX experiments_one_active ON vibe_ft.experiments (dataset_id) WHERE state IN ('running', 'paused');
CREATE INDEX experiments_active_base ON vibe_ft.experiments (base_model) WHERE state IN ('running', 'paused');
COMMENT ON TABLE vibe_ft.experiments IS
    'A candidate model against the model served (or the base model): users split by a hash, ramped, promoted or rolled back on their ratings.';

-- A period at one share: arms are compared within a phase, never across.
CREATE TABLE vibe_ft.experiment_phases (
    experiment_id bigint NOT NULL REFERENCES vibe_ft.experiments (id) ON DELETE CASCADE,
    phase         integer NOT NULL,
    share         numeric NOT NULL CHECK (share >= 0 AND share <= 100),
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    PRIMARY KEY (experiment_id, phase)
);

CREATE SEQUENCE vibe_ft.experiment_events_id_seq;
CREATE TABLE vibe_ft.experiment_events (
    id            bigint PRIMARY KEY DEFAULT nextval('vibe_ft.experiment_events_id_seq'),
    experiment_id bigint NOT NULL REFERENCES vibe_ft.experiments (id) ON DELETE CASCADE,
    -- started, ramp, promote, rollback, expire, pause, resume, superseded
    kind          text NOT NULL,
    message       text NOT NULL,
    evidence      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE vibe_ft.experiment_events_id_seq OWNED BY vibe_ft.experiment_events.id;
CREATE INDEX experiment_events_experiment ON vibe_ft.experiment_events (experiment_id, id);
COMMENT ON TABLE vibe_ft.experiment_events IS 'Every experiment decision (automatic or by hand), with the numbers behind it.';

-- The model each dataset serves to everyone outside an experiment: the newest
-- promotion whose model can still be called (none: the base model).
CREATE SEQUENCE vibe_ft.promotions_id_seq;
CREATE TABLE vibe_ft.promotions (
    id            bigint PRIMARY KEY DEFAULT nextval('vibe_ft.promotions_id_seq'),
    dataset_id    uuid NOT NULL REFERENCES vibe_ft.datasets (id) ON DELETE CASCADE,
    job_id        uuid NOT NULL REFERENCES vibe_ft.jobs (id) ON DELETE CASCADE,
    experiment_id bigint REFERENCES vibe_ft.experiments (id) ON DELETE SET NULL,
    -- experiment, expired (on_inconclusive = promote), manual, upgrade (0.5.0's newest model)
    how           text NOT NULL,
    promoted_at   timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE vibe_ft.promotions_id_seq OWNED BY vibe_ft.promotions.id;
CREATE INDEX promotions_dataset ON vibe_ft.promotions (dataset_id, id DESC);
COMMENT ON TABLE vibe_ft.promotions IS 'Models promoted to everyone, newest last: what choose_model serves outside an experiment.';

-- Answers by the model that produced them, in time: what an experiment's arms
-- are measured on. Covering (user, rating): evaluating an experiment reads
-- the index alone, not one heap page per answer (0.48 s instead of 2.5 s
-- for a million answers, bench.py --only experiments).
CREATE INDEX feedback_model_created ON vibe_ft.feedback (model, created_at)
    INCLUDE (user_id, rated_at, thumbs_up, stars);

SELECT pg_catalog.pg_extension_config_dump('vibe_ft.experiments', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.experiments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.experiment_phases', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.experiment_events', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.experiment_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.promotions', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.promotions_id_seq', '');

---------------------------------------------------------------------------
-- Functions in Rust
---------------------------------------------------------------------------
CREATE FUNCTION vibe_ft."bucket"(
	"p_seed" TEXT,
	"p_user_id" TEXT
) RETURNS INT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'bucket_wrapper';
CREATE FUNCTION vibe_ft."evaluate_experiments"() RETURNS TABLE (
	"experiment_id" bigint,
	"dataset_name" TEXT,
	"decision" TEXT,
	"state" TEXT,
	"share" double precision,
	"reason" TEXT
)
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'evaluate_experiments_wrapper';
CREATE FUNCTION vibe_ft."schedule_experiment_evaluation"(
	"p_schedule" TEXT DEFAULT '7 * * * *'
) RETURNS bigint
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'schedule_experiment_evaluation_wrapper';
CREATE FUNCTION vibe_ft."report_html"(
	"p_dataset_id" uuid DEFAULT NULL,
	"p_days" INT DEFAULT 90
) RETURNS TEXT
STABLE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'report_html_wrapper';
CREATE FUNCTION vibe_ft."unschedule_experiment_evaluation"() RETURNS bool
STRICT
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'unschedule_experiment_evaluation_wrapper';

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

-- grant_access grants the new views and not the pg_cron helpers.
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

-- What 0.5.0 served each dataset (its newest succeeded model) is its promoted
-- model: choose_model serves it until an experiment decides otherwise.
INSERT INTO vibe_ft.promotions (dataset_id, job_id, how, promoted_at)
SELECT DISTINCT ON (j.dataset_id) j.dataset_id, j.id, 'upgrade', coalesce(j.finished_at, j.created_at)
  FROM vibe_ft.jobs j
 WHERE j.status OPERATOR(pg_catalog.=) 'succeeded' AND j.fine_tuned_model IS NOT NULL
 ORDER BY j.dataset_id, j.finished_at DESC NULLS LAST, j.created_at DESC;

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
        'ROUTINE vibe_ft.bucket(text, text)', 'ROUTINE vibe_ft.evaluate_experiments()', 'ROUTINE vibe_ft.callable_target(uuid)',
        'ROUTINE vibe_ft.arm_models(uuid, text)', 'ROUTINE vibe_ft.served_job(uuid)', 'ROUTINE public.choose_model(text, text, uuid)',
        'ROUTINE vibe_ft.experiment_policy(uuid)', 'ROUTINE vibe_ft.experiment_event(bigint, text, text, jsonb)', 'ROUTINE vibe_ft.end_experiment(bigint, text, text, text, jsonb, text)',
        'ROUTINE vibe_ft.ramp_experiment(bigint, integer, numeric, text, jsonb)', 'ROUTINE vibe_ft.start_experiment(uuid)', 'ROUTINE vibe_ft.jobs_start_experiment()',
        'ROUTINE vibe_ft.promote_experiment(bigint)', 'ROUTINE vibe_ft.rollback_experiment(bigint)', 'ROUTINE vibe_ft.pause_experiment(bigint)',
        'ROUTINE vibe_ft.resume_experiment(bigint)', 'ROUTINE vibe_ft.experiment_counts(bigint)', 'ROUTINE vibe_ft.report_html(uuid, integer)',
        'ROUTINE vibe_ft.experiment_steps_valid(numeric[])', 'ROUTINE vibe_ft.experiment_jobs_of_dataset()', 'ROUTINE vibe_ft.schedule_experiment_evaluation(text)',
        'ROUTINE vibe_ft.unschedule_experiment_evaluation()', 'TABLE vibe_ft.experiments', 'TABLE vibe_ft.experiment_phases',
        'TABLE vibe_ft.experiment_events', 'TABLE vibe_ft.promotions', 'TABLE vibe_ft.model_ratings',
        'TABLE vibe_ft.experiment_results', 'SEQUENCE vibe_ft.experiments_id_seq', 'SEQUENCE vibe_ft.experiment_events_id_seq',
        'SEQUENCE vibe_ft.promotions_id_seq']
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
        EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON vibe_ft.experiments, vibe_ft.experiment_phases, vibe_ft.experiment_events, vibe_ft.promotions, vibe_ft.model_ratings, vibe_ft.experiment_results TO ' || r;
        EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE vibe_ft.experiments_id_seq, vibe_ft.experiment_events_id_seq, vibe_ft.promotions_id_seq TO ' || r;
        EXECUTE 'GRANT EXECUTE ON FUNCTION vibe_ft.bucket(text, text), vibe_ft.evaluate_experiments(), vibe_ft.callable_target(uuid), vibe_ft.arm_models(uuid, text), vibe_ft.served_job(uuid), public.choose_model(text, text, uuid), vibe_ft.experiment_policy(uuid), vibe_ft.experiment_event(bigint, text, text, jsonb), vibe_ft.end_experiment(bigint, text, text, text, jsonb, text), vibe_ft.ramp_experiment(bigint, integer, numeric, text, jsonb), vibe_ft.start_experiment(uuid), vibe_ft.jobs_start_experiment(), vibe_ft.promote_experiment(bigint), vibe_ft.rollback_experiment(bigint), vibe_ft.pause_experiment(bigint), vibe_ft.resume_experiment(bigint), vibe_ft.experiment_counts(bigint), vibe_ft.report_html(uuid, integer), vibe_ft.experiment_steps_valid(numeric[]), vibe_ft.experiment_jobs_of_dataset() TO ' || r;
    END LOOP;
END
$$;

-- A running worker of this version starts serving this database now.
SELECT vibe_ft.wake_worker();
