-- Each function called the way PostgREST (supabase.rpc) calls it: arguments by
-- name from json_to_record over the request body, as a role granted with
-- vibe_ft.grant_access. Keys left out take the DEFAULT; keys sent as null pass
-- NULL. Results are aggregated with json_agg as PostgREST does.
\set SHOW_CONTEXT never
SELECT id AS ds FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback' \gset
SELECT set_config('search_path', '"public", "extensions"', false) IS NOT NULL AS search_path_set;
SET ROLE regress_backend;

-- supabase.rpc('should_create_finetuning_job', {p_dataset_id, p_min_new_examples: 100, p_min_days_since_last_job: 30})
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds', 'p_min_new_examples', 100, 'p_min_days_since_last_job', 30) AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id", "p_min_new_examples", "p_min_days_since_last_job"
               FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_dataset_id" uuid, "p_min_new_examples" integer, "p_min_days_since_last_job" integer) LIMIT 1) pgrst_body,
    LATERAL "public"."should_create_finetuning_job"("p_dataset_id" := pgrst_body."p_dataset_id",
            "p_min_new_examples" := pgrst_body."p_min_new_examples",
            "p_min_days_since_last_job" := pgrst_body."p_min_days_since_last_job") pgrst_call)
SELECT coalesce(json_agg(_postgrest_t), '[]') AS body FROM (SELECT * FROM pgrst_source) _postgrest_t;

-- Only p_dataset_id sent: the thresholds take their defaults (100, 30).
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds') AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id" FROM json_to_record(pgrst_payload.json_data) AS _("p_dataset_id" uuid) LIMIT 1) pgrst_body,
    LATERAL "public"."should_create_finetuning_job"("p_dataset_id" := pgrst_body."p_dataset_id") pgrst_call)
SELECT coalesce(json_agg(_postgrest_t), '[]') AS body FROM (SELECT * FROM pgrst_source) _postgrest_t;

-- p_min_new_examples sent as null: NULL is passed and refused (HTTP 400).
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds', 'p_min_new_examples', null) AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id", "p_min_new_examples" FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_dataset_id" uuid, "p_min_new_examples" integer) LIMIT 1) pgrst_body,
    LATERAL "public"."should_create_finetuning_job"("p_dataset_id" := pgrst_body."p_dataset_id",
            "p_min_new_examples" := pgrst_body."p_min_new_examples") pgrst_call)
SELECT coalesce(json_agg(_postgrest_t), '[]') AS body FROM (SELECT * FROM pgrst_source) _postgrest_t;

-- supabase.rpc('export_training_dataset_openai_jsonl', {p_dataset_id, p_split: 'train', p_min_quality_score: 6.0})
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds', 'p_split', 'train', 'p_min_quality_score', 6.0) AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id", "p_split", "p_min_quality_score" FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_dataset_id" uuid, "p_split" text, "p_min_quality_score" numeric) LIMIT 1) pgrst_body,
    LATERAL "public"."export_training_dataset_openai_jsonl"("p_dataset_id" := pgrst_body."p_dataset_id",
            "p_split" := pgrst_body."p_split", "p_min_quality_score" := pgrst_body."p_min_quality_score") pgrst_call)
SELECT json_array_length(body) AS rows, body -> 0 AS first_row
  FROM (SELECT coalesce(json_agg(_postgrest_t), '[]') AS body FROM (SELECT * FROM pgrst_source) _postgrest_t) r;

-- Only p_dataset_id: split 'train' and threshold 0 by default.
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds') AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id" FROM json_to_record(pgrst_payload.json_data) AS _("p_dataset_id" uuid) LIMIT 1) pgrst_body,
    LATERAL "public"."export_training_dataset_openai_jsonl"("p_dataset_id" := pgrst_body."p_dataset_id") pgrst_call)
SELECT json_array_length(coalesce(json_agg(_postgrest_t), '[]')) AS rows FROM (SELECT * FROM pgrst_source) _postgrest_t;

-- p_split sent as null: refused, with the argument named.
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT json_build_object('p_dataset_id', :'ds', 'p_split', null) AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id", "p_split" FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_dataset_id" uuid, "p_split" text) LIMIT 1) pgrst_body,
    LATERAL "public"."export_training_dataset_openai_jsonl"("p_dataset_id" := pgrst_body."p_dataset_id",
            "p_split" := pgrst_body."p_split") pgrst_call)
SELECT coalesce(json_agg(_postgrest_t), '[]') AS body FROM (SELECT * FROM pgrst_source) _postgrest_t;

-- supabase.rpc('create_finetuning_job', {p_dataset_id, p_base_model, p_hyperparameters: {n_epochs: 3}, p_suffix})
-- The seed's job from 02 has succeeded, so a new one may start. A scalar result
-- comes back as the bare value.
WITH pgrst_source AS (
  SELECT "public"."create_finetuning_job"("p_dataset_id" := pgrst_body."p_dataset_id",
            "p_base_model" := pgrst_body."p_base_model", "p_hyperparameters" := pgrst_body."p_hyperparameters",
            "p_suffix" := pgrst_body."p_suffix") AS pgrst_scalar
    FROM (SELECT json_build_object('p_dataset_id', :'ds', 'p_base_model', 'gpt-4o-2024-08-06',
                                   'p_hyperparameters', json_build_object('n_epochs', 3), 'p_suffix', 'ftjob-seed') AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id", "p_base_model", "p_hyperparameters", "p_suffix" FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_dataset_id" uuid, "p_base_model" text, "p_hyperparameters" jsonb, "p_suffix" text) LIMIT 1) pgrst_body)
