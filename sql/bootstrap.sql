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


-- User data survives pg_dump / restore.
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.datasets', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.examples', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.examples_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.job_events', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.job_events_id_seq', '');
