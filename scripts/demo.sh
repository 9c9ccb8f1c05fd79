#!/usr/bin/env bash
# The vibe_ft demo: a throwaway PostgreSQL 15 cluster with vibe_ft and pg_cron,
# the sample coach conversations loaded, the seed's monthly decision, the JSONL
# export written to files, a job recorded, finetuning_job_stats shown.
# Leaves the cluster running and prints how to connect and how to stop it.
#   bash scripts/demo.sh            (as root on a fresh machine: installs first)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DEMO_DIR=${VIBE_FT_DEMO_DIR:-/tmp/vibe_ft-demo}
export PGPORT_FOR_TESTS=${VIBE_FT_DEMO_PORT:-5433}
[ -n "${SKIP_SETUP:-}" ] || bash scripts/setup.sh

if [ -d "$DEMO_DIR" ]; then
    log "removing the previous demo cluster in $DEMO_DIR"
    cluster_stop "$DEMO_DIR" immediate
    rm -rf "$DEMO_DIR"
fi

log "starting a throwaway PostgreSQL 15 cluster in $DEMO_DIR (vibe_ft and pg_cron preloaded)"
cluster_start "$DEMO_DIR"
q() { cluster_psql "$DEMO_DIR" -d postgres "$@"; }

log "CREATE EXTENSION pg_cron; CREATE EXTENSION vibe_ft;"
q -q -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION vibe_ft"
q -c "\dx vibe_ft"

log "creating the dataset and loading demo/coach_conversations.jsonl"
cp demo/coach_conversations.jsonl "$DEMO_DIR/" && chown "$PG_USER" "$DEMO_DIR/coach_conversations.jsonl"
q -q <<SQL
INSERT INTO vibe_ft.datasets (name, description, auto_finetune, min_new_examples, min_days_between_jobs)
VALUES ('Coach Responses from User Feedback', 'Rated answers of the four coaches', true, 100, 30);
CREATE TEMP TABLE staging (line jsonb);
-- One JSON object per line; CSV with delimiters that never occur keeps backslashes intact.
\copy staging (line) FROM '$DEMO_DIR/coach_conversations.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, source, metadata)
SELECT d.id, s.line -> 'messages', (s.line ->> 'quality_score')::numeric, 'demo', jsonb_build_object('coach', s.line ->> 'coach')
  FROM staging s, vibe_ft.datasets d WHERE d.name = 'Coach Responses from User Feedback';
SQL
q -c "SELECT split, count(*) AS examples, round(avg(quality_score), 2) AS avg_quality,
             count(*) FILTER (WHERE quality_score >= 6) AS quality_6_plus
        FROM vibe_ft.examples GROUP BY split ORDER BY split"

DS=$(q -At -c "SELECT id FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback'")

log "the monthly decision: SELECT * FROM should_create_finetuning_job('$DS', 100, 30)"
q -c "SELECT * FROM should_create_finetuning_job('$DS', p_min_new_examples := 100, p_min_days_since_last_job := 30)"

log "exporting JSONL (quality >= 6) to $DEMO_DIR/out/"
as_pg mkdir -p "$DEMO_DIR/out"
for split in train validation; do
    q -At -c "SELECT jsonl_line FROM export_training_dataset_openai_jsonl('$DS', '$split', 6.0)" \
        | as_pg tee "$DEMO_DIR/out/$split.jsonl" >/dev/null
    python3 - "$DEMO_DIR/out/$split.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
for l in lines:
    json.loads(l)  # every line is one valid JSON object
print(f"  {sys.argv[1]}: {len(lines)} lines, all valid JSON")
PY
done
echo "  first line:"; head -n 1 "$DEMO_DIR/out/train.jsonl" | cut -c1-220; echo "  ..."

log "recording a fine-tuning job: SELECT create_finetuning_job('$DS', p_hyperparameters := '{\"n_epochs\": 3}')"
JOB=$(q -At -c "SELECT create_finetuning_job('$DS', p_hyperparameters := '{\"n_epochs\": 3}', p_suffix := 'coach')")
echo "  job $JOB (pending: the background worker, or vibe_ft's SQL steps, take it to the provider)"

log "scheduling the monthly check with pg_cron"
q -At -c "SELECT 'cron job ' || vibe_ft.schedule_monthly_check()"
q -c "SELECT jobname, schedule, command FROM cron.job"

log "finetuning_job_stats"
q -x -c "SELECT * FROM finetuning_job_stats ORDER BY job_created_at DESC"

cat <<TXT

The demo cluster is still running.
  connect: runuser -u $PG_USER -- psql -h $DEMO_DIR/sock -p $PGPORT_FOR_TESTS -U postgres
  stop:    runuser -u $PG_USER -- /usr/lib/postgresql/15/bin/pg_ctl -D $DEMO_DIR/data stop
TXT
