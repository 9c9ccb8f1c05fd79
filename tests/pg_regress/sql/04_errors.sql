-- Every bad input gets a clear error with a fitting SQLSTATE, naming the argument.
-- try() shows "SQLSTATE: message" for a statement, or "no error".
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT id AS ds FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback' \gset
\set nods '00000000-0000-4000-8000-000000000000'

-- export_training_dataset_openai_jsonl
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L)', NULL));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L)', :'nods'));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L, %L)', :'ds', 'test'));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L, %L)', :'ds', NULL));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L, %L, 11)', :'ds', 'train'));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L, %L, -1)', :'ds', 'train'));
SELECT pg_temp.try(format('SELECT * FROM export_training_dataset_openai_jsonl(%L, %L, NULL)', :'ds', 'train'));

-- should_create_finetuning_job
SELECT pg_temp.try('SELECT * FROM should_create_finetuning_job(NULL)');
SELECT pg_temp.try(format('SELECT * FROM should_create_finetuning_job(%L)', :'nods'));
SELECT pg_temp.try(format('SELECT * FROM should_create_finetuning_job(%L, -5)', :'ds'));
SELECT pg_temp.try(format('SELECT * FROM should_create_finetuning_job(%L, 5, -1)', :'ds'));
SELECT pg_temp.try(format('SELECT * FROM should_create_finetuning_job(%L, 5, NULL)', :'ds'));

-- create_finetuning_job
SELECT pg_temp.try('SELECT create_finetuning_job(NULL)');
SELECT pg_temp.try(format('SELECT create_finetuning_job(%L)', :'nods'));
SELECT pg_temp.try(format('SELECT create_finetuning_job(%L, NULL)', :'ds'));
SELECT pg_temp.try(format('SELECT create_finetuning_job(%L, p_hyperparameters := %L)', :'ds', '"n_epochs=3"'));
SELECT pg_temp.try(format('SELECT create_finetuning_job(%L, p_suffix := %L)', :'ds', repeat('s', 65)));

-- update_finetuning_job_status
SELECT pg_temp.try('SELECT update_finetuning_job_status(p_status := ''running'')');
SELECT pg_temp.try(format('SELECT update_finetuning_job_status(%L, p_status := %L)', :'nods', 'running'));
SELECT pg_temp.try('SELECT update_finetuning_job_status(p_openai_job_id := ''ftjob-unknown'', p_status := ''running'')');
SELECT pg_temp.try('SELECT update_finetuning_job_status(p_openai_job_id := ''ftjob-def456'', p_status := ''done'')');
-- a finished job asked to run again
SELECT pg_temp.try('SELECT update_finetuning_job_status(p_openai_job_id := ''ftjob-def456'', p_status := ''running'')');
SELECT pg_temp.try('UPDATE vibe_ft.jobs SET status = ''queued'' WHERE provider_job_id = ''ftjob-def456''');
SELECT pg_temp.try('SELECT update_finetuning_job_status(p_openai_job_id := ''ftjob-def456'', p_training_metrics := ''[1]'')');

-- malformed messages, through the function and through plain INSERT
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_messages := %L)', :'ds', '{"role":"user","content":"hi"}'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_messages := %L)', :'ds', '[{"role":"user","content":"hi"}]'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_messages := %L)', :'ds', '[{"role":"coach","content":"hi"},{"role":"assistant","content":"a"}]'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_messages := %L)', :'ds', '[{"role":"user","content":["hi"]},{"role":"assistant","content":"a"}]'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_messages := %L)', :'ds', '[{"role":"user","content":"hi","weight":0},{"role":"assistant","content":"a"}]'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 12, p_user_message := %L, p_assistant_message := %L)', :'ds', 'u', 'a'));
SELECT pg_temp.try(format('SELECT vibe_ft.add_training_example(%L, 5, p_user_message := %L, p_assistant_message := %L, p_split := %L)', :'ds', 'u', 'a', 'dev'));
SELECT pg_temp.try(format('INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES (%L, %L, 5)', :'ds', '[{"role":"assistant","content":42}]'));
SELECT pg_temp.try(format('INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, split) VALUES (%L, %L, 5, %L)', :'ds', '[{"role":"assistant","content":"x"}]', 'dev'));

-- the monthly check's scheduler without pg_cron in this database
SELECT pg_temp.try('SELECT vibe_ft.schedule_monthly_check()');

-- nothing was half-written by any of the failures above
SELECT count(*) AS examples FROM vibe_ft.examples;
SELECT status, count(*) FROM vibe_ft.jobs GROUP BY 1 ORDER BY 1;
