-- Which model to serve: a succeeded job's model is tested against the model
-- served (the base model at first) on live ratings. Users are split by a hash
-- (sticky, no writes), the candidate ramps while it is not worse, and is
-- promoted or rolled back on the evidence; every decision is an event with
-- its numbers. Conversations go through choose_model, record_answer and
-- submit_feedback, as an app's would; ratings are drawn from a hash of the
-- answer id, so the run is the same every time.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
-- Uuids and experiment ids vary with what ran before: show them as <uuid>, <id>.
CREATE FUNCTION pg_temp.t(s text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(regexp_replace(s, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'),
                          'experiment -?[0-9]+', 'experiment <id>', 'g') $$;
-- One round of conversations: every user asks once, through choose_model.
CREATE FUNCTION pg_temp.serve(p_base text, p_round int, p_users int) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s answers: %s', count(*), string_agg(DISTINCT c.arm, ', '))
      FROM generate_series(1, p_users) u
     CROSS JOIN LATERAL choose_model(format('%s-user-%s', p_base, u), p_base) c
     CROSS JOIN LATERAL record_answer(format('%s-%s-%s', p_base, p_round, u), format('%s-user-%s', p_base, u),
                                      '[{"role":"user","content":"How do I start running?"}]', 'Start slow.',
                                      c.model, c.provider) r $$;
-- Every answer of the round is rated: positive with the given percentage for
-- fine-tuned models and for the base model.
CREATE FUNCTION pg_temp.rate(p_base text, p_round int, p_finetuned_pct int, p_base_pct int) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s rated', count(*))
      FROM vibe_ft.feedback f
     CROSS JOIN LATERAL submit_feedback(f.answer_id,
                   vibe_ft.bucket('rating', f.answer_id) < 100 * CASE WHEN f.model LIKE 'ft:%' THEN p_finetuned_pct ELSE p_base_pct END,
                   NULL, f.user_id) s
     WHERE f.answer_id LIKE format('%s-%s-%%', p_base, p_round) $$;
-- Evaluate every running experiment (other tests' too); show this test's.
CREATE FUNCTION pg_temp.evaluate() RETURNS TABLE (decision text, state text, share float8)
LANGUAGE sql AS $$ SELECT e.decision, e.state, e.share FROM vibe_ft.evaluate_experiments() e
                    WHERE e.dataset_name = 'experiments' $$;

-- The bucket: GrowthBook's v2 formula with a delimiter, stable across versions.
SELECT vibe_ft.bucket('exp', 'user-1') AS b1, vibe_ft.bucket('ab', 'c') <> vibe_ft.bucket('a', 'bc') AS delimited;

-- A dataset whose phases may be short (the default is a day each).
INSERT INTO vibe_ft.datasets (name, base_model, experiment_min_rated, experiment_min_phase_hours)
VALUES ('experiments', 'gpt-5-mini', 50, 0) RETURNING id AS ds \gset
-- No fine-tuned model yet: the base model.
SELECT model, provider, arm, experiment_id FROM choose_model('someone', 'gpt-5-mini');
SELECT model, arm FROM choose_model('someone', p_dataset_id => :'ds');
-- A job succeeds: its model becomes the candidate against the base model, at 10%.
SELECT create_finetuning_job(:'ds', 'gpt-5-mini') AS job1 \gset
SELECT update_finetuning_job_status(:'job1', 'ftjob-x1', 'succeeded', 'ft:gpt-5-mini:coach:1');
SELECT id AS exp1, state, share, step, control_job_id IS NULL AS against_base FROM vibe_ft.experiments WHERE dataset_id = :'ds' \gset
SELECT :exp1 > 0 AS started, :'state' AS state, :share AS share, :'against_base' AS against_base;
SELECT kind, pg_temp.t(message) FROM vibe_ft.experiment_events WHERE experiment_id = :exp1;
-- Sticky: a user keeps an arm; about a tenth of users get the candidate.
SELECT count(DISTINCT c.model) AS models_per_user
  FROM generate_series(1, 5) i CROSS JOIN LATERAL choose_model('sticky-user', 'gpt-5-mini') c;
SELECT string_agg(DISTINCT c.arm || ': ' || c.model, ', ') AS arms,
       count(*) FILTER (WHERE c.arm = 'candidate') BETWEEN 150 AND 250 AS about_a_tenth_of_2000
  FROM generate_series(1, 2000) u CROSS JOIN LATERAL choose_model('population-' || u, 'gpt-5-mini') c;

-- Rounds of conversations, rated; the fine-tuned model is liked far more.
SELECT pg_temp.serve('gpt-5-mini', 1, 400);
SELECT pg_temp.rate('gpt-5-mini', 1, 90, 40);
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.serve('gpt-5-mini', 2, 400);
SELECT pg_temp.rate('gpt-5-mini', 2, 90, 40);
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.serve('gpt-5-mini', 3, 400);
SELECT pg_temp.rate('gpt-5-mini', 3, 90, 40);
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.serve('gpt-5-mini', 4, 400);
SELECT pg_temp.rate('gpt-5-mini', 4, 90, 40);
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.serve('gpt-5-mini', 5, 400);
SELECT pg_temp.rate('gpt-5-mini', 5, 90, 40);
SELECT * FROM pg_temp.evaluate();
-- Every decision is an event with the numbers behind it.
SELECT kind, evidence ? 'likelihood_ratio' AS has_numbers, message ~ '^(better|not worse)' AS says_why
  FROM vibe_ft.experiment_events WHERE experiment_id = :exp1 AND kind <> 'started' ORDER BY id;
SELECT phase, share, ended_at IS NOT NULL AS ended FROM vibe_ft.experiment_phases WHERE experiment_id = :exp1 ORDER BY phase;
SELECT state, candidate_model, control_model, candidate_rate > control_rate AS better,
       lift_low_95 > 0 AS lift_interval_above_zero, p_better > 0.99 AS confident
  FROM vibe_ft.experiment_results WHERE experiment_id = :exp1;
-- Promoted: everyone gets it now.
SELECT arm, model, count(*) FROM generate_series(1, 200) u
 CROSS JOIN LATERAL choose_model('population-' || u, 'gpt-5-mini') c GROUP BY arm, model;
SELECT how FROM vibe_ft.promotions WHERE dataset_id = :'ds';

-- The next job is tested against the promoted model; this one is worse and
-- is rolled back while it is still at its first share.
SELECT create_finetuning_job(:'ds', 'gpt-5-mini') AS job2 \gset
SELECT update_finetuning_job_status(:'job2', 'ftjob-x2', 'succeeded', 'ft:gpt-5-mini:coach:2');
SELECT id AS exp2, control_job_id = :'job1' AS against_the_promoted_model FROM vibe_ft.experiments WHERE state = 'running' AND dataset_id = :'ds' \gset
SELECT :'against_the_promoted_model' AS against_the_promoted_model;
CREATE FUNCTION pg_temp.rate2(p_round int) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s rated', count(*))
      FROM vibe_ft.feedback f
     CROSS JOIN LATERAL submit_feedback(f.answer_id,
                   vibe_ft.bucket('rating', f.answer_id) < 100 * CASE f.model WHEN 'ft:gpt-5-mini:coach:2' THEN 30 ELSE 80 END,
                   NULL, f.user_id) s
     WHERE f.answer_id LIKE format('gpt-5-mini-%s-%%', p_round) $$;
SELECT pg_temp.serve('gpt-5-mini', 6, 600);
SELECT pg_temp.rate2(6);
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.serve('gpt-5-mini', 7, 600);
SELECT pg_temp.rate2(7);
SELECT * FROM pg_temp.evaluate();
SELECT state, step, share, decision ~ '^worse' AS says_worse FROM vibe_ft.experiments WHERE id = :exp2;
-- Back to the promoted model for everyone.
SELECT arm, model, count(*) FROM generate_series(1, 200) u
 CROSS JOIN LATERAL choose_model('population-' || u, 'gpt-5-mini') c GROUP BY arm, model;

-- By hand: pause (everyone gets the control), resume (a new phase), promote.
SELECT create_finetuning_job(:'ds', 'gpt-5-mini') AS job3 \gset
SELECT update_finetuning_job_status(:'job3', 'ftjob-x3', 'succeeded', 'ft:gpt-5-mini:coach:3');
SELECT id AS exp3 FROM vibe_ft.experiments WHERE state = 'running' AND dataset_id = :'ds' \gset
SELECT vibe_ft.pause_experiment(:exp3);
SELECT arm, count(*) FROM generate_series(1, 500) u
 CROSS JOIN LATERAL choose_model('population-' || u, 'gpt-5-mini') c GROUP BY arm;
SELECT * FROM pg_temp.evaluate();
SELECT pg_temp.t(pg_temp.try(format('SELECT vibe_ft.pause_experiment(%s)', :exp3)));
SELECT vibe_ft.resume_experiment(:exp3);
SELECT pg_temp.t(pg_temp.try(format('SELECT vibe_ft.resume_experiment(%s)', :exp3)));
SELECT phase, share FROM vibe_ft.experiment_phases WHERE experiment_id = :exp3 ORDER BY phase;
-- A newer job supersedes a running experiment; its control stays.
SELECT create_finetuning_job(:'ds', 'gpt-5-mini') AS job4 \gset
SELECT update_finetuning_job_status(:'job4', 'ftjob-x4', 'succeeded', 'ft:gpt-5-mini:coach:4');
SELECT id - :exp3 AS after_exp3, state FROM vibe_ft.experiments WHERE id >= :exp3 ORDER BY id;
SELECT id AS exp4 FROM vibe_ft.experiments WHERE state = 'running' AND dataset_id = :'ds' \gset
SELECT vibe_ft.promote_experiment(:exp4);
SELECT pg_temp.t(pg_temp.try(format('SELECT vibe_ft.rollback_experiment(%s)', :exp4)));
SELECT model, arm FROM choose_model('anyone', 'gpt-5-mini');
SELECT how, job_id = :'job4' AS newest FROM vibe_ft.promotions WHERE dataset_id = :'ds' ORDER BY id;

-- A candidate that cannot be called is replaced by the control; when the
-- base model retires (its fine-tunes with it), the base model's name is the
-- last answer (the app's own fallback).
SELECT vibe_ft.start_experiment(:'job2') AS exp5 \gset
UPDATE vibe_ft.experiments SET share = 100 WHERE id = :exp5;
SELECT arm, model FROM choose_model('anyone', 'gpt-5-mini');
INSERT INTO vibe_ft.model_lifecycle (provider, base_model, valid_from, training_ends, serving_ends, note)
VALUES ('openai', 'gpt-5-mini', current_date - 1, now() - interval '1 day', now() - interval '1 day', 'test: retired');
SELECT arm, model FROM choose_model('anyone', 'gpt-5-mini');
DELETE FROM vibe_ft.model_lifecycle WHERE base_model = 'gpt-5-mini';
SELECT vibe_ft.rollback_experiment(:exp5);

-- Automatic experiments are a dataset's policy.
UPDATE vibe_ft.datasets SET experiment_auto = false WHERE id = :'ds';
SELECT create_finetuning_job(:'ds', 'gpt-5-mini') AS job6 \gset
SELECT update_finetuning_job_status(:'job6', 'ftjob-x6', 'succeeded', 'ft:gpt-5-mini:coach:6');
SELECT count(*) AS running FROM vibe_ft.experiments WHERE state = 'running' AND dataset_id = :'ds';

-- Errors, each with its SQLSTATE.
SELECT pg_temp.t(pg_temp.try($$SELECT * FROM choose_model(NULL, 'gpt-5-mini')$$));
SELECT pg_temp.t(pg_temp.try($$SELECT * FROM choose_model('', 'gpt-5-mini')$$));
SELECT pg_temp.t(pg_temp.try($$SELECT * FROM choose_model('u')$$));
SELECT pg_temp.t(pg_temp.try($$SELECT * FROM choose_model('u', p_dataset_id => '00000000-0000-4000-8000-000000000000')$$));
SELECT pg_temp.t(pg_temp.try($$SELECT vibe_ft.start_experiment(NULL)$$));
SELECT pg_temp.t(pg_temp.try($$SELECT vibe_ft.start_experiment('00000000-0000-4000-8000-000000000000')$$));
SELECT pg_temp.t(pg_temp.try(format('SELECT vibe_ft.start_experiment(%L)', (SELECT create_finetuning_job(:'ds', 'gpt-5-mini')))));
SELECT pg_temp.t(pg_temp.try($$SELECT vibe_ft.promote_experiment(NULL)$$));
SELECT pg_temp.t(pg_temp.try($$SELECT vibe_ft.promote_experiment(-1)$$));
SELECT pg_temp.t(pg_temp.try($$UPDATE vibe_ft.datasets SET experiment_steps = '{}' WHERE name = 'experiments'$$));
SELECT pg_temp.t(pg_temp.try($$UPDATE vibe_ft.datasets SET experiment_on_inconclusive = 'flip a coin' WHERE name = 'experiments'$$));
-- Every share is checked: NULL, NaN, falling, above 100; hours and days are finite.
SELECT s AS steps, vibe_ft.experiment_steps_valid(s::numeric[]) AS valid
  FROM unnest(ARRAY['{10,25,50}', '{100}', '{10,NULL,50}', '{NaN,50}', '{50,10}', '{10,150}', '{0,10}', '{}']) s;
SELECT pg_temp.t(pg_temp.try($$UPDATE vibe_ft.datasets SET experiment_steps = '{10,NaN}' WHERE name = 'experiments'$$));
SELECT pg_temp.t(pg_temp.try($$UPDATE vibe_ft.datasets SET experiment_min_phase_hours = 'NaN' WHERE name = 'experiments'$$));
SELECT pg_temp.t(pg_temp.try($$UPDATE vibe_ft.datasets SET experiment_max_days = 'Infinity' WHERE name = 'experiments'$$));
-- One dataset's model is never promoted for another's users.
INSERT INTO vibe_ft.datasets (name) VALUES ('another') RETURNING id AS other \gset
SELECT pg_temp.t(pg_temp.try(format('INSERT INTO vibe_ft.promotions (dataset_id, job_id, how) VALUES (%L, %L, %L)',
                                    :'other', :'job1', 'manual')));
SELECT pg_temp.t(pg_temp.try(format('UPDATE vibe_ft.experiments SET dataset_id = %L WHERE id = %s', :'other', :exp1)));
-- A base model nobody fine-tuned: itself.
SELECT model, provider, arm FROM choose_model('u', 'some-other-model');

-- The ratings view: per model and day, with a 95% interval.
SELECT model, answers, rated, positive_rate BETWEEN rate_low_95 AND rate_high_95 AS rate_inside_interval
  FROM vibe_ft.model_ratings WHERE model LIKE '%gpt-5-mini%' ORDER BY model;
-- The chat path cannot write: choose_model and what it calls are STABLE
-- (Postgres refuses a write in a non-volatile function).
SELECT p.oid::regprocedure AS function, p.provolatile
  FROM pg_proc p WHERE p.oid IN ('choose_model(text, text, uuid)'::regprocedure, 'vibe_ft.callable_target(uuid)'::regprocedure,
                                 'vibe_ft.served_job(uuid)'::regprocedure, 'vibe_ft.model_callable(uuid, text, text)'::regprocedure,
                                 'vibe_ft.bucket(text, text)'::regprocedure)
 ORDER BY 1::text;
