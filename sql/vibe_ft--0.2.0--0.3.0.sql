-- vibe_ft 0.2.0 -> 0.3.0: users' feedback to training data (feedback table and
-- submit_feedback, generate_examples, preference pairs and DPO export,
-- redaction, forget_user), validation, cost estimates and prices, a monthly
-- budget. Hand-written; once released, never edited. A fresh 0.3.0 install and
-- 0.2.0 + this script must define the same objects (checked by tests/e2e:
-- test_upgrade_matches_a_fresh_install).
\echo Use "ALTER EXTENSION vibe_ft UPDATE TO '0.3.0'" to load this file. \quit

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
        CHECK (cardinality(score_stars) = 5 AND 0 <= ALL (score_stars) AND 10 >= ALL (score_stars)),
    -- a preference pair's rejected answer scores at most this
    ADD COLUMN max_rejected_score numeric NOT NULL DEFAULT 3 CHECK (max_rejected_score BETWEEN 0 AND 10),
    ADD COLUMN redact             boolean NOT NULL DEFAULT true,
    ADD COLUMN redact_function    regprocedure,
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
    rated_at    timestamptz NOT NULL DEFAULT now(),
    -- sha256 of the canonical jsonb text of messages; set by a trigger
    prefix_hash bytea NOT NULL,
    change_seq  bigint NOT NULL DEFAULT nextval('vibe_ft.feedback_change_seq'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feedback_has_rating CHECK (thumbs_up IS NOT NULL OR stars IS NOT NULL),
    -- a re-rating of the same answer by the same user replaces the earlier one
    CONSTRAINT feedback_once_per_answer UNIQUE (user_id, answer_id)
);
ALTER SEQUENCE vibe_ft.feedback_id_seq OWNED BY vibe_ft.feedback.id;
ALTER SEQUENCE vibe_ft.feedback_change_seq OWNED BY vibe_ft.feedback.change_seq;
CREATE INDEX feedback_changes ON vibe_ft.feedback (change_seq);
CREATE INDEX feedback_prefix ON vibe_ft.feedback (prefix_hash);
COMMENT ON TABLE vibe_ft.feedback IS 'Users'' ratings of answers (thumbs and/or stars); vibe_ft.generate_examples() turns them into examples and preference pairs.';

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

SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.feedback_change_seq', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.preference_examples', '');
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.preference_examples_id_seq', '');
-- The rows vibe_ft ships come back with CREATE EXTENSION; the user's are dumped.
SELECT pg_catalog.pg_extension_config_dump('vibe_ft.prices', 'WHERE source <> ''vibe_ft''');

-- New Rust functions (as cargo pgrx schema generates them for 0.3.0).
CREATE FUNCTION vibe_ft."check_feedback"(
	"p_messages" jsonb,
	"p_answer" TEXT
) RETURNS bool
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'check_feedback_wrapper';

CREATE FUNCTION vibe_ft."count_message_tokens"(
	"p_messages" jsonb,
	"p_model" TEXT DEFAULT 'gpt-4o-2024-08-06'
) RETURNS INT
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'count_message_tokens_wrapper';

CREATE FUNCTION vibe_ft."count_tokens"(
	"p_text" TEXT,
	"p_model" TEXT DEFAULT 'gpt-4o-2024-08-06'
) RETURNS INT
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'count_tokens_wrapper';

CREATE FUNCTION vibe_ft."feedback_example"(
	"p_messages" jsonb,
	"p_answer" TEXT,
	"p_redact" bool
) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'feedback_example_wrapper';

CREATE FUNCTION vibe_ft."feedback_score"(
	"p_thumbs_up" bool,
	"p_stars" INT,
	"p_up" double precision DEFAULT 8.0,
	"p_down" double precision DEFAULT 2.0,
	"p_stars_scores" double precision[] DEFAULT '{0,2.5,5,7.5,10}'
) RETURNS double precision
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'feedback_score_wrapper';

CREATE FUNCTION vibe_ft."preference_line"(
	"p_input" jsonb,
	"p_preferred" TEXT,
	"p_non_preferred" TEXT
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'preference_line_wrapper';

CREATE FUNCTION vibe_ft."redact_messages"(
	"p_messages" jsonb
) RETURNS jsonb
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'redact_messages_wrapper';

CREATE FUNCTION vibe_ft."redact_text"(
	"p_text" TEXT
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'redact_text_wrapper';

CREATE FUNCTION vibe_ft."schedule_example_generation"(
	"p_schedule" TEXT DEFAULT '0 1 * * *'
) RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'schedule_example_generation_wrapper';

CREATE FUNCTION vibe_ft."training_epochs"(
	"p_hyperparameters" jsonb,
	"p_train_examples" bigint
) RETURNS INT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'training_epochs_wrapper';

CREATE FUNCTION vibe_ft."unschedule_example_generation"() RETURNS bool
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'unschedule_example_generation_wrapper';

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
	"encoding" TEXT 
)
LANGUAGE c
AS 'MODULE_PATHNAME', 'validate_dataset_wrapper';

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

-- The caller-facing view gains the job's tokens, cost estimate and erasure mark.
CREATE OR REPLACE VIEW public.finetuning_job_stats WITH (security_invoker = true) AS
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

-- grant_access leaves out the new scheduling and feedback-grant helpers.
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
                                      'schedule_job_runner', 'unschedule_job_runner',
                                      'schedule_example_generation', 'unschedule_example_generation',
                                      'grant_feedback')
    LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, role_name);
    END LOOP;
END
$$;

-- Nothing new for PUBLIC; in public, none of Supabase's default grants either.
-- (Grants a user gave to existing objects are left alone.)
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
               END AS target,
               coalesce(p.proname, c.relname) IN (
                   'check_feedback', 'count_message_tokens', 'count_tokens', 'feedback_example',
                   'feedback_score', 'preference_line', 'redact_messages', 'redact_text',
                   'schedule_example_generation', 'training_epochs', 'unschedule_example_generation',
                   'validate_dataset', 'feedback_before_write', 'submit_feedback', 'grant_feedback',
                   'training_price', 'prices_keep_shipped', 'estimate_cost', 'export_preference_jsonl',
                   'check_redact_function', 'generate_examples', 'forget_user',
                   'feedback', 'feedback_id_seq', 'feedback_change_seq', 'preference_examples',
                   'preference_examples_id_seq', 'prices') AS is_new
          FROM pg_depend dep
          JOIN pg_extension x ON x.oid = dep.refobjid AND x.extname = 'vibe_ft'
          LEFT JOIN pg_class c ON dep.classid = 'pg_class'::regclass AND c.oid = dep.objid
          LEFT JOIN pg_proc p ON dep.classid = 'pg_proc'::regclass AND p.oid = dep.objid
         WHERE dep.deptype = 'e' AND dep.classid IN ('pg_proc'::regclass, 'pg_class'::regclass)
    LOOP
        FOREACH grantee IN ARRAY grantees LOOP
            IF grantee = 'PUBLIC' OR obj.is_new THEN
                EXECUTE format('REVOKE ALL ON %s FROM %s', obj.target, grantee);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
