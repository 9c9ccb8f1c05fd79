-- vibe_ft data model. Runs first in CREATE EXTENSION; everything lives in the
-- extension's own schema (vibe_ft), which is not exposed over HTTP.

CREATE TABLE vibe_ft.datasets (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                  text NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    description           text,
    base_model            text NOT NULL DEFAULT 'gpt-4o-2024-08-06' CHECK (btrim(base_model) <> ''),
    provider              text NOT NULL DEFAULT 'openai' CHECK (btrim(provider) <> ''),
    -- policy: the monthly check and job snapshots use these
    min_new_examples      integer NOT NULL DEFAULT 100 CHECK (min_new_examples >= 0),
    min_days_between_jobs integer NOT NULL DEFAULT 30 CHECK (min_days_between_jobs >= 0),
    min_quality_score     numeric NOT NULL DEFAULT 6 CHECK (min_quality_score BETWEEN 0 AND 10),
    validation_share      numeric NOT NULL DEFAULT 0.1 CHECK (validation_share >= 0 AND validation_share < 1),
    auto_finetune         boolean NOT NULL DEFAULT false,
    hyperparameters       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(hyperparameters) = 'object'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vibe_ft.datasets IS 'A named collection of training examples with its fine-tuning policy.';

-- An explicit sequence (not an identity column) so pg_dump keeps its position.
CREATE SEQUENCE vibe_ft.examples_id_seq;
CREATE TABLE vibe_ft.examples (
    id            bigint PRIMARY KEY DEFAULT nextval('vibe_ft.examples_id_seq'),
    dataset_id    uuid NOT NULL REFERENCES vibe_ft.datasets (id) ON DELETE CASCADE,
    messages      jsonb NOT NULL,
    quality_score numeric NOT NULL CHECK (quality_score BETWEEN 0 AND 10),
    split         text NOT NULL CHECK (split IN ('train', 'validation')),
    -- sha256 of the canonical jsonb text of messages; set by a trigger
    content_hash  bytea NOT NULL,
    source        text,
    source_id     text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT examples_once_per_dataset UNIQUE (dataset_id, content_hash)
);
ALTER SEQUENCE vibe_ft.examples_id_seq OWNED BY vibe_ft.examples.id;
-- Export order (dataset, split, id) and "new since id N" counts, both index-only.
CREATE INDEX examples_dataset_split_id ON vibe_ft.examples (dataset_id, split, id);
COMMENT ON TABLE vibe_ft.examples IS 'One training example: an OpenAI chat messages array with a quality score and split.';

CREATE TABLE vibe_ft.jobs (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id             uuid NOT NULL REFERENCES vibe_ft.datasets (id) ON DELETE RESTRICT,
    provider               text NOT NULL DEFAULT 'openai',
    base_model             text NOT NULL,
    method                 text NOT NULL DEFAULT 'supervised' CHECK (method IN ('supervised', 'dpo')),
    hyperparameters        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(hyperparameters) = 'object'),
    suffix                 text CHECK (char_length(suffix) BETWEEN 1 AND 64),
    status                 text NOT NULL DEFAULT 'pending' CHECK (status IN (
                               'pending', 'exporting', 'uploading', 'submitted',
                               'validating_files', 'queued', 'running', 'paused',
                               'succeeded', 'failed', 'cancelled')),
    provider_job_id        text UNIQUE,
    training_file_id       text,
    validation_file_id     text,
    fine_tuned_model       text,
    trained_tokens         bigint,
    metrics                jsonb NOT NULL DEFAULT '{}',
    error_message          text,
    error_code             text,
    -- snapshot of the data at creation (and again at export time)
    min_quality_score      numeric,
    train_examples         integer,
    validation_examples    integer,
    avg_train_quality      numeric,
    avg_validation_quality numeric,
    last_example_id        bigint,
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0, the job runner (appended, as ALTER TABLE in the upgrade does)
    seed                   bigint,
    provider_status        text,
    provider_event_cursor  text,
    estimated_finish_at    timestamptz,
    attempts               integer NOT NULL DEFAULT 0,
    next_attempt_at        timestamptz
);
-- At most one unfinished job per dataset, whatever the callers do.
CREATE UNIQUE INDEX jobs_one_unfinished_per_dataset ON vibe_ft.jobs (dataset_id)
    WHERE status NOT IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_dataset_created ON vibe_ft.jobs (dataset_id, created_at DESC);
