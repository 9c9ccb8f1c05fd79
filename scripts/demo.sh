#!/usr/bin/env bash
# The vibe_ft demo: a throwaway PostgreSQL 15 cluster with vibe_ft (and its
# background worker) and pg_cron; users' ratings of the sample coach answers
# come in as feedback, the daily generation turns them into examples (redacted,
# deduplicated, with preference pairs), validation and a cost estimate, the
# seed's monthly decision, the JSONL export, then a fine-tuning job run from
# inside the database to the model id get_latest_finetuned_model returns.
# Against the provider simulator (sim/ftsim.py, no training happens), or
# against the real provider when its key is set (that costs money, see README).
# On Together, the model is then served on a dedicated endpoint (the
# simulator's; for real only with VIBE_FT_DEMO_MAX_HOURLY_USD set), called by
# the name vibe_ft.serving_model() gives, and stopped.
# Leaves the cluster running and prints how to connect and how to stop it.
#   bash scripts/demo.sh                        (as root on a fresh machine: installs first)
#   OPENAI_API_KEY=sk-... bash scripts/demo.sh  (a real job on gpt-4o-mini)
#   VIBE_FT_PROVIDER=together bash scripts/demo.sh                 (Together, simulated)
#   VIBE_FT_PROVIDER=together TOGETHER_API_KEY=... bash scripts/demo.sh  (a real Together job)
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
if [ -f "$DEMO_DIR.sim/pid" ]; then
    kill "$(cat "$DEMO_DIR.sim/pid")" 2>/dev/null || true
    rm -rf "$DEMO_DIR.sim"
fi

PROVIDER_NAME=${VIBE_FT_PROVIDER:-openai}
case $PROVIDER_NAME in
    openai) MODEL=gpt-4o-mini-2024-07-18; HYPER='{"n_epochs": 3}'; KEY_VAR=OPENAI_API_KEY; SIM_PATH=/v1 ;;
    together) MODEL=meta-llama/Meta-Llama-3.1-8B-Instruct-Reference; HYPER='{"n_epochs": 3, "learning_rate": 1e-5}'
              KEY_VAR=TOGETHER_API_KEY; SIM_PATH=/together/v1 ;;
    *) echo "VIBE_FT_PROVIDER must be openai or together, got $PROVIDER_NAME" >&2; exit 2 ;;
esac
if [ -n "${!KEY_VAR:-}" ]; then
    PROVIDER="$PROVIDER_NAME (a real, billed job)"
    REAL=1
    # The key stays in the server's environment: never in a file, a table or a log.
    export KEEP_PROVIDER_KEYS=1
    PROVIDER_CONF=("vibe_ft.poll_interval_fast = 15" "vibe_ft.poll_interval = 60")
    WAIT=${VIBE_FT_DEMO_WAIT:-7200}
else
    PROVIDER="$PROVIDER_NAME, simulated (no training happens)"
    REAL=
    mkdir -p "$DEMO_DIR.sim"
    python3 sim/ftsim.py --port 0 --key sk-demo-simulator --job-seconds 20 >"$DEMO_DIR.sim/out" 2>&1 &
    echo $! >"$DEMO_DIR.sim/pid"
    for _ in $(seq 50); do grep -q listening "$DEMO_DIR.sim/out" && break; sleep 0.1; done
    SIM_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DEMO_DIR.sim/out")
    log "started the provider simulator at $SIM_URL (pid $(cat "$DEMO_DIR.sim/pid"))"
    PROVIDER_CONF=("vibe_ft.${PROVIDER_NAME}_base_url = '$SIM_URL$SIM_PATH'"
                   "vibe_ft.${PROVIDER_NAME}_api_key = 'sk-demo-simulator'"
                   "vibe_ft.poll_interval_fast = 2" "vibe_ft.poll_interval = 2")
    WAIT=${VIBE_FT_DEMO_WAIT:-300}
fi

log "starting a throwaway PostgreSQL 15 cluster in $DEMO_DIR (vibe_ft and pg_cron preloaded)"
cluster_start "$DEMO_DIR" "${PROVIDER_CONF[@]}"
q() { cluster_psql "$DEMO_DIR" -d postgres "$@"; }

