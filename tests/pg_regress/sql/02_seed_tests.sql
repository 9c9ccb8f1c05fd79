-- The seed guide's four test queries ("Testing Fine-Tuning Pipeline"), run
-- unchanged against its dataset: 'Coach Responses from User Feedback', 73
-- examples, no jobs. The seed's own table was ai_training_datasets with a
-- dataset_name column; an app keeping those queries needs only this view.
\i ../fixtures/seed_dataset.sql
CREATE TEMP VIEW ai_training_datasets AS SELECT id, name AS dataset_name FROM vibe_ft.datasets;

-- Test 1: Check Dataset Readiness
SELECT * FROM should_create_finetuning_job(
  p_dataset_id := (SELECT id FROM ai_training_datasets WHERE dataset_name = 'Coach Responses from User Feedback'),
  p_min_new_examples := 50,  -- Lower threshold for testing
  p_min_days_since_last_job := 0
);

-- Test 2: Export Training Data
SELECT COUNT(*) AS train_count
FROM export_training_dataset_openai_jsonl(
  p_dataset_id := (SELECT id FROM ai_training_datasets WHERE dataset_name = 'Coach Responses from User Feedback'),
  p_split := 'train',
  p_min_quality_score := 6.0
);

-- Test 3: Preview Exported JSONL
SELECT jsonl_line
FROM export_training_dataset_openai_jsonl(
  p_dataset_id := (SELECT id FROM ai_training_datasets WHERE dataset_name = 'Coach Responses from User Feedback'),
  p_split := 'train',
  p_min_quality_score := 6.0
)
LIMIT 3;

-- Test 4: Get Latest Model (no job has succeeded yet: no row, so the chat
-- falls back to the base model)
SELECT * FROM get_latest_finetuned_model('gpt-4o-2024-08-06');

-- ... and after a successful fine-tuning (the seed's "Expected Result").
SELECT create_finetuning_job(
  (SELECT id FROM ai_training_datasets WHERE dataset_name = 'Coach Responses from User Feedback'),
  p_hyperparameters := '{"n_epochs": 3}') IS NOT NULL AS job_created \gset
SELECT update_finetuning_job_status(
  p_job_id := (SELECT id FROM vibe_ft.jobs),
  p_openai_job_id := 'ftjob-abc123',
  p_status := 'running');
SELECT update_finetuning_job_status(
  p_openai_job_id := 'ftjob-abc123',
  p_status := 'succeeded',
  p_fine_tuned_model := 'ft:gpt-4o:org-abc:model-xyz-123',
  p_training_metrics := '{"trained_tokens": 52000, "status": "succeeded"}');
SELECT model_id, job_id IS NOT NULL AS has_job_id, created_at IS NOT NULL AS has_created_at,
       training_examples, avg_quality_score
  FROM get_latest_finetuned_model('gpt-4o-2024-08-06');

-- The seed's Test 1 again: the job counted, nothing new since.
SELECT * FROM should_create_finetuning_job(
  p_dataset_id := (SELECT id FROM ai_training_datasets WHERE dataset_name = 'Coach Responses from User Feedback'),
  p_min_new_examples := 50,
  p_min_days_since_last_job := 0
);
