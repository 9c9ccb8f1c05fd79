-- Examples in, a job through its state machine, the monthly check, drop.
SELECT id AS ds FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback' \gset

-- add_training_example: a turn, or a messages array; the same conversation once.
INSERT INTO vibe_ft.datasets (name, validation_share) VALUES ('lifecycle', 0.5) RETURNING name, base_model, provider,
       min_new_examples, min_days_between_jobs, min_quality_score, validation_share, auto_finetune;
SELECT id AS lc FROM vibe_ft.datasets WHERE name = 'lifecycle' \gset
SELECT vibe_ft.add_training_example(:'lc', 9, p_system_prompt := 'You are Coach Decibel', p_user_message := 'Rest day?',
       p_assistant_message := 'Yes: sleep, walk, eat protein.') = vibe_ft.add_training_example(:'lc', 7, p_system_prompt := 'You are Coach Decibel',
       p_user_message := 'Rest day?', p_assistant_message := 'Yes: sleep, walk, eat protein.') AS stored_once;
SELECT vibe_ft.add_training_example(:'lc', 8, p_messages := '[{"role":"user","content":"Plan my week"},{"role":"assistant","content":"Mon: run","weight":0},{"role":"user","content":"Shorter"},{"role":"assistant","content":"Mon+Thu: run 20 min"}]') > 0 AS added;
SELECT quality_score, split, source, length(content_hash) AS hash_bytes FROM vibe_ft.examples WHERE dataset_id = :'lc' ORDER BY id;
SELECT jsonl_line FROM export_training_dataset_openai_jsonl(:'lc', 'train') UNION ALL
SELECT jsonl_line FROM export_training_dataset_openai_jsonl(:'lc', 'validation');

-- A job through the state machine: pending, local steps, provider states, final.
SELECT create_finetuning_job(:'lc', 'gpt-4o-mini-2024-07-18') IS NOT NULL AS created;
SELECT id AS job FROM vibe_ft.jobs WHERE dataset_id = :'lc' \gset
SELECT update_finetuning_job_status(:'job', p_status := 'exporting');
SELECT update_finetuning_job_status(:'job', p_status := 'uploading');
SELECT update_finetuning_job_status(:'job', 'ftjob-life', 'validating_files');
SELECT update_finetuning_job_status(:'job', p_status := 'queued');
SELECT update_finetuning_job_status(:'job', p_status := 'running');
SELECT update_finetuning_job_status(:'job', p_status := 'failed', p_error_message := 'invalid_n_examples: at least 10 examples required');
SELECT status, started_at IS NOT NULL AS started, finished_at >= started_at AS finished, error_message, train_examples, validation_examples
  FROM vibe_ft.jobs WHERE id = :'job';
SELECT kind, from_status, to_status, message FROM vibe_ft.job_events WHERE job_id = :'job' ORDER BY id;
-- A failed job does not count as "the last job", and it is not served.
SELECT days_since_last_job FROM should_create_finetuning_job(:'lc', 0, 0);
SELECT count(*) FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18');

-- The monthly check: each auto dataset with its own thresholds.
UPDATE vibe_ft.datasets SET auto_finetune = true, min_new_examples = 2, min_days_between_jobs = 0 WHERE name = 'lifecycle';
SELECT dataset_name, should_finetune, reason, job_id IS NOT NULL AS job_created FROM vibe_ft.run_monthly_check();
SELECT status, base_model FROM vibe_ft.jobs WHERE dataset_id = :'lc' AND status = 'pending';
SELECT dataset_name, should_finetune, regexp_replace(reason, '[0-9a-f-]{36}', '<job id>') AS reason
  FROM vibe_ft.run_monthly_check();

-- The decision pins generic plans for its own statements only: the caller's
-- setting is untouched after the calls above.
SELECT current_setting('plan_cache_mode') AS plan_cache_mode_after_calls;

-- DROP EXTENSION removes every object it created: the functions and the view in
-- public, and all tables, sequences and functions in vibe_ft. (Postgres creates
-- the schema named in the control file outside the extension, so the schema
-- itself stays, empty: a plain DROP SCHEMA, without CASCADE, removes it.)
DROP EXTENSION vibe_ft;
SELECT count(*) AS leftover_functions FROM pg_proc
 WHERE proname IN ('export_training_dataset_openai_jsonl', 'should_create_finetuning_job', 'create_finetuning_job',
                   'update_finetuning_job_status', 'get_latest_finetuned_model');
SELECT to_regclass('public.finetuning_job_stats') AS view, to_regclass('vibe_ft.examples') AS examples;
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'vibe_ft'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'vibe_ft'::regnamespace) AS objects_left_in_vibe_ft;
DROP SCHEMA vibe_ft;