CREATE INDEX jobs_succeeded_by_model ON vibe_ft.jobs (base_model, finished_at DESC)
    WHERE status = 'succeeded' AND fine_tuned_model IS NOT NULL;
-- The runner's queue: unfinished jobs by when they are next due.
CREATE INDEX jobs_due ON vibe_ft.jobs (next_attempt_at)
    WHERE status NOT IN ('succeeded', 'failed', 'cancelled');
COMMENT ON TABLE vibe_ft.jobs IS 'One fine-tuning job and the snapshot of the data it was made from.';

CREATE SEQUENCE vibe_ft.job_events_id_seq;
CREATE TABLE vibe_ft.job_events (
    id          bigint PRIMARY KEY DEFAULT nextval('vibe_ft.job_events_id_seq'),
    job_id      uuid NOT NULL REFERENCES vibe_ft.jobs (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('status', 'provider', 'error', 'note')),
    from_status text,
    to_status   text,
    message     text,
    data        jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER SEQUENCE vibe_ft.job_events_id_seq OWNED BY vibe_ft.job_events.id;
CREATE INDEX job_events_job_id ON vibe_ft.job_events (job_id, id);
CREATE INDEX job_events_created_at ON vibe_ft.job_events (created_at);
CREATE INDEX job_events_errors ON vibe_ft.job_events (id) WHERE kind = 'error';
COMMENT ON TABLE vibe_ft.job_events IS 'Status changes, provider events and errors of jobs; pruned by count and age.';


---------------------------------------------------------------------------
-- 0.3.0: users' feedback in, training data out, checked before money is spent.
-- (Appended, as ALTER TABLE in the upgrade script does, so both define the same.)
---------------------------------------------------------------------------
ALTER TABLE vibe_ft.datasets
    -- what a job trains: supervised (examples) or dpo (preference_examples)
    ADD COLUMN method             text NOT NULL DEFAULT 'supervised' CHECK (method IN ('supervised', 'dpo')),
    -- vibe_ft.generate_examples() fills this dataset from vibe_ft.feedback
    ADD COLUMN from_feedback      boolean NOT NULL DEFAULT false,
    ADD COLUMN feedback_persona   text,
    -- the quality score of a rating (0..10); thumbs and stars together: the mean
    ADD COLUMN score_thumbs_up    numeric NOT NULL DEFAULT 8 CHECK (score_thumbs_up BETWEEN 0 AND 10),
    ADD COLUMN score_thumbs_down  numeric NOT NULL DEFAULT 2 CHECK (score_thumbs_down BETWEEN 0 AND 10),
    ADD COLUMN score_stars        numeric[] NOT NULL DEFAULT '{0,2.5,5,7.5,10}'
        CHECK (cardinality(score_stars) = 5 AND array_position(score_stars, NULL) IS NULL
               AND 0 <= ALL (score_stars) AND 10 >= ALL (score_stars)),
    -- a preference pair's rejected answer scores at most this
    ADD COLUMN max_rejected_score numeric NOT NULL DEFAULT 3 CHECK (max_rejected_score BETWEEN 0 AND 10),
    ADD COLUMN redact             boolean NOT NULL DEFAULT true,
    -- the schema-qualified signature of a (text) RETURNS text function; text,
    -- not regprocedure: a reg* column would stop pg_upgrade
    ADD COLUMN redact_function    text,
    ADD COLUMN monthly_budget_usd numeric CHECK (monthly_budget_usd >= 0),
    -- feedback changes up to this vibe_ft.feedback.change_seq are in the dataset
    ADD COLUMN feedback_watermark bigint NOT NULL DEFAULT 0;

ALTER TABLE vibe_ft.jobs
    ADD COLUMN training_tokens      bigint,
    ADD COLUMN validation_tokens    bigint,
    ADD COLUMN estimated_cost_usd   numeric,
    ADD COLUMN erasure_requested_at timestamptz;

CREATE INDEX examples_feedback ON vibe_ft.examples (source_id) WHERE source = 'feedback';

CREATE SEQUENCE vibe_ft.feedback_id_seq;
-- Every write of a rating takes the next value: generation reads what changed.
CREATE SEQUENCE vibe_ft.feedback_change_seq;
CREATE TABLE vibe_ft.feedback (
    id          bigint PRIMARY KEY DEFAULT nextval('vibe_ft.feedback_id_seq'),
    user_id     text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 256),
    answer_id   text NOT NULL CHECK (char_length(answer_id) BETWEEN 1 AND 256),
    -- the conversation before the answer, OpenAI chat form
    messages    jsonb NOT NULL,
    answer      text NOT NULL,
    model       text CHECK (char_length(model) <= 256),
    thumbs_up   boolean,
    stars       smallint CHECK (stars BETWEEN 1 AND 5),
    persona     text CHECK (char_length(persona) <= 256),
    -- NULL until the answer is rated
    rated_at    timestamptz,
    -- sha256 of the canonical jsonb text of messages; set by a trigger
    prefix_hash bytea NOT NULL,
    -- set by the trigger, under the lock generate_examples takes (see finalize.sql)
    change_seq  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- a re-rating of the same answer by the same user replaces the earlier one
    CONSTRAINT feedback_once_per_answer UNIQUE (user_id, answer_id)
);
ALTER SEQUENCE vibe_ft.feedback_id_seq OWNED BY vibe_ft.feedback.id;
ALTER SEQUENCE vibe_ft.feedback_change_seq OWNED BY vibe_ft.feedback.change_seq;
CREATE INDEX feedback_changes ON vibe_ft.feedback (change_seq);
CREATE INDEX feedback_prefix ON vibe_ft.feedback (prefix_hash);
COMMENT ON TABLE vibe_ft.feedback IS 'Answers the app''s backend served (record_answer) and their users'' ratings (thumbs and/or stars, submit_feedback); vibe_ft.generate_examples() turns rated ones into examples and preference pairs.';