log "CREATE EXTENSION pg_cron; CREATE EXTENSION vibe_ft;"
q -q -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION vibe_ft"
q -c "\dx vibe_ft"
# Signed-in users (Supabase's authenticated) may rate, and nothing else.
q -q -c "CREATE ROLE demo_signed_in NOLOGIN" -c "SELECT vibe_ft.grant_feedback('demo_signed_in')" >/dev/null

log "users rate answers: demo/coach_conversations.jsonl becomes feedback (thumbs and stars)"
cp demo/coach_conversations.jsonl "$DEMO_DIR/" && chown "$PG_USER" "$DEMO_DIR/coach_conversations.jsonl"
q -q <<SQL
INSERT INTO vibe_ft.datasets (name, description, auto_finetune, min_new_examples, min_days_between_jobs, from_feedback)
VALUES ('Coach Responses from User Feedback', 'Rated answers of the four coaches', true, 50, 30, true);
CREATE TEMP TABLE staging (n serial, line jsonb);
-- One JSON object per line; CSV with delimiters that never occur keeps backslashes intact.
\copy staging (line) FROM '$DEMO_DIR/coach_conversations.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
-- The README's import recipe (a trusted role): an app's existing answers and ratings.
INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, model, provider, thumbs_up, stars, persona)
SELECT 'demo-user-' || (n % 17), 'demo-answer-' || n,
       (line -> 'messages') - -1, line -> 'messages' -> -1 ->> 'content', 'gpt-4o-2024-08-06', 'openai',
       (line ->> 'quality_score')::numeric >= 6,
       least(5, greatest(1, round((line ->> 'quality_score')::numeric / 2.5) + 1))::smallint,
       line ->> 'coach'
  FROM staging
ON CONFLICT (user_id, answer_id) DO NOTHING;
SQL
echo "  and one answer as the app serves it: the backend records it, then the signed-in user rates it by id"
echo "  (supabase.rpc('record_answer', ...) with the service key; supabase.rpc('submit_feedback', ...) as the user):"
q -c "SELECT record_answer('demo-answer-app', 'demo-user-app',
                           '[{\"role\":\"system\",\"content\":\"You are Coach Decibel.\"},{\"role\":\"user\",\"content\":\"Send my plan to sam@example.com or call +1 415 555 0100\"}]',
                           'Done! Plan: 3 runs this week, 20 minutes each. Today: lace up and go.', 'gpt-4o-2024-08-06', 'openai', 'Decibel') AS feedback_id"
q -q -c "BEGIN; SET LOCAL ROLE demo_signed_in;
      DO \$\$ BEGIN PERFORM set_config('request.jwt.claims', '{\"sub\":\"demo-user-app\"}', true); END \$\$;
      SELECT submit_feedback('demo-answer-app', p_thumbs_up => true, p_stars => 5) AS feedback_id; COMMIT;"
q -c "SELECT count(*) AS ratings, count(*) FILTER (WHERE thumbs_up) AS thumbs_up, count(DISTINCT user_id) AS users FROM vibe_ft.feedback"

DS=$(q -At -c "SELECT id FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback'")

log "the daily job (pg_cron at 01:00): SELECT * FROM vibe_ft.generate_examples()"
q -x -c "SELECT * FROM vibe_ft.generate_examples()"
echo "  run again: nothing new"
q -c "SELECT feedback_read, examples_added, pairs_added FROM vibe_ft.generate_examples()"
q -At -c "SELECT 'cron job ' || vibe_ft.schedule_example_generation()"
echo "  redacted before anything leaves the database:"
q -At -c "SELECT '  ' || left(vibe_ft.openai_chat_line(messages), 300) FROM vibe_ft.examples WHERE source_id = (SELECT id::text FROM vibe_ft.feedback WHERE answer_id = 'demo-answer-app')"
q -c "SELECT split, count(*) AS examples, round(avg(quality_score), 2) AS avg_quality FROM vibe_ft.examples GROUP BY split ORDER BY split"

