#!/usr/bin/env bash
# Run every vibe_ft test on this machine (installs what it needs first):
#   1. cargo test of the pure core (vibe_ft_core)
#   2. #[pg_test] in-database tests (cargo pgrx test, as an unprivileged user)
#   3. the pg_regress suite pinning the SQL contract (tests/pg_regress)
#   4. end-to-end tests against real throwaway clusters (tests/e2e)
#   5. PostgreSQL 16, 17 and 18: build, package, the released-SQL check,
#      pg_regress and the end-to-end tests that need no pg_cron, for each
# Usage: scripts/test.sh            (everything)
#        SKIP_SETUP=1 scripts/test.sh   (reuse an earlier setup)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. scripts/pgversions.sh

[ -n "${SKIP_SETUP:-}" ] || bash scripts/setup.sh

work=$(mktemp -d /tmp/vibe_ft-test.XXXXXX)
chmod 755 "$work"
chown "$PG_USER" "$work"
cleanup() {
    for d in "$work"/*/; do cluster_stop "${d%/}" immediate; done
    [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

log "0/5 a released version's install script is frozen"
bash scripts/check-released-sql.sh

log "1/5 unit tests of the pure core"
cargo test -p vibe_ft_core 2>&1 | tee "$work/unit.log" | grep -E "^test result|FAILED|panicked" || true
grep -q "test result: ok" "$work/unit.log" && ! grep -q "FAILED" "$work/unit.log"
# Token counts equal OpenAI's own tokenizer (Python tiktoken, from PyPI, in a venv).
venv=target/tiktoken-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import tiktoken" 2>/dev/null || "$venv/bin/pip" install -q "tiktoken==0.14.0"
"$venv/bin/python" tests/tokens/compare.py
# The simulator's Together API against its own rules (the e2e tests trust it).
python3 -m unittest -q sim/test_together.py

log "2/5 in-database tests (cargo pgrx test, as $PG_USER, in a private copy of PostgreSQL)"
mkdir -p "$work/pgtest" && chown "$PG_USER" "$work/pgtest"
private_pg_tree "$work/pgtree"
PGRX_HOME="$work/pgtree/pgrx" cargo pgrx test pg15 --runas "$PG_USER" --pgdata "$work/pgtest/data" 2>&1 \
    | tee "$work/pgtest.log" | grep -E "^test |^test result|panicked" || true
grep -q "^test result: ok" "$work/pgtest.log"

log "3/5 pg_regress: the SQL contract as callers see it"
PGPORT_FOR_TESTS=5491 cluster_start "$work/regress"
regress_out="$work/regress/out"
as_pg mkdir -p "$regress_out"
# The unprivileged user may not be able to read the checkout: give it a copy.
cp -r tests "$work/tests" && chown -R "$PG_USER" "$work/tests"
PGPORT_FOR_TESTS=5491 cluster_psql "$work/regress" -q -c "CREATE DATABASE vibe_ft_regress"
tests=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//' | sort)
# pg_regress feeds each file to psql on stdin: \i paths are relative to the cwd.
if ! (cd "$work/tests/pg_regress" && as_pg /usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
        --use-existing --bindir="$PG_BIN" --host="$work/regress/sock" --port=5491 --user=postgres \
        --inputdir="$work/tests/pg_regress" --outputdir="$regress_out" --dbname=vibe_ft_regress \
        $tests); then
    cat "$regress_out/regression.diffs" || true
    exit 1
fi
cluster_stop "$work/regress"

log "4/5 end-to-end tests against real clusters"
# The redaction corpus: personal data of twelve locales made by Faker (a
# test-only dependency, pinned, in a venv), fixed seeds; test_redaction
# measures vibe_ft.redact_text on it.
faker_venv=target/faker-venv
[ -x "$faker_venv/bin/python" ] || python3 -m venv "$faker_venv"
"$faker_venv/bin/python" -c "import faker" 2>/dev/null || "$faker_venv/bin/pip" install -q "Faker==37.12.0"
"$faker_venv/bin/python" tests/redaction/corpus.py > "$work/redaction-corpus.jsonl"
chmod 644 "$work/redaction-corpus.jsonl"
VIBE_FT_REDACTION_CORPUS="$work/redaction-corpus.jsonl" python3 tests/e2e/run.py --workdir "$work/e2e"

log "5/5 PostgreSQL 16, 17 and 18"
for major in ${VIBE_FT_OTHER_VERSIONS-16 17 18}; do
    test_version "$major" "$work"
done
