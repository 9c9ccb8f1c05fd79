-- Providers after OpenAI: switching a dataset's provider with one update,
-- Together's data rules and hyperparameters checked before anything is
-- uploaded, token counts labelled as estimates, base-model dates, the model
-- registry (what can be called, by which name, where) and the guards on
-- deploying a model to paid hardware.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
-- Uuids vary from run to run: show them as <uuid>.
CREATE FUNCTION pg_temp.t(s text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g') $$;

-- A dataset on OpenAI, switched to Together with one update.
INSERT INTO vibe_ft.datasets (name, validation_share) VALUES ('switching', 0) RETURNING id AS ds \gset
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score)
SELECT :'ds', jsonb_build_array(jsonb_build_object('role', 'system', 'content', 'You are a coach.'),
                                jsonb_build_object('role', 'user', 'content', 'question ' || i),
                                jsonb_build_object('role', 'assistant', 'content', 'answer ' || i)), 8
  FROM generate_series(1, 12) i;
-- What OpenAI takes and Together does not: two user turns in a row, two
-- assistant turns in a row.
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES
    (:'ds', '[{"role":"user","content":"hi"},{"role":"user","content":"are you there?"},{"role":"assistant","content":"yes"}]', 8),
    (:'ds', '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"assistant","content":"how can I help?"}]', 8);
SELECT split, valid, examples, examples_with_problems, encoding, tokens_exact
  FROM vibe_ft.validate_dataset(:'ds') WHERE split = 'train';
UPDATE vibe_ft.datasets SET provider = 'together', base_model = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference'
 WHERE id = :'ds';
-- Together's rules, each problem named per example; counts are estimates, and say so.
SELECT split, valid, examples, examples_with_problems, jsonb_pretty(problems) AS problems, encoding, tokens_exact
  FROM vibe_ft.validate_dataset(:'ds') WHERE split = 'train';

-- A job of the seed's default model on a Together dataset trains the
-- dataset's own model; its export fails on the data, before any upload.
SELECT create_finetuning_job(:'ds') AS job \gset
SELECT provider, base_model FROM vibe_ft.jobs WHERE id = :'job';
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, error_code, pg_temp.t(error_message) AS error_message, training_file_id
  FROM vibe_ft.jobs WHERE id = :'job';
SELECT message FROM vibe_ft.job_events WHERE job_id = :'job' AND kind = 'note' ORDER BY id;

-- Hyperparameters Together cannot take fail the job before any upload too.
DELETE FROM vibe_ft.examples WHERE dataset_id = :'ds' AND messages @> '[{"role":"user","content":"hi"}]';
SELECT create_finetuning_job(:'ds', p_hyperparameters => '{"learning_rate_multiplier": 2}') AS job \gset
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, error_code, error_message FROM vibe_ft.jobs WHERE id = :'job';
-- So do Together's suffix rule and a base model that takes no more jobs.
SELECT create_finetuning_job(:'ds', p_suffix => 'coach v2') AS job \gset
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, error_code, error_message FROM vibe_ft.jobs WHERE id = :'job';
-- The data is valid for Together now. No Together price ships: the estimate
-- says so, and where the job's estimate will come from.
SELECT split, valid, examples, examples_with_problems FROM vibe_ft.validate_dataset(:'ds');
SELECT training_tokens > 0 AS counted, estimated_cost_usd, note FROM vibe_ft.estimate_cost(:'ds');
INSERT INTO vibe_ft.prices (provider, base_model, training_per_million)
VALUES ('together', 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference', 0.48);
SELECT estimated_cost_usd IS NOT NULL AS priced, regexp_replace(note, '^[0-9]+ tokens', 'N tokens') AS note
  FROM vibe_ft.estimate_cost(:'ds');
DELETE FROM vibe_ft.prices WHERE provider = 'together';

-- Base models' dates are data: OpenAI's removals ship with vibe_ft.
SELECT provider, base_model, training_ends, serving_ends FROM vibe_ft.model_lifecycle ORDER BY 1, 2;
SELECT training_ends, serving_ends FROM vibe_ft.model_lifecycle_of('openai', 'ft:gpt-4o-mini-2024-07-18:org:coach:abc');
SELECT count(*) FROM vibe_ft.model_lifecycle_of('together', 'Qwen/Qwen3-8B');
SELECT pg_temp.try($$UPDATE vibe_ft.model_lifecycle SET serving_ends = NULL WHERE provider = 'openai'$$);
SELECT pg_temp.try($$DELETE FROM vibe_ft.hardware_prices$$);
-- A base model past its training end: a job on it fails before any upload.
INSERT INTO vibe_ft.datasets (name, validation_share, base_model) VALUES ('retired', 0, 'gpt-4.1-nano-2025-04-14')
RETURNING id AS old \gset
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score)
SELECT :'old', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'q' || i),
                                 jsonb_build_object('role', 'assistant', 'content', 'a' || i)), 8
  FROM generate_series(1, 12) i;
SELECT create_finetuning_job(:'old', 'gpt-4.1-nano-2025-04-14') AS job \gset
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, error_code, error_message FROM vibe_ft.jobs WHERE id = :'job';

-- The model registry: every fine-tuned model, the name to call, where, and
-- whether it can be called now.
INSERT INTO vibe_ft.jobs (dataset_id, provider, base_model, status, fine_tuned_model, finished_at) VALUES
    (:'old', 'openai', 'gpt-4o-mini-2024-07-18', 'succeeded', 'ft:gpt-4o-mini-2024-07-18:org:coach:1', '2026-11-01'),
    (:'ds', 'together', 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference', 'succeeded',
     'acct/Meta-Llama-3.1-8B-Instruct-Reference:coach:ft-1', '2026-11-02');
