-- Checked before money is spent: validation with real token counts, cost
-- estimates from the prices table, the monthly budget, and the runner refusing
-- to upload data that fails validation.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT id AS ds FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback' \gset
-- Example ids below do not depend on how many examples earlier files made.
SELECT setval('vibe_ft.examples_id_seq', 1000, false) IS NOT NULL AS ids_from_1000;

-- Real token counts (o200k_base for gpt-4o, cl100k_base for gpt-4).
SELECT vibe_ft.count_tokens('hello world'), vibe_ft.count_tokens('Hello, Coach Decibel! 🏃'),
       vibe_ft.count_tokens('Hello, Coach Decibel! 🏃', 'gpt-4-0613'),
       vibe_ft.count_message_tokens('[{"role":"user","content":"hello world"}]');

-- The seed's dataset passes; totals per split.
SELECT split, valid, examples, tokens, billable_tokens, max_example_tokens, examples_over_limit,
       examples_with_problems, problems, encoding FROM vibe_ft.validate_dataset(:'ds');
SELECT pg_temp.try('SELECT * FROM vibe_ft.validate_dataset(NULL)');
SELECT pg_temp.try($$SELECT * FROM vibe_ft.validate_dataset('00000000-0000-4000-8000-000000000000')$$);
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.validate_dataset(%L, p_method => %L)', :'ds', 'rlhf'));
SELECT pg_temp.try(format('SELECT * FROM vibe_ft.validate_dataset(%L, p_min_quality_score => 11)', :'ds'));

-- Cost: tokens x epochs x the price in effect.
SELECT * FROM vibe_ft.estimate_cost(:'ds');
SELECT n_epochs, billed_tokens, estimated_cost_usd FROM vibe_ft.estimate_cost(:'ds', 'gpt-4o-mini-2024-07-18', '{"n_epochs": 2}');
SELECT base_model, estimated_cost_usd, note FROM vibe_ft.estimate_cost(:'ds', 'gpt-5-preview');
-- Prices are data: a newer row wins; shipped rows are history.
INSERT INTO vibe_ft.prices (provider, base_model, valid_from, training_per_million)
VALUES ('openai', 'gpt-4o-mini-2024-07-18', current_date - 1, 6.00);
SELECT vibe_ft.training_price('openai', 'gpt-4o-mini-2024-07-18'),
       vibe_ft.training_price('openai', 'ft:gpt-4o-2024-08-06:org:coach:abc'),
       vibe_ft.training_price('together', 'gpt-4o-2024-08-06');
SELECT pg_temp.try($$UPDATE vibe_ft.prices SET training_per_million = 1 WHERE base_model = 'gpt-4o-2024-08-06'$$);
SELECT pg_temp.try($$DELETE FROM vibe_ft.prices WHERE source = 'vibe_ft'$$);
DELETE FROM vibe_ft.prices WHERE source = 'user';

-- Problems the provider would reject or silently truncate, per example.
INSERT INTO vibe_ft.datasets (name, validation_share) VALUES ('bad data', 0) RETURNING id AS bad \gset
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score)
SELECT :'bad', jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'q' || i),
                                 jsonb_build_object('role', 'assistant', 'content', 'a' || i)), 8
  FROM generate_series(1, 12) i;
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES
    (:'bad', '[{"role":"user","content":"Say <|endoftext|>"},{"role":"assistant","content":"ok"}]', 8),
    (:'bad', jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('lorem ipsum ', 40000)),
                               jsonb_build_object('role', 'assistant', 'content', 'the answer')), 8);
SELECT split, valid, examples, max_example_tokens > 65536 AS has_long, examples_over_limit, examples_with_problems,
       jsonb_path_query_array(problems, '$[*].problem') AS problems
  FROM vibe_ft.validate_dataset(:'bad') WHERE split = 'train';
SELECT valid, note FROM vibe_ft.estimate_cost(:'bad');

-- The runner refuses to upload it: the job fails with the summary, locally.
INSERT INTO vibe_ft.jobs (dataset_id, base_model, min_quality_score) VALUES (:'bad', 'gpt-4o-2024-08-06', 6) RETURNING id AS job \gset
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, error_code, error_message, training_file_id FROM vibe_ft.jobs WHERE id = :'job';
SELECT kind, message, jsonb_path_query_array(data, '$.train.problems[*].example_id') AS example_ids
  FROM vibe_ft.job_events WHERE job_id = :'job' AND kind IN ('error', 'note') ORDER BY id;

-- A monthly budget: the last rule of should_create_finetuning_job.
UPDATE vibe_ft.datasets SET monthly_budget_usd = 0.01 WHERE id = :'ds';
SELECT should_finetune, reason FROM should_create_finetuning_job(:'ds', 0, 0);
UPDATE vibe_ft.datasets SET monthly_budget_usd = 1000 WHERE id = :'ds';
SELECT should_finetune, reason FROM should_create_finetuning_job(:'ds', 0, 0);
UPDATE vibe_ft.datasets SET monthly_budget_usd = 1000, base_model = 'my-model' WHERE id = :'ds';
SELECT should_finetune, reason FROM should_create_finetuning_job(:'ds', 0, 0);
UPDATE vibe_ft.datasets SET monthly_budget_usd = NULL, base_model = 'gpt-4o-2024-08-06' WHERE id = :'ds';
DELETE FROM vibe_ft.jobs WHERE dataset_id = :'bad';
DELETE FROM vibe_ft.datasets WHERE id = :'bad';
