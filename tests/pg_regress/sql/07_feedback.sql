-- Answers and ratings in, examples and preference pairs out, as callers see
-- it: the backend records what it served (record_answer), ratings come by
-- answer id (submit_feedback), the daily generation, redaction, erasure.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
INSERT INTO vibe_ft.datasets (name, from_feedback, validation_share) VALUES ('feedback', true, 0) RETURNING id AS fds \gset
\set conv '[{"role":"system","content":"You are Coach Decibel."},{"role":"user","content":"Plan my week. Mail it to sam@example.com"}]'

-- The backend records what it served: every bad input a clear error with a
-- fitting SQLSTATE (the signed-in side is in 06_signed_in).
SELECT pg_temp.try($$SELECT record_answer(NULL, 'u', '[{"role":"user","content":"hi"}]', 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', NULL, '[{"role":"user","content":"hi"}]', 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', NULL, 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[{"role":"user","content":"hi"}]', NULL, 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[{"role":"user","content":"hi"}]', 'x', NULL)$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[]', 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '{"role":"user"}', 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[{"role":"bot","content":"hi"}]', 'x', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[{"role":"user","content":"hi"}]', '  ', 'm')$$);
SELECT pg_temp.try($$SELECT record_answer('a1', 'u', '[{"role":"user","content":"hi"}]', 'x', 'm', p_provider => '')$$);
SELECT pg_temp.try(format('SELECT record_answer(%L, %L, %L, %L, %L)', repeat('a', 300), 'u', '[{"role":"user","content":"hi"}]', 'x', 'm'));
SELECT pg_temp.try(format('SELECT record_answer(%L, %L, %L, %L, %L)', 'a1', 'u', '[{"role":"user","content":"hi"}]', repeat('x', 4200000), 'm'));
-- Rating, by a trusted caller without a JWT: the same checks.
SELECT pg_temp.try($$SELECT submit_feedback(NULL, true)$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', p_stars => 6)$$);
SELECT pg_temp.try($$SELECT submit_feedback('never-recorded', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('never-recorded', true)$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', true, p_user_id => 'u', p_rated_at => now() + interval '1 day')$$);
SELECT count(*) AS nothing_written FROM vibe_ft.feedback;

-- Answers, then ratings by answer id.
SELECT record_answer('ans-1', 'user-1', :'conv', 'Mon: 20 min run. Call +1 415 555 0100 if sore.', 'gpt-4o-2024-08-06', 'openai', 'decibel') AS fid \gset
SELECT submit_feedback('ans-1', p_thumbs_up => true, p_stars => 5, p_user_id => 'user-1') = :fid AS same_id;
SELECT user_id, answer_id, thumbs_up, stars, persona, model, provider FROM vibe_ft.feedback;

-- A re-rating replaces the earlier one; a stale one arriving late does not.
SELECT submit_feedback('ans-1', p_thumbs_up => true, p_user_id => 'user-1') = :fid AS same_row;
SELECT submit_feedback('ans-1', p_thumbs_up => false, p_user_id => 'user-1', p_rated_at => now() - interval '1 hour') = :fid AS same_row;
SELECT count(*), bool_and(thumbs_up) AS thumbs_up, bool_and(stars IS NULL) AS stars_gone FROM vibe_ft.feedback;

-- More feedback: the same conversation answered twice (one liked, one not),
-- a multi-turn conversation, a duplicate from another user, a low rating, and
-- an answer served but never rated.
CREATE FUNCTION pg_temp.answer_and_rate(aid text, uid text, conv jsonb, answer text, up boolean, stars integer, persona text DEFAULT NULL)
RETURNS boolean LANGUAGE sql AS $$
    SELECT record_answer(aid, uid, conv, answer, 'gpt-4o-2024-08-06', 'openai', persona) > 0
       AND (up IS NULL AND stars IS NULL OR submit_feedback(aid, up, stars, p_user_id => uid) > 0)
$$;
SELECT pg_temp.answer_and_rate('ans-2', 'user-1', :'conv', 'Rest all week.', false, NULL);
SELECT pg_temp.answer_and_rate('ans-3', 'user-2', '[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello! Goals?"},{"role":"user","content":"Run a 5k"}]',
                               'Start with 3 runs a week.', NULL, 4);
SELECT pg_temp.answer_and_rate('ans-4', 'user-3', '[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello! Goals?"},{"role":"user","content":"Run a 5k"}]',
                               'Start with 3 runs a week.', true, NULL);
SELECT pg_temp.answer_and_rate('ans-5', 'user-3', '[{"role":"user","content":"Motivate me"}]', 'No.', NULL, 2);
SELECT pg_temp.answer_and_rate('ans-unrated', 'user-3', '[{"role":"user","content":"Motivate me"}]', 'Never rated.', NULL, NULL);

-- The daily job: incremental, idempotent, deduplicated.
SELECT dataset_name, feedback_read, examples_added, examples_updated, examples_removed, duplicates,
       pairs_added, pairs_updated, pairs_removed, redactions FROM vibe_ft.generate_examples();
SELECT dataset_name, feedback_read, examples_added, duplicates, pairs_added FROM vibe_ft.generate_examples();
-- Earlier answers are context (weight 0), the rated one is trained (weight 1);
-- personal data is redacted before anything leaves the database.
SELECT quality_score, split, source, jsonl_line
  FROM vibe_ft.examples e, LATERAL (SELECT vibe_ft.openai_chat_line(e.messages) AS jsonl_line) l
 WHERE dataset_id = :'fds' ORDER BY id;
SELECT * FROM export_training_dataset_openai_jsonl(:'fds');
SELECT * FROM vibe_ft.export_preference_jsonl(:'fds');

-- A re-rating down removes the example and the pair it made.
SELECT submit_feedback('ans-1', p_stars => 1, p_user_id => 'user-1') = :fid AS same_row;
SELECT feedback_read, examples_added, examples_removed, pairs_removed FROM vibe_ft.generate_examples(:'fds');
SELECT count(*) AS examples FROM vibe_ft.examples WHERE dataset_id = :'fds';

-- Scoring is the dataset's: with stars counting more, 4 stars alone qualify higher.
UPDATE vibe_ft.datasets SET score_stars = '{0,1,2,9,10}' WHERE id = :'fds';
SELECT vibe_ft.feedback_score(true, NULL), vibe_ft.feedback_score(NULL, 4), vibe_ft.feedback_score(true, 5),
       vibe_ft.feedback_score(false, 3, 8, 2, '{0,1,2,9,10}'), vibe_ft.feedback_score(NULL, NULL);
-- A NULL among the stars' scores is refused when it is stored (it used to pass
-- the check and fail every later generation run).
SELECT pg_temp.try($$UPDATE vibe_ft.datasets SET score_stars = '{0,2.5,NULL,7.5,10}' WHERE name = 'feedback'$$);
-- Scores are exact numerics, compared with the threshold exactly as stored: a
-- threshold of 6.004 takes 6.005 and leaves 6.0025.
INSERT INTO vibe_ft.datasets (name, from_feedback, feedback_persona, validation_share, min_quality_score, score_thumbs_up, score_stars)
VALUES ('exact', true, 'exact', 0, 6.004, 8, '{0,2.5,4.005,4.01,10}') RETURNING id AS xds \gset
SELECT pg_temp.answer_and_rate('ans-x1', 'user-5', '[{"role":"user","content":"exact one"}]', 'Kept.', true, 4, 'exact');
SELECT pg_temp.answer_and_rate('ans-x2', 'user-5', '[{"role":"user","content":"exact two"}]', 'Left.', true, 3, 'exact');
SELECT feedback_read, examples_added FROM vibe_ft.generate_examples(:'xds');
SELECT quality_score FROM vibe_ft.examples WHERE dataset_id = :'xds';
SELECT count(*) AS exported FROM export_training_dataset_openai_jsonl(:'xds', 'train', 6.004);
SELECT new_examples FROM should_create_finetuning_job(:'xds', 1, 0);
DELETE FROM vibe_ft.datasets WHERE id = :'xds';

-- A persona-only dataset, and a user redaction function.
CREATE FUNCTION public.regress_redact(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT replace(t, 'Decibel', '[coach]') $$;
-- Named by its schema-qualified signature (stored as text: no reg* column).
SELECT pg_temp.try($$INSERT INTO vibe_ft.datasets (name, redact_function) VALUES ('x', 'regress_redact(text)')$$);
SELECT pg_temp.try($$INSERT INTO vibe_ft.datasets (name, redact_function) VALUES ('x', 'public.regress_redact(integer)')$$);
SELECT pg_temp.try($$INSERT INTO vibe_ft.datasets (name, redact_function) VALUES ('x', 'public.length(text)')$$);
INSERT INTO vibe_ft.datasets (name, from_feedback, feedback_persona, redact_function, validation_share)
VALUES ('decibel only', true, 'decibel', 'public.regress_redact(text)', 0) RETURNING id AS pds \gset
SELECT redact_function, pg_typeof(redact_function) FROM vibe_ft.datasets WHERE id = :'pds';
SELECT pg_temp.answer_and_rate('ans-6', 'user-4', :'conv', 'Decibel says: walk daily.', true, NULL, 'decibel');
SELECT dataset_name, feedback_read, examples_added FROM vibe_ft.generate_examples() ORDER BY 1;
SELECT jsonl_line FROM export_training_dataset_openai_jsonl(:'pds');
-- Someone else's function is never called by the daily job.
CREATE ROLE regress_other;
ALTER FUNCTION public.regress_redact(text) OWNER TO regress_other;
SELECT pg_temp.answer_and_rate('ans-7', 'user-4', :'conv', 'Another.', true, NULL, 'decibel');
SELECT pg_temp.try($$SELECT * FROM vibe_ft.generate_examples()$$);
UPDATE vibe_ft.datasets SET redact_function = NULL WHERE id = :'pds';
DROP FUNCTION public.regress_redact(text);
DROP ROLE regress_other;
-- Its locks end with the transaction (one used to be a session lock, which a
-- cancel at the wrong moment left behind in a pooled connection, blocking
-- every writer of feedback): none is held once it commits, or is cancelled.
BEGIN;
SELECT count(*) >= 0 AS ran FROM vibe_ft.generate_examples();
COMMIT;
SELECT count(*) AS advisory_locks_held FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SET statement_timeout = '1ms';
\set VERBOSITY terse
SELECT count(*) FROM vibe_ft.generate_examples(), pg_sleep(0.1);
\set VERBOSITY default
RESET statement_timeout;
SELECT count(*) AS advisory_locks_held FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- Not under a stale snapshot.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try('SELECT * FROM vibe_ft.generate_examples()');
ROLLBACK;
SELECT pg_temp.try($$SELECT * FROM vibe_ft.generate_examples('00000000-0000-4000-8000-000000000000')$$);

-- Erasure: the user's feedback, examples and pairs go; a job trained on them is
-- marked; a job whose files held them but has not reached a provider job
-- exports again, under new file names.
INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, training_file_id, last_example_id)
VALUES (:'pds', 'gpt-4o-2024-08-06', 'running', 'file-x', (SELECT max(id) FROM vibe_ft.examples)) RETURNING id AS mjob \gset
SELECT pg_temp.try('SELECT * FROM vibe_ft.forget_user(NULL)');
SELECT * FROM vibe_ft.forget_user('user-4');
SELECT count(*) AS left_of_user_4 FROM vibe_ft.feedback WHERE user_id = 'user-4';
SELECT erasure_requested_at IS NOT NULL AS marked FROM vibe_ft.jobs WHERE id = :'mjob';
SELECT message FROM vibe_ft.job_events WHERE job_id = :'mjob' AND kind = 'note';
UPDATE vibe_ft.jobs SET status = 'cancelled' WHERE id = :'mjob';
SELECT pg_temp.answer_and_rate('ans-8', 'user-6', :'conv', 'Decibel says: swim.', true, NULL, 'decibel');
SELECT examples_added FROM vibe_ft.generate_examples(:'pds');
INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, training_file_id, last_example_id)
VALUES (:'pds', 'gpt-4o-2024-08-06', 'uploading', 'file-y', (SELECT max(id) FROM vibe_ft.examples)) RETURNING id AS ujob \gset
SELECT * FROM vibe_ft.forget_user('user-6');
SELECT status, training_file_id, export_round, erasure_requested_at FROM vibe_ft.jobs WHERE id = :'ujob';
SELECT message, data FROM vibe_ft.job_events WHERE job_id = :'ujob' AND kind = 'note';
SELECT * FROM vibe_ft.forget_user('nobody');
UPDATE vibe_ft.jobs SET status = 'cancelled' WHERE id = :'ujob';
-- What a file held is not recorded row by row: a user whose example a
-- re-rating already removed may still be in a job's files. A job of a dataset
-- that reads their feedback exports again all the same, also one whose create
-- request may be in flight (submitted, no provider job yet).
SELECT pg_temp.answer_and_rate('ans-9', 'user-7', :'conv', 'Decibel says: row.', true, NULL, 'decibel');
SELECT examples_added FROM vibe_ft.generate_examples(:'pds');
INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, training_file_id, last_example_id)
VALUES (:'pds', 'gpt-4o-2024-08-06', 'submitted', 'file-z', (SELECT max(id) FROM vibe_ft.examples)) RETURNING id AS sjob \gset
SELECT submit_feedback('ans-9', false, p_user_id => 'user-7') > 0 AS rated_down;
SELECT examples_removed FROM vibe_ft.generate_examples(:'pds');
SELECT feedback_deleted, examples_deleted, jobs_exporting_again FROM vibe_ft.forget_user('user-7');
SELECT status, training_file_id, export_round FROM vibe_ft.jobs WHERE id = :'sjob';
UPDATE vibe_ft.jobs SET status = 'cancelled' WHERE id = :'sjob';
-- It must see what exports committed while it waited.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try($$SELECT * FROM vibe_ft.forget_user('user-1')$$);
ROLLBACK;

-- The pg_cron helper needs pg_cron in this database.
SELECT pg_temp.try('SELECT vibe_ft.schedule_example_generation()');
SELECT pg_temp.try('SELECT vibe_ft.schedule_example_generation(NULL)');