CREATE SEQUENCE vibe_ft.preference_examples_id_seq;
CREATE TABLE vibe_ft.preference_examples (
    id                        bigint PRIMARY KEY DEFAULT nextval('vibe_ft.preference_examples_id_seq'),
    dataset_id                uuid NOT NULL REFERENCES vibe_ft.datasets (id) ON DELETE CASCADE,
    prefix_hash               bytea NOT NULL,
    -- the conversation before the answers, and the liked and disliked answers
    input                     jsonb NOT NULL CHECK (jsonb_typeof(input) = 'array'),
    preferred                 text NOT NULL,
    non_preferred             text NOT NULL,
    preferred_feedback_id     bigint,
    non_preferred_feedback_id bigint,
    quality_score             numeric NOT NULL CHECK (quality_score BETWEEN 0 AND 10),
    split                     text NOT NULL CHECK (split IN ('train', 'validation')),
    metadata                  jsonb NOT NULL DEFAULT '{}',
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT preference_examples_once_per_prefix UNIQUE (prefix_hash, dataset_id)
);
ALTER SEQUENCE vibe_ft.preference_examples_id_seq OWNED BY vibe_ft.preference_examples.id;
CREATE INDEX preference_examples_dataset_split_id ON vibe_ft.preference_examples (dataset_id, split, id);
COMMENT ON TABLE vibe_ft.preference_examples IS 'Preference (DPO) pairs: a liked and a disliked answer to the same conversation.';

