-- Feedback in, examples and preference pairs out, as callers see it: the RPC
-- an app (and a signed-in Supabase user) calls, the daily generation, redaction,
-- erasure.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
INSERT INTO vibe_ft.datasets (name, from_feedback, validation_share) VALUES ('feedback', true, 0) RETURNING id AS fds \gset
\set conv '[{"role":"system","content":"You are Coach Decibel."},{"role":"user","content":"Plan my week. Mail it to sam@example.com"}]'

-- Every bad input: a clear error with a fitting SQLSTATE.
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', 'x', true)$$);
SELECT pg_temp.try($$SELECT submit_feedback(NULL, '[{"role":"user","content":"hi"}]', 'x', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', NULL, 'x', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', NULL, true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', 'x', p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', 'x', p_stars => 6, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[]', 'x', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '{"role":"user"}', 'x', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"bot","content":"hi"}]', 'x', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', '  ', true, p_user_id => 'u')$$);
SELECT pg_temp.try($$SELECT submit_feedback('a1', '[{"role":"user","content":"hi"}]', 'x', true, p_user_id => 'u', p_rated_at => now() + interval '1 day')$$);
SELECT pg_temp.try(format('SELECT submit_feedback(%L, %L, %L, true, p_user_id => %L)', repeat('a', 300), '[{"role":"user","content":"hi"}]', 'x', 'u'));
SELECT count(*) AS nothing_written FROM vibe_ft.feedback;

-- A signed-in user through PostgREST: only submit_feedback, and only as themself.
CREATE ROLE regress_signed_in;
SELECT vibe_ft.grant_feedback('regress_signed_in');
SET ROLE regress_signed_in;
SELECT set_config('request.jwt.claims', '{"sub":"user-1","role":"authenticated"}', false) IS NOT NULL AS signed_in;
SELECT submit_feedback('ans-1', :'conv', 'Mon: 20 min run. Call +1 415 555 0100 if sore.', p_thumbs_up => true, p_stars => 5, p_model => 'gpt-4o-2024-08-06', p_persona => 'decibel') AS fid \gset
SELECT pg_temp.try($$SELECT submit_feedback('ans-1', '[{"role":"user","content":"hi"}]', 'x', true, p_user_id => 'user-2')$$);
SELECT pg_temp.try('SELECT count(*) FROM vibe_ft.feedback');
SELECT pg_temp.try('SELECT * FROM vibe_ft.generate_examples()');
SELECT pg_temp.try('SELECT * FROM export_training_dataset_openai_jsonl(gen_random_uuid())');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false) = '' AS signed_out;
SELECT user_id, answer_id, thumbs_up, stars, persona, id = :fid AS same_id FROM vibe_ft.feedback;

-- A re-rating replaces the earlier one; a stale one arriving late does not.
SELECT submit_feedback('ans-1', :'conv', 'Mon: 20 min run. Call +1 415 555 0100 if sore.', p_thumbs_up => true, p_user_id => 'user-1') = :fid AS same_row;
SELECT submit_feedback('ans-1', :'conv', 'Mon: 20 min run. Call +1 415 555 0100 if sore.', p_thumbs_up => false, p_user_id => 'user-1', p_rated_at => now() - interval '1 hour') = :fid AS same_row;
SELECT count(*), bool_and(thumbs_up) AS thumbs_up, bool_and(stars IS NULL) AS stars_gone FROM vibe_ft.feedback;

-- More feedback: the same conversation answered twice (one liked, one not),
-- a multi-turn conversation, a duplicate from another user, a low rating.
SELECT submit_feedback('ans-2', :'conv', 'Rest all week.', p_thumbs_up => false, p_user_id => 'user-1') > 0 AS ok;
SELECT submit_feedback('ans-3', '[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello! Goals?"},{"role":"user","content":"Run a 5k"}]',
                       'Start with 3 runs a week.', p_stars => 4, p_user_id => 'user-2') > 0 AS ok;
SELECT submit_feedback('ans-4', '[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello! Goals?"},{"role":"user","content":"Run a 5k"}]',
                       'Start with 3 runs a week.', p_thumbs_up => true, p_user_id => 'user-3') > 0 AS ok;
SELECT submit_feedback('ans-5', '[{"role":"user","content":"Motivate me"}]', 'No.', p_stars => 2, p_user_id => 'user-3') > 0 AS ok;

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
SELECT submit_feedback('ans-1', :'conv', 'Mon: 20 min run. Call +1 415 555 0100 if sore.', p_stars => 1, p_user_id => 'user-1') = :fid AS same_row;
SELECT feedback_read, examples_added, examples_removed, pairs_removed FROM vibe_ft.generate_examples(:'fds');
SELECT count(*) AS examples FROM vibe_ft.examples WHERE dataset_id = :'fds';

-- Scoring is the dataset's: with stars counting more, 4 stars alone qualify higher.
UPDATE vibe_ft.datasets SET score_stars = '{0,1,2,9,10}' WHERE id = :'fds';
SELECT vibe_ft.feedback_score(true, NULL), vibe_ft.feedback_score(NULL, 4), vibe_ft.feedback_score(true, 5),
       vibe_ft.feedback_score(false, 3, 8, 2, '{0,1,2,9,10}'), vibe_ft.feedback_score(NULL, NULL);

-- A persona-only dataset, and a user redaction function.
CREATE FUNCTION public.regress_redact(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT replace(t, 'Decibel', '[coach]') $$;
INSERT INTO vibe_ft.datasets (name, from_feedback, feedback_persona, redact_function, validation_share)
VALUES ('decibel only', true, 'decibel', 'public.regress_redact(text)', 0) RETURNING id AS pds \gset
SELECT submit_feedback('ans-6', :'conv', 'Decibel says: walk daily.', p_thumbs_up => true, p_persona => 'decibel', p_user_id => 'user-4') > 0 AS ok;
SELECT dataset_name, feedback_read, examples_added FROM vibe_ft.generate_examples() ORDER BY 1;
SELECT jsonl_line FROM export_training_dataset_openai_jsonl(:'pds');
-- Someone else's function is never called by the daily job.
CREATE ROLE regress_other;
ALTER FUNCTION public.regress_redact(text) OWNER TO regress_other;
SELECT submit_feedback('ans-7', :'conv', 'Another.', p_thumbs_up => true, p_persona => 'decibel', p_user_id => 'user-4') > 0 AS ok;
SELECT pg_temp.try($$SELECT * FROM vibe_ft.generate_examples()$$);
UPDATE vibe_ft.datasets SET redact_function = NULL WHERE id = :'pds';
DROP FUNCTION public.regress_redact(text);
DROP ROLE regress_other;
-- Not under a stale snapshot.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try('SELECT * FROM vibe_ft.generate_examples()');
ROLLBACK;
SELECT pg_temp.try($$SELECT * FROM vibe_ft.generate_examples('00000000-0000-4000-8000-000000000000')$$);

-- Erasure: the user's feedback, examples and pairs go; jobs trained on them are marked.
INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, training_file_id, last_example_id)
VALUES (:'pds', 'gpt-4o-2024-08-06', 'running', 'file-x', (SELECT max(id) FROM vibe_ft.examples)) RETURNING id AS mjob \gset
SELECT pg_temp.try('SELECT * FROM vibe_ft.forget_user(NULL)');
SELECT * FROM vibe_ft.forget_user('user-4');
SELECT count(*) AS left_of_user_4 FROM vibe_ft.feedback WHERE user_id = 'user-4';
SELECT erasure_requested_at IS NOT NULL AS marked FROM vibe_ft.jobs WHERE id = :'mjob';
SELECT message FROM vibe_ft.job_events WHERE job_id = :'mjob' AND kind = 'note';
SELECT * FROM vibe_ft.forget_user('nobody');
UPDATE vibe_ft.jobs SET status = 'cancelled' WHERE id = :'mjob';

-- The pg_cron helper needs pg_cron in this database.
SELECT pg_temp.try('SELECT vibe_ft.schedule_example_generation()');
SELECT pg_temp.try('SELECT vibe_ft.schedule_example_generation(NULL)');
DROP OWNED BY regress_signed_in;
DROP ROLE regress_signed_in;