if [ "$PROVIDER_NAME" != openai ]; then
    log "the dataset moves to $PROVIDER_NAME: one UPDATE (examples, pairs, budget and history stay)"
    echo "  UPDATE vibe_ft.datasets SET provider = '$PROVIDER_NAME', base_model = '$MODEL' WHERE id = '$DS'"
    q -q -c "UPDATE vibe_ft.datasets SET provider = '$PROVIDER_NAME', base_model = '$MODEL' WHERE id = '$DS'"
fi

log "checked before money is spent: validate_dataset (the provider's rules) and estimate_cost ($MODEL)"
q -c "SELECT split, valid, examples, tokens, max_example_tokens, examples_over_limit, examples_with_problems, encoding, tokens_exact
        FROM vibe_ft.validate_dataset('$DS', '$MODEL')"
q -x -c "SELECT * FROM vibe_ft.estimate_cost('$DS', '$MODEL', '$HYPER')"

log "the monthly decision: SELECT * FROM should_create_finetuning_job('$DS', 50, 30)"
q -c "SELECT * FROM should_create_finetuning_job('$DS', p_min_new_examples := 50, p_min_days_since_last_job := 30)"

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

log "creating a fine-tuning job against $PROVIDER"
# Its model will be tested against the base model on ratings (below). The
# demo's policy: phases of no minimum length, 60 rated answers per arm (the
# defaults: a day per phase, 100 per arm). An experiment keeps the policy it
# started with.
q -At -c "UPDATE vibe_ft.datasets SET experiment_min_rated = 60, experiment_min_phase_hours = 0 WHERE id = '$DS'" >/dev/null
echo "  SELECT create_finetuning_job('$DS', '$MODEL', '$HYPER', 'coach')"
JOB=$(q -At -c "SELECT create_finetuning_job('$DS', '$MODEL', '$HYPER', 'coach')")
echo "  job $JOB: the commit woke the background worker; watching its events (up to ${WAIT}s)"
last=0
status=pending
deadline=$(( $(date +%s) + WAIT ))
while :; do
    while IFS='|' read -r id at kind to message; do
        [ -n "$id" ] || continue
        last=$id
        if [ "$kind" = status ]; then printf '  %s  %-9s -> %s\n' "$at" "$kind" "$to"
        else printf '  %s  %-9s %s\n' "$at" "$kind" "${message:0:110}"; fi
    done < <(q -At -c "SELECT id, to_char(created_at, 'HH24:MI:SS'), kind, to_status, replace(message, E'\n', ' ')
                         FROM vibe_ft.job_events WHERE job_id = '$JOB' AND id > $last ORDER BY id")
    status=$(q -At -c "SELECT status FROM vibe_ft.jobs WHERE id = '$JOB'")
    case $status in succeeded|failed|cancelled) break ;; esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "  still $status after ${WAIT}s; the worker keeps going. Watch: SELECT * FROM vibe_ft.status;"
        break
    fi
    sleep 1
done

q -x -c "SELECT job_id, provider, fine_tuned_model, serve_model, base_url, retires_at, callable, not_callable_because
           FROM vibe_ft.models WHERE job_id = '$JOB'"
if [ "$status" = succeeded ] && [ "$(q -At -c "SELECT vibe_ft.needs_deployment('$PROVIDER_NAME')")" = t ]; then
    CAP=${VIBE_FT_DEMO_MAX_HOURLY_USD:-}
    [ -n "$REAL" ] || CAP=${CAP:-5}
    if [ -z "$CAP" ]; then
        echo "  $PROVIDER_NAME serves a fine-tuned model on a dedicated endpoint, billed per minute even when idle:"
        echo "  not started (set VIBE_FT_DEMO_MAX_HOURLY_USD, or SELECT * FROM vibe_ft.deploy_model('$JOB', <max USD/h>))"
    else
        log "serving it, on request: SELECT * FROM vibe_ft.deploy_model('$JOB', $CAP, p_inactive_timeout_minutes => 15)"
        q -c "SELECT * FROM vibe_ft.deploy_model('$JOB', $CAP, p_inactive_timeout_minutes => 15)"
        for _ in $(seq 600); do
            [ "$(q -At -c "SELECT callable FROM vibe_ft.models WHERE job_id = '$JOB'")" = t ] && break
            sleep 1
        done
        log "what the chat reads to call it: SELECT * FROM vibe_ft.serving_model()"
        q -x -c "SELECT * FROM vibe_ft.serving_model()"
        if [ -z "$REAL" ]; then
            NAME=$(q -At -c "SELECT model FROM vibe_ft.serving_model()")
            echo "  a chat request with that name:"
            curl -s -X POST "$SIM_URL$SIM_PATH/chat/completions" -H 'authorization: Bearer sk-demo-simulator' \
                -H 'content-type: application/json' \
                -d "{\"model\": \"$NAME\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}" | cut -c1-200; echo
        fi
        log "stopping the endpoint (billing stops; the model stays): SELECT vibe_ft.stop_deployment('$JOB')"
        q -c "SELECT vibe_ft.stop_deployment('$JOB')"
    fi
