-- The job runner as SQL callers see it: errors, the steps that need no
-- provider (claim, snapshot and export, local failures), what happens without
-- an API key, the status view, cancelling. (Provider calls: tests/e2e.)
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT id AS ds FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback' \gset
\set nojob '00000000-0000-4000-8000-000000000000'
\set job '00000000-0000-4000-8000-0000000000aa'

SELECT pg_temp.try('SELECT vibe_ft.run_job_step(NULL)');
SELECT pg_temp.try(format('SELECT vibe_ft.run_job_step(%L)', :'nojob'));
SELECT pg_temp.try('SELECT cancel_finetuning_job(NULL)');
SELECT pg_temp.try(format('SELECT cancel_finetuning_job(%L)', :'nojob'));
SELECT pg_temp.try('CALL vibe_ft.run_jobs(-1)');
SELECT pg_temp.try('CALL vibe_ft.run_jobs(NULL)');
SELECT pg_temp.try('SELECT vibe_ft.provider_key_source(NULL)');
SELECT pg_temp.try($$SELECT vibe_ft.provider_key_source('fireworks')$$);
SELECT pg_temp.try('SELECT vibe_ft.schedule_job_runner()');
SELECT vibe_ft.provider_key_source('openai') IS NULL AS no_openai_key,
       vibe_ft.provider_key_source('azure') IS NULL AS no_azure_key;

-- pending -> exporting -> uploading: the snapshot is taken again and the files written.
INSERT INTO vibe_ft.jobs (id, dataset_id, base_model, min_quality_score)
VALUES (:'job', :'ds', 'gpt-4o-mini-2024-07-18', 6);
SELECT vibe_ft.run_job_step(:'job');
SELECT vibe_ft.run_job_step(:'job');
SELECT status, train_examples, validation_examples, avg_train_quality,
       last_example_id = (SELECT max(id) FROM vibe_ft.examples WHERE dataset_id = :'ds') AS snapshot_is_current
  FROM vibe_ft.jobs WHERE id = :'job';
SELECT kind, from_status, to_status, message FROM vibe_ft.job_events WHERE job_id = :'job' ORDER BY id;

-- No API key: a warning, an error event, and the step is retried later.
SELECT vibe_ft.run_job_step(:'job');
SELECT status, attempts, next_attempt_at > now() AS retry_later FROM vibe_ft.jobs WHERE id = :'job';
SELECT jobs_waiting, jobs_running, last_job_error_job_id = :'job' AS last_error_is_ours,
       last_job_error LIKE 'configure: no API key for provider ''openai''%' AS says_what_is_missing
  FROM vibe_ft.status;

-- Cancelling a job that never reached the provider needs no key.
SELECT cancel_finetuning_job(:'job');
SELECT cancel_finetuning_job(:'job');
SELECT status, next_attempt_at FROM vibe_ft.jobs WHERE id = :'job';
SELECT vibe_ft.run_job_step(:'job');

-- Jobs that cannot succeed fail before any upload (and any cost).
INSERT INTO vibe_ft.datasets (name) VALUES ('tiny') RETURNING id AS tiny \gset
SELECT vibe_ft.add_training_example(:'tiny', 9, p_user_message => 'q' || i, p_assistant_message => 'a' || i) > 0
  FROM generate_series(1, 3) i;
INSERT INTO vibe_ft.jobs (id, dataset_id, base_model, min_quality_score)
VALUES ('00000000-0000-4000-8000-0000000000bb', :'tiny', 'm', 6),
       ('00000000-0000-4000-8000-0000000000cc', :'ds', 'm', 6);
UPDATE vibe_ft.jobs SET method = 'dpo' WHERE id = '00000000-0000-4000-8000-0000000000cc';
SELECT vibe_ft.run_job_step('00000000-0000-4000-8000-0000000000bb');
SELECT vibe_ft.run_job_step('00000000-0000-4000-8000-0000000000bb');
SELECT vibe_ft.run_job_step('00000000-0000-4000-8000-0000000000cc');
SELECT vibe_ft.run_job_step('00000000-0000-4000-8000-0000000000cc');
SELECT id, status, error_code, error_message FROM vibe_ft.jobs
 WHERE id IN ('00000000-0000-4000-8000-0000000000bb', '00000000-0000-4000-8000-0000000000cc') ORDER BY id;