-- Prices are data: add a row with a newer valid_from when they change (the
-- newest one in effect wins). Rows shipped with vibe_ft are kept as history.
CREATE TABLE vibe_ft.prices (
    provider             text NOT NULL,
    base_model           text NOT NULL,
    valid_from           date NOT NULL DEFAULT current_date,
    training_per_million numeric NOT NULL CHECK (training_per_million >= 0),
    input_per_million    numeric CHECK (input_per_million >= 0),
    output_per_million   numeric CHECK (output_per_million >= 0),
    currency             text NOT NULL DEFAULT 'USD',
    source               text NOT NULL DEFAULT 'user',
    PRIMARY KEY (provider, base_model, valid_from)
);
COMMENT ON TABLE vibe_ft.prices IS 'Fine-tuning prices per 1M tokens; insert a row with a newer valid_from to change one.';
INSERT INTO vibe_ft.prices (provider, base_model, valid_from, training_per_million, input_per_million, output_per_million, source) VALUES
    ('openai', 'gpt-4o-2024-08-06',       '2025-08-01', 25.00, 3.75, 15.00, 'vibe_ft'),
    ('openai', 'gpt-4o-mini-2024-07-18',  '2025-08-01',  3.00, 0.30,  1.20, 'vibe_ft'),
    ('openai', 'gpt-4.1-2025-04-14',      '2025-08-01', 25.00, 3.00, 12.00, 'vibe_ft'),
    ('openai', 'gpt-4.1-mini-2025-04-14', '2025-08-01',  5.00, 0.80,  3.20, 'vibe_ft');


---------------------------------------------------------------------------
-- 0.4.0: answers are recorded by the backend, users only rate them; jobs know
-- the installation that created them and how often they exported.
-- (Appended, as ALTER TABLE in the upgrade script does.)
---------------------------------------------------------------------------
ALTER TABLE vibe_ft.feedback
    -- the provider that produced the answer (the model is in model)
    ADD COLUMN provider text CHECK (char_length(provider) BETWEEN 1 AND 64),
    ADD CONSTRAINT feedback_rated_at CHECK ((thumbs_up IS NULL AND stars IS NULL) = (rated_at IS NULL));
-- submit_feedback finds an answer by its id alone too.
CREATE INDEX feedback_answer ON vibe_ft.feedback (answer_id);

-- This installation of vibe_ft: a row CREATE EXTENSION makes and pg_dump does
-- not copy (the table is not marked for dumping), so a restored copy of a
-- database is another installation and keeps its hands off the original's
-- provider jobs and files until told otherwise (vibe_ft.adopt_jobs).
CREATE TABLE vibe_ft.installation (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    one_row    boolean NOT NULL DEFAULT true UNIQUE CHECK (one_row)
);
INSERT INTO vibe_ft.installation DEFAULT VALUES;
COMMENT ON TABLE vibe_ft.installation IS 'This installation of vibe_ft (not dumped: a restored copy is another installation).';
CREATE FUNCTION vibe_ft.installation_id() RETURNS uuid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.id FROM vibe_ft.installation i
$$;

ALTER TABLE vibe_ft.jobs
    -- the installation that created the job: only it acts on the job at the provider
    ADD COLUMN installation_id uuid DEFAULT vibe_ft.installation_id(),
    -- exports of the job's files (a job whose data is erased before it reaches
    -- a provider job exports again, under new file names)
    ADD COLUMN export_round    integer NOT NULL DEFAULT 0 CHECK (export_round >= 0);

-- User data survives pg_dump / restore.
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.datasets', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.examples', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.examples_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.job_events', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.job_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback_change_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.preference_examples', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.preference_examples_id_seq', '');
-- The rows vibe_ft ships come back with CREATE EXTENSION; the user's are dumped.
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.prices', 'WHERE source <> ''vibe_ft''');

---------------------------------------------------------------------------
-- 0.5.0: providers after OpenAI (Together), what a job really cost, when a
-- base model stops training and serving, and where a model is served.
-- (Appended, as ALTER TABLE in the upgrade script does.)
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