fi

log "the model the chat should use: SELECT * FROM get_latest_finetuned_model('$MODEL')"
q -c "SELECT * FROM get_latest_finetuned_model('$MODEL')"

if [ "$status" = succeeded ]; then
    log "which model each user gets: the new model is a candidate against the base model, at 10% of users"
    q -c "SELECT x.id AS experiment, x.state, x.share, e.message FROM vibe_ft.experiments x
            JOIN vibe_ft.experiment_events e ON e.experiment_id = x.id WHERE x.candidate_job_id = '$JOB'"
    echo "  per conversation: SELECT * FROM choose_model(<user id>, p_dataset_id => '$DS')"
    q -c "SELECT u AS user_id, c.arm, c.model FROM unnest(ARRAY['ana', 'ben', 'chloe', 'dev', 'emma']) u
            CROSS JOIN LATERAL choose_model(u, p_dataset_id => '$DS') c"
    if [ "$(q -At -c "SELECT callable FROM vibe_ft.models WHERE job_id = '$JOB'")" = t ]; then
        log "simulated users rate what they were served (fine-tune liked 85%, base 60%)"
        for round in 1 2 3 4 5; do
            q -At -c "SELECT count(*) FROM generate_series(1, 700) u
                        CROSS JOIN LATERAL choose_model('demo-user-' || u, p_dataset_id => '$DS') m
                        CROSS JOIN LATERAL record_answer(format('demo-$round-%s', u), 'demo-user-' || u,
                                 '[{\"role\":\"user\",\"content\":\"How do I keep going?\"}]', 'One step at a time.',
                                 m.model, m.provider) r" >/dev/null
            q -At -c "SELECT count(*) FROM vibe_ft.feedback f
                        CROSS JOIN LATERAL submit_feedback(f.answer_id,
                                 vibe_ft.bucket('demo-rating', f.answer_id) < CASE WHEN f.model = '$MODEL' THEN 6000 ELSE 8500 END,
                                 NULL, f.user_id) s
                       WHERE f.answer_id LIKE 'demo-$round-%'" >/dev/null
            echo "  round $round: 700 conversations, rated; SELECT * FROM vibe_ft.evaluate_experiments()"
            q -At -F '  ' -c "SELECT '    ', decision, state, share || '%', reason FROM vibe_ft.evaluate_experiments()"
            [ "$(q -At -c "SELECT state FROM vibe_ft.experiments WHERE candidate_job_id = '$JOB'")" = running ] || break
        done
        q -x -c "SELECT experiment_id, state, candidate_model, control_model, control_rate, candidate_rate,
                        lift, lift_low_95, lift_high_95, p_better, decision FROM vibe_ft.experiment_results"
    fi
    REPORT="$DEMO_DIR/report.html"
    q -At -c "SELECT vibe_ft.report_html('$DS')" >"$REPORT"
    log "the report (jobs, loss by step, positive rate per model, experiments): $REPORT"
fi
q -x -c "SELECT * FROM vibe_ft.status"

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
[ ! -f "$DEMO_DIR.sim/pid" ] || echo "  the simulator: kill $(cat "$DEMO_DIR.sim/pid")"
[ "$status" != failed ] || exit 1