SELECT to_json(pgrst_source.pgrst_scalar)::text ~ '^"[0-9a-f-]{36}"$' AS body_is_a_uuid FROM pgrst_source;

-- A second start while that job is unfinished: 23505, which PostgREST answers with 409.
\set VERBOSITY sqlstate
WITH pgrst_source AS (
  SELECT "public"."create_finetuning_job"("p_dataset_id" := pgrst_body."p_dataset_id") AS pgrst_scalar
    FROM (SELECT json_build_object('p_dataset_id', :'ds') AS json_data) pgrst_payload,
    LATERAL (SELECT "p_dataset_id" FROM json_to_record(pgrst_payload.json_data) AS _("p_dataset_id" uuid) LIMIT 1) pgrst_body)
SELECT to_json(pgrst_source.pgrst_scalar) FROM pgrst_source;
\set VERBOSITY default

-- supabase.rpc('update_finetuning_job_status', {p_job_id, p_openai_job_id, p_status: 'running'})
SELECT id AS job FROM vibe_ft.jobs WHERE status = 'pending' \gset
WITH pgrst_source AS (
  SELECT "public"."update_finetuning_job_status"("p_job_id" := pgrst_body."p_job_id",
            "p_openai_job_id" := pgrst_body."p_openai_job_id", "p_status" := pgrst_body."p_status") AS pgrst_scalar
    FROM (SELECT json_build_object('p_job_id', :'job', 'p_openai_job_id', 'ftjob-def456', 'p_status', 'running') AS json_data) pgrst_payload,
    LATERAL (SELECT "p_job_id", "p_openai_job_id", "p_status" FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_job_id" uuid, "p_openai_job_id" text, "p_status" text) LIMIT 1) pgrst_body)
SELECT pg_typeof(pgrst_scalar) AS result_type FROM pgrst_source;

-- The seed's status poll: only the provider's id, status, model, metrics, error (null).
WITH pgrst_source AS (
  SELECT "public"."update_finetuning_job_status"("p_openai_job_id" := pgrst_body."p_openai_job_id",
            "p_status" := pgrst_body."p_status", "p_fine_tuned_model" := pgrst_body."p_fine_tuned_model",
            "p_training_metrics" := pgrst_body."p_training_metrics", "p_error_message" := pgrst_body."p_error_message") AS pgrst_scalar
    FROM (SELECT '{"p_openai_job_id": "ftjob-def456", "p_status": "succeeded", "p_fine_tuned_model": "ft:gpt-4o-2024-08-06:org-abc:ftjob-seed:def456",
                   "p_training_metrics": {"trained_tokens": 61000, "status": "succeeded"}, "p_error_message": null}'::json AS json_data) pgrst_payload,
    LATERAL (SELECT "p_openai_job_id", "p_status", "p_fine_tuned_model", "p_training_metrics", "p_error_message"
               FROM json_to_record(pgrst_payload.json_data)
                 AS _("p_openai_job_id" text, "p_status" text, "p_fine_tuned_model" text, "p_training_metrics" jsonb, "p_error_message" text) LIMIT 1) pgrst_body)
SELECT pg_typeof(pgrst_scalar) AS result_type FROM pgrst_source;

-- supabase.rpc('get_latest_finetuned_model', {p_base_model: 'gpt-4o-2024-08-06'})
WITH pgrst_source AS (
  SELECT pgrst_call.*
    FROM (SELECT '{"p_base_model": "gpt-4o-2024-08-06"}'::json AS json_data) pgrst_payload,
    LATERAL (SELECT "p_base_model" FROM json_to_record(pgrst_payload.json_data) AS _("p_base_model" text) LIMIT 1) pgrst_body,
    LATERAL "public"."get_latest_finetuned_model"("p_base_model" := pgrst_body."p_base_model") pgrst_call)
SELECT json_agg(json_build_object('model_id', model_id, 'training_examples', training_examples, 'avg_quality_score', avg_quality_score)) AS body
  FROM pgrst_source;

-- {} (no keys): any base model.
WITH pgrst_source AS (
  SELECT pgrst_call.* FROM "public"."get_latest_finetuned_model"() pgrst_call)
SELECT count(*) AS rows FROM pgrst_source;

-- supabase.from('finetuning_job_stats').select('*').order('job_created_at', {ascending: false})
SELECT status, fine_tuned_model, openai_job_id, train_examples, validation_examples, avg_train_quality,
       trained_tokens, dataset_name, started_at IS NOT NULL AS started, finished_at >= started_at AS finished_after_start,
       training_duration_seconds >= 0 AS has_duration, error_message
  FROM "public"."finetuning_job_stats" ORDER BY "job_created_at" DESC LIMIT 1000;

RESET ROLE;

-- A role without grants gets "permission denied" (PostgREST: 401/403).
SET ROLE regress_nobody;
SELECT * FROM should_create_finetuning_job(:'ds');
SELECT * FROM export_training_dataset_openai_jsonl(:'ds');
SELECT create_finetuning_job(:'ds');
SELECT update_finetuning_job_status(p_openai_job_id := 'ftjob-def456', p_status := 'running');
SELECT * FROM get_latest_finetuned_model();
SELECT * FROM finetuning_job_stats ORDER BY job_created_at DESC;
SELECT count(*) FROM vibe_ft.examples;
RESET ROLE;
SET ROLE anon;
SELECT * FROM get_latest_finetuned_model();
SELECT * FROM finetuning_job_stats;
RESET ROLE;