SELECT provider, base_model, fine_tuned_model, serve_model, base_url, retires_at, callable,
       pg_temp.t(not_callable_because) AS not_callable_because
  FROM vibe_ft.models WHERE dataset_id IN (:'ds', :'old') ORDER BY finished_at;
-- Not deployed, the Together model is never handed out.
SELECT model_id FROM get_latest_finetuned_model('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');
SELECT count(*) FROM vibe_ft.serving_model(p_dataset_id => :'ds');
-- On a running endpoint, its name is what an app calls.
INSERT INTO vibe_ft.deployments (job_id, provider, model, endpoint_id, endpoint_name, hardware, min_replicas, max_replicas,
                                 hourly_usd, max_hourly_usd, inactive_timeout_minutes, state)
SELECT id, provider, fine_tuned_model, 'endpoint-1', 'acct/Meta-Llama-3.1-8B-endpoint-1', '1x_nvidia_h100_80gb_sxm', 1, 1,
       3.99, 5, 60, 'STARTED'
  FROM vibe_ft.jobs WHERE dataset_id = :'ds' AND status = 'succeeded';
SELECT model_id FROM get_latest_finetuned_model('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');
SELECT provider, base_url, model, fine_tuned_model FROM vibe_ft.serving_model(p_dataset_id => :'ds');
-- Stopped (by the provider when idle, or by stop_deployment): not callable.
UPDATE vibe_ft.deployments SET state = 'STOPPED';
SELECT callable, not_callable_because FROM vibe_ft.models WHERE dataset_id = :'ds';
SELECT count(*) FROM get_latest_finetuned_model('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');
-- A retired base model's fine-tunes are never handed out either.
SELECT model_id FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18');
INSERT INTO vibe_ft.model_lifecycle (provider, base_model, valid_from, serving_ends, note)
VALUES ('openai', 'gpt-4o-mini-2024-07-18', current_date, '2026-01-01 00:00+00', 'a test');
SELECT count(*) FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18');
SELECT callable, not_callable_because FROM vibe_ft.models WHERE fine_tuned_model LIKE 'ft:gpt-4o-mini%:coach:1';
-- The status view warns 30 days before a model in use retires.
UPDATE vibe_ft.model_lifecycle SET serving_ends = now() + interval '10 days' WHERE source = 'user';
SELECT w LIKE 'ft:gpt-4o-mini-2024-07-18:org:coach:1 (openai, dataset retired) can no longer be called after %' AS warned
  FROM vibe_ft.status, unnest(model_warnings) w WHERE w LIKE 'ft:%';
SELECT w FROM vibe_ft.status, unnest(model_warnings) w WHERE w LIKE 'dataset retired trains%';
DELETE FROM vibe_ft.model_lifecycle WHERE source = 'user';

-- Deploying costs money every minute: only on explicit request, with a cap,
-- never for a provider that serves per token, never by grant_access's roles.
SELECT id AS tg_job FROM vibe_ft.jobs WHERE dataset_id = :'ds' AND status = 'succeeded' \gset
SELECT id AS oa_job FROM vibe_ft.jobs WHERE dataset_id = :'old' AND status = 'succeeded' \gset
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, NULL)', :'tg_job'));
SELECT pg_temp.t(pg_temp.try('SELECT * FROM vibe_ft.deploy_model(gen_random_uuid(), 10)'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 10)', :'oa_job'));
SELECT pg_temp.t(pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 10)', :'job')));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 5, p_max_replicas => 2)', :'tg_job'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, %L)', :'tg_job', 'NaN'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, -1)', :'tg_job'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 50, %L)', :'tg_job', '8x_tpu'));
SELECT pg_temp.try($$INSERT INTO vibe_ft.hardware_prices (provider, hardware, hourly_usd) VALUES ('together', '8x_tpu', 'NaN')$$);
SELECT pg_temp.try($$INSERT INTO vibe_ft.hardware_prices (provider, hardware, hourly_usd, source) VALUES ('together', '8x_tpu', 1, 'vibe_ft')$$);
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 50, p_min_replicas => 3)', :'tg_job'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.deploy_model(%L, 50, p_inactive_timeout_minutes => -1)', :'tg_job'));
SELECT pg_temp.t(pg_temp.try(format('SELECT vibe_ft.stop_deployment(%L)', :'oa_job')));
SELECT has_function_privilege('regress_backend', 'vibe_ft.deploy_model(uuid, numeric, text, integer, integer, integer)', 'execute') AS deploy,
       has_function_privilege('regress_backend', 'vibe_ft.stop_deployment(uuid)', 'execute') AS stop,
       has_function_privilege('regress_backend', 'vibe_ft.serving_model(text, uuid)', 'execute') AS serving_model,
       has_table_privilege('regress_backend', 'vibe_ft.models', 'select') AS models,
       has_table_privilege('regress_backend', 'vibe_ft.deployments', 'select') AS read_deployments,
       has_table_privilege('regress_backend', 'vibe_ft.deployments', 'insert')
         OR has_table_privilege('regress_backend', 'vibe_ft.deployments', 'update')
         OR has_table_privilege('regress_backend', 'vibe_ft.hardware_prices', 'insert')
         OR has_table_privilege('regress_backend', 'vibe_ft.hardware_prices', 'update') AS write_money;
SELECT vibe_ft.needs_deployment('together'), vibe_ft.needs_deployment('openai'), vibe_ft.needs_deployment('x'),
       vibe_ft.provider_base_url('together'), vibe_ft.provider_base_url('openai'), vibe_ft.provider_base_url(NULL);

-- Leave nothing behind for the files after this one.
DELETE FROM vibe_ft.deployments;
DELETE FROM vibe_ft.jobs WHERE dataset_id IN (:'ds', :'old');
DELETE FROM vibe_ft.datasets WHERE id IN (:'ds', :'old');
