#!/usr/bin/env python3
"""vibe_ft benchmark (run by hand; not part of the tests).

Starts a throwaway cluster, generates data, and prints ratios against baselines
measured in the same run:

  export    1,000,000 examples of about 1 KB: vibe_ft's export vs the
            straightforward plain-SQL export producing byte-identical lines (checked)
            vs the floor, COPY of the same rows' stored jsonb to /dev/null.
            Also the backend's peak anonymous memory growth while exporting.
  decision  should_create_finetuning_job median server-side time with 100,000 vs
            10,000,000 examples over 10,000 datasets, each with 10 examples newer
            than its last successful job.
  upload    a ~500 MB training file uploaded by the background worker to the
            provider simulator (--provider together: Together's upload path)
            vs curl uploading the same file to the same
            simulator; the worker's peak anonymous memory growth meanwhile.
  idle      the idle background worker's CPU use over 60 s.
  serving   what a chat request asks (get_latest_finetuned_model, serving_model)
            with 2,000 succeeded jobs over 100 datasets, 50 of them on
            Together with endpoints: server-side median vs 0.4.0's plain
            query (newest succeeded job by base model, no callable rule).
  generate  1,000,000 feedback rows to examples and preference pairs with
            vibe_ft.generate_examples (weights, redaction, dedup, pairs) vs a
            plain-SQL INSERT ... SELECT of the same examples (weights, email
            redaction by regexp, dedup by hash; no phones, cards or pairs);
            the backend's peak anonymous memory growth; a second run (nothing new).
  tokens    token counting throughput, vibe_ft (tiktoken-rs) vs Python tiktoken
            on the fixture corpus, same run (tests/tokens/compare.py --bench).
  experiments  choose_model at 100 running experiments and 1,000,000 recorded
            answers: server-side median vs a plain-SQL lookup of a precomputed
            assignment table (same users); evaluate_experiments() over those
            answers, and again once 1,000,000 answers outside the running
            phases (already decided) are added.

    sudo python3 bench/bench.py [--examples 1000000] [--small 100000] [--large 10000000]

Needs scripts/setup.sh to have run (it installs the release build).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import Cluster, Sim  # noqa: E402  (the e2e tests' cluster and simulator helpers)

# One example of about 1 KB: system prompt, user message, assistant answer, with
# quotes, a backslash, newlines, a tab and non-ASCII text so escaping is exercised.
GEN_EXAMPLES = r"""
INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, split, content_hash)
SELECT %(ds)s, m, (i %% 11)::numeric, 'train', sha256(convert_to(m::text, 'UTF8'))
  FROM (SELECT i, jsonb_build_array(
          jsonb_build_object('role', 'system', 'content',
             'You are Coach Decibel, a loud and upbeat strength coach. Keep answers short, concrete and kind. Always end with one action the user can take today. ' || md5(i::text)),
          jsonb_build_object('role', 'user', 'content',
             'Question #' || i || E': I only have 20 minutes today, is it "worth it" to train?\nMy knees hurt a bit \\ and I slept badly. ' || md5((i + 1)::text)),
          jsonb_build_object('role', 'assistant', 'content',
             E'YES. Twenty minutes is plenty \u2014 warm up 3 minutes, then 4 rounds:\n\t10 goblet squats\n\t8 push-ups\n\t12 rows\n\t30 s plank.\n' ||
             'Keep the squats to a pain-free depth and slow the way down to 3 seconds; sharp pain means stop. ' ||
             'Rest 45 seconds between rounds and drink some water. Caf\u00e9 after? Fine. \U0001F4AA ' ||
             repeat(md5((i + 2)::text), 6))) AS m
          FROM generate_series(%(lo)s, %(hi)s) AS i) AS g
"""


def q(c, sql, db="postgres"):
    return c.sql(sql, db)


def timed(c, sql, runs=3, db="postgres"):
    """Median wall-clock seconds of running `sql` in a fresh psql session."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        c.sql(sql, db)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rss_anon_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def peak_memory_growth_mb(c, sql, appname):
    """Run sql in its own session; sample that backend's anonymous RSS every 20 ms.
    Returns (peak - baseline) in MB, the baseline taken while the session sleeps first."""
    env = dict(os.environ, PGAPPNAME=appname)
    p = subprocess.Popen(c.psql_cmd(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    p.stdin.write(f"SELECT pg_sleep(0.5);\n{sql}\n")
    p.stdin.close()
    p.stdin = None
    pid = None
    deadline = time.time() + 10
    while pid is None and time.time() < deadline:
        rows = c.sql(f"SELECT pid FROM pg_stat_activity WHERE application_name = '{appname}'")
        pid = int(rows[0][0]) if rows else None
        time.sleep(0.05)
    base = rss_anon_kb(pid)
    peak = base or 0
    while p.poll() is None:
        v = rss_anon_kb(pid)
        if v:
            peak = max(peak, v)
        time.sleep(0.02)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.read())
    return (peak - base) / 1024.0


def bench_export(c, n):
    print(f"\n== export: {n:,} examples of about 1 KB ==", flush=True)
    q(c, "CREATE EXTENSION vibe_ft; INSERT INTO vibe_ft.datasets (name) VALUES ('bench-export');")
    ds = c.one("SELECT quote_literal(id) FROM vibe_ft.datasets WHERE name = 'bench-export'")
    t0 = time.perf_counter()
    q(c, "ALTER TABLE vibe_ft.examples DISABLE TRIGGER examples_before_write")  # hash + split set below
    step = 250_000
    for lo in range(1, n + 1, step):
        q(c, GEN_EXAMPLES % {"ds": ds, "lo": lo, "hi": min(lo + step - 1, n)})
    q(c, "ALTER TABLE vibe_ft.examples ENABLE TRIGGER examples_before_write; VACUUM ANALYZE vibe_ft.examples")
    size = c.one("SELECT pg_size_pretty(pg_total_relation_size('vibe_ft.examples'))")
    avg = c.one("SELECT round(avg(octet_length(vibe_ft.openai_chat_line(messages)))) FROM vibe_ft.examples TABLESAMPLE SYSTEM (1)")
    print(f"generated in {time.perf_counter() - t0:.0f}s; table {size}; average line {avg} bytes")

    ext = f"SELECT jsonl_line FROM export_training_dataset_openai_jsonl({ds}, 'train', 0)"
    plain = f"""SELECT '{{"messages":[' || (SELECT string_agg('{{"role":' || to_json(m ->> 'role')::text
                                                       || ',"content":' || to_json(m ->> 'content')::text || '}}', ',' ORDER BY o)
                                            FROM jsonb_array_elements(e.messages) WITH ORDINALITY AS a(m, o)) || ']}}'
                 FROM vibe_ft.examples e
                WHERE e.dataset_id = {ds} AND e.split = 'train' AND e.quality_score >= 0
                ORDER BY e.id"""
    floor = f"""SELECT e.messages FROM vibe_ft.examples e
                WHERE e.dataset_id = {ds} AND e.split = 'train' AND e.quality_score >= 0 ORDER BY e.id"""

    # Byte-identical, in the same order: compare digests of every line in order.
    digest = "SELECT md5(string_agg(md5(l), '')) FROM ({}) AS t(l)"
    d_ext, d_plain = c.one(digest.format(ext)), c.one(digest.format(plain))
    same = d_ext == d_plain
    print(f"vibe_ft and plain SQL lines byte-identical: {same} ({d_ext})")

    q(c, f"COPY ({floor}) TO '/dev/null'")  # warm the cache for everyone
    t_ext = timed(c, f"COPY ({ext}) TO '/dev/null'")
    t_plain = timed(c, f"COPY ({plain}) TO '/dev/null'")
    t_floor = timed(c, f"COPY ({floor}) TO '/dev/null'")
    mem_ext = peak_memory_growth_mb(c, f"COPY ({ext}) TO '/dev/null'", "bench_mem_ext")
    # PostgREST's shape: the function in FROM under LATERAL, results aggregated by the client.
    lateral = f"""COPY (SELECT x.jsonl_line FROM (SELECT {ds}::uuid AS d) b,
                      LATERAL export_training_dataset_openai_jsonl(b.d, 'train', 0) x) TO '/dev/null'"""
    t_lateral = timed(c, lateral, runs=1)
    mem_lateral = peak_memory_growth_mb(c, lateral, "bench_mem_lateral")

    print(f"{'':34}{'seconds':>9}{'MB/s':>8}")
    mb = float(c.one(f"SELECT sum(octet_length(l)) / 1e6 FROM ({ext}) AS t(l)"))
    for name, t in [("vibe_ft export", t_ext), ("vibe_ft export, PostgREST LATERAL", t_lateral),
                    ("plain SQL (byte-identical)", t_plain), ("floor: COPY stored jsonb", t_floor)]:
        print(f"{name:34}{t:9.2f}{mb / t:8.0f}")
    print(f"ratio plain SQL / vibe_ft:  {t_plain / t_ext:.2f}x  (goal >= 2)")
    print(f"ratio vibe_ft / floor:      {t_ext / t_floor:.2f}x  (goal <= 1.3)")
    print(f"backend peak memory growth: {mem_ext:.1f} MB (select-list COPY), {mem_lateral:.1f} MB (LATERAL)  (goal < 100)")
    return same


def bench_decision(c, small, large, datasets=10_000, samples=2000):
    print(f"\n== decision: should_create_finetuning_job, {datasets:,} datasets ==", flush=True)
    results = {}
    for n in (small, large):
        db = f"dec{n}"
        q(c, f"CREATE DATABASE {db}")
        q(c, "CREATE EXTENSION vibe_ft;", db)
        q(c, f"INSERT INTO vibe_ft.datasets (name) SELECT 'ds' || i FROM generate_series(1, {datasets}) i", db)
        t0 = time.perf_counter()
        q(c, "ALTER TABLE vibe_ft.examples DISABLE TRIGGER examples_before_write", db)
        per = n // datasets
        step = 1_000_000
        for lo in range(0, n, step):
            hi = min(lo + step, n) - 1
            q(c, f"""
                WITH d AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM vibe_ft.datasets)
                INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, split, content_hash)
                SELECT d.id, jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'q' || i),
                                               jsonb_build_object('role', 'assistant', 'content', 'a' || i)),
                       7, CASE WHEN i % 10 = 0 THEN 'validation' ELSE 'train' END, sha256(i::text::bytea)
                  FROM generate_series({lo}, {hi}) AS i JOIN d ON d.k = i % {datasets}""", db)
        # Every dataset had a successful job 40 days ago, and has had 10 new examples
        # since (at 100,000 examples that is all of them): the history grows 100x
        # between the two runs, the new data does not. Counting the new examples
        # costs about 1 microsecond each (index-only scan), by design.
        q(c, """
            INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, fine_tuned_model, created_at, finished_at, last_example_id)
            SELECT e.dataset_id, 'gpt-4o-2024-08-06', 'succeeded', 'ft:x', now() - interval '40 days', now() - interval '39 days',
                   coalesce((array_agg(e.id ORDER BY e.id DESC))[11], 0)
              FROM vibe_ft.examples e GROUP BY e.dataset_id;
            ALTER TABLE vibe_ft.examples ENABLE TRIGGER examples_before_write;
            VACUUM ANALYZE;""", db)
        size = c.one("SELECT pg_size_pretty(pg_total_relation_size('vibe_ft.examples'))", db)
        print(f"{n:>11,} examples ({per} per dataset) generated in {time.perf_counter() - t0:.0f}s, table {size}",
              flush=True)
        cold, warm, p95 = [float(x) for x in q(c, f"{BENCH_FN} SELECT * FROM pg_temp.bench({samples});", db)[-1]]
        results[n] = (cold, warm)
        print(f"{n:>11,} examples: median {cold:.3f} ms first call per dataset (cold buffers), "
              f"{warm:.3f} ms again (p95 {p95:.3f} ms), server-side", flush=True)
        # The new-examples count: an index-only scan of the new rows, no heap visits.
        plan = q(c, """EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF)
                       SELECT count(*) FROM vibe_ft.examples
                        WHERE dataset_id = (SELECT dataset_id FROM vibe_ft.jobs ORDER BY id LIMIT 1)
                          AND split = 'train'
                          AND id > (SELECT last_example_id FROM vibe_ft.jobs ORDER BY id LIMIT 1)""", db)
        print("  count of new train examples, one dataset:\n    " + "\n    ".join(r[0].strip() for r in plan if "examples" in r[0] or "Heap" in r[0] or "Index Cond" in r[0]))
    for i, name in enumerate(["cold", "warm"]):
        ratio = results[large][i] / results[small][i]
        print(f"ratio {large:,} / {small:,} ({name}): {ratio:.2f}  (goal < 1.5); "
              f"median at {large:,}: {results[large][i]:.3f} ms (goal < 1 ms)")


BENCH_FN = """CREATE OR REPLACE FUNCTION pg_temp.bench(n int)
 RETURNS TABLE (cold_median_ms float8, warm_median_ms float8, warm_p95_ms float8) LANGUAGE plpgsql AS $$
 DECLARE ids uuid[]; t timestamptz; cold float8[] := '{}'; warm float8[] := '{}'; i int; pass int;
 BEGIN
   SELECT array_agg(id) INTO ids FROM (SELECT id FROM vibe_ft.datasets ORDER BY random() LIMIT n + 1) s;
   PERFORM * FROM should_create_finetuning_job(ids[n + 1], 100, 30);  -- load the library, plan once
   FOR pass IN 1 .. 2 LOOP  -- pass 1: these datasets' pages are not in shared buffers yet; pass 2: they are
     FOR i IN 1 .. n LOOP
       t := clock_timestamp();
       PERFORM * FROM should_create_finetuning_job(ids[i], 100, 30);
       IF pass = 1 THEN cold := cold || extract(epoch FROM clock_timestamp() - t) * 1000;
       ELSE warm := warm || extract(epoch FROM clock_timestamp() - t) * 1000; END IF;
     END LOOP;
   END LOOP;
   RETURN QUERY SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(cold) x),
                       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(warm) x),
                       (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY x) FROM unnest(warm) x);
 END $$;"""


GEN_FEEDBACK = r"""
INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, thumbs_up, stars, persona)
SELECT 'user-' || (i %% 5000), 'answer-' || i,
       jsonb_build_array(
         jsonb_build_object('role', 'system', 'content', 'You are Coach Decibel, a loud and upbeat strength coach.'),
         jsonb_build_object('role', 'user', 'content',
            'Question #' || (i / 5) || E': 20 minutes today, "worth it"? Mail me at user' || (i / 5 %% 5000) || '@example.com')),
       CASE WHEN i %% 5 = 4 THEN 'Skip it.' ELSE
         E'YES. Warm up 3 minutes, then 4 rounds:\n\t10 goblet squats\n\t8 push-ups\n\t12 rows. ' || md5(i::text) END,
       CASE WHEN i %% 5 = 4 THEN false WHEN i %% 5 = 3 THEN NULL ELSE true END,
       CASE WHEN i %% 5 = 3 THEN 2 WHEN i %% 5 = 0 THEN 5 END,
       'decibel'
  FROM generate_series(%(lo)s, %(hi)s) AS i
"""


def bench_generate(c, n):
    print(f"\n== generate: {n:,} feedback rows to examples and preference pairs ==", flush=True)
    q(c, "CREATE EXTENSION vibe_ft; INSERT INTO vibe_ft.datasets (name, from_feedback) VALUES ('bench-gen', true);")
    t0 = time.perf_counter()
    step = 250_000
    for lo in range(1, n + 1, step):
        q(c, GEN_FEEDBACK % {"lo": lo, "hi": min(lo + step - 1, n)})
    q(c, "VACUUM ANALYZE vibe_ft.feedback")
    size = c.one("SELECT pg_size_pretty(pg_total_relation_size('vibe_ft.feedback'))")
    print(f"inserted (through the validating trigger) in {time.perf_counter() - t0:.0f}s; table {size}")
    t0 = time.perf_counter()
    mem = peak_memory_growth_mb(c, "SELECT * FROM vibe_ft.generate_examples()", "bench_mem_generate")
    t_gen = time.perf_counter() - t0 - 0.5  # the session sleeps 0.5 s first
    r = c.sql("SELECT count(*) FROM vibe_ft.examples")[0][0], c.sql("SELECT count(*) FROM vibe_ft.preference_examples")[0][0]
    t_again = timed(c, "SELECT * FROM vibe_ft.generate_examples()", runs=1)
    # The baseline writes the same examples into the same table (same trigger,
    # same indexes) for a second dataset, in one INSERT ... SELECT: weights in
    # SQL, emails redacted by regexp (no phones or cards), dedup by the same
    # unique key; no preference pairs.
    plain = """
        INSERT INTO vibe_ft.datasets (name) VALUES ('bench-plain');
        INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score, source, source_id)
        SELECT (SELECT id FROM vibe_ft.datasets WHERE name = 'bench-plain'), m, s, 'feedback', id::text FROM (
          SELECT f.id, s,
                 (SELECT jsonb_agg(CASE WHEN e ->> 'role' = 'assistant' THEN e || '{"weight":0}' ELSE
                           jsonb_set(e, '{content}', to_jsonb(regexp_replace(e ->> 'content',
                             '[A-Za-z0-9._%%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}', '[email]', 'g'))) END
                           ORDER BY o) FROM jsonb_array_elements(f.messages) WITH ORDINALITY AS a(e, o))
                 || jsonb_build_array(jsonb_build_object('role', 'assistant', 'content', f.answer, 'weight', 1)) AS m
            FROM vibe_ft.feedback f,
                 LATERAL (SELECT CASE WHEN f.thumbs_up IS NOT NULL AND f.stars IS NOT NULL
                                      THEN ((CASE WHEN f.thumbs_up THEN 8 ELSE 2 END) + (f.stars - 1) * 2.5) / 2
                                      WHEN f.thumbs_up IS NOT NULL THEN CASE WHEN f.thumbs_up THEN 8 ELSE 2 END
                                      ELSE (f.stars - 1) * 2.5 END AS s) sc
           WHERE s >= 6) x
        ON CONFLICT (dataset_id, content_hash) DO NOTHING
    """
    t0 = time.perf_counter()
    mem_plain = peak_memory_growth_mb(c, plain, "bench_mem_plain")
    t_plain = time.perf_counter() - t0 - 0.5
    n_plain = c.one("SELECT count(*) FROM vibe_ft.examples e JOIN vibe_ft.datasets d ON d.id = e.dataset_id"
                    " WHERE d.name = 'bench-plain'")
    print(f"vibe_ft.generate_examples: {t_gen:.1f}s -> {r[0]} examples, {r[1]} preference pairs; "
          f"second run (nothing new) {t_again * 1000:.0f} ms")
    print(f"plain SQL into the same table (examples only, emails only): {t_plain:.1f}s -> {n_plain} examples")
    print(f"ratio vibe_ft / plain SQL: {t_gen / t_plain:.2f}x (vibe_ft also builds pairs and redacts phones and cards)")
    print(f"backend peak memory growth: generate_examples {mem:.1f} MB, plain SQL {mem_plain:.1f} MB "
          f"(goal: flat; what grows with rows is Postgres' queue of foreign-key checks, in both)")
    return r[0] == n_plain


def bench_tokens():
    print("\n== tokens: counting throughput vs Python tiktoken (fixture corpus) ==", flush=True)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    venv = os.path.join(root, "target", "tiktoken-venv")
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "tiktoken==0.14.0"], check=True)
    py = os.path.join(venv, "bin", "python")
    compare = os.path.join(root, "tests", "tokens", "compare.py")
    subprocess.run([py, compare], check=True)
    subprocess.run([py, compare, "--bench", "50"], check=True)
    return True


def worker_pid(c):
    from harness import wait_for
    return int(wait_for("the worker", lambda: c.sql(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'"))[0][0])


def bench_upload(c, sim, mb, provider="openai"):
    """The worker uploads a ~mb MB training file; curl uploads the same file
    (to OpenAI's upload path, or Together's: --provider together)."""
    per_example = 1010  # bytes per exported line of GEN_EXAMPLES, roughly
    n = mb * 1024 * 1024 // per_example
    q(c, "CREATE EXTENSION vibe_ft;"
         "INSERT INTO vibe_ft.datasets (name, validation_share, min_quality_score) VALUES ('upload', 0, 0)")
    ds = c.one("SELECT id FROM vibe_ft.datasets")
    if provider == "together":
        q(c, "UPDATE vibe_ft.datasets SET provider = 'together', base_model = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference'")
    t0 = time.perf_counter()
    step = 200_000
    for lo in range(1, n + 1, step):
        q(c, GEN_EXAMPLES % {"ds": f"'{ds}'", "lo": lo, "hi": min(lo + step - 1, n)})
    q(c, "VACUUM ANALYZE vibe_ft.examples")
    print(f"upload: generated {n:,} examples in {time.perf_counter() - t0:.0f} s")
    # The same bytes as a file for curl: the export function writes what the runner uploads.
    path = os.path.join(c.dir, "train.jsonl")
    with open(path, "wb") as f:
        subprocess.run(c.psql_cmd() + ["-c", f"COPY (SELECT jsonl_line FROM export_training_dataset_openai_jsonl('{ds}', 'train', 0)) TO STDOUT"
                       # CSV with characters that never occur: no quoting, no backslash escapes.
                       " WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"],
                       stdout=f, check=True)
    size = os.path.getsize(path)
    # curl first, its file deleted at once: the simulator processes (checks) a
    # file when it is listed, which must not slow down the worker's upload.
    t0 = time.perf_counter()
    if provider == "openai":
        form, base = ["-F", "purpose=fine-tune"], f"{sim.base}/v1"
        up = f"{base}/files"
    else:
        form, base = ["-F", "purpose=fine-tune", "-F", "file_name=curl.jsonl", "-F", "file_type=jsonl"], f"{sim.base}/together/v1"
        up = f"{base}/files/upload"
    out = subprocess.run(["curl", "-sS", "-f", "-H", f"Authorization: Bearer {sim.key}", *form,
                          "-F", f"file=@{path};filename=curl.jsonl;type=application/jsonl", up],
                         check=True, capture_output=True, text=True).stdout
    curl = time.perf_counter() - t0
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-X", "DELETE", "-H", f"Authorization: Bearer {sim.key}",
                    f"{base}/files/{json.loads(out)['id']}"], check=True)
    pid = worker_pid(c)
    base = rss_anon_kb(pid)
    peak = [base]
    stop = threading.Event()

    samples = []  # (wall clock, anonymous RSS in kB)

    def sample():
        while not stop.is_set():
            v = rss_anon_kb(pid)
            if v:
                peak[0] = max(peak[0], v)
                samples.append((time.time(), v))
            time.sleep(0.01)
    t = threading.Thread(target=sample)
    t.start()
    model = "gpt-4o-mini-2024-07-18" if provider == "openai" else "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    job = c.one(f"SELECT create_finetuning_job('{ds}', '{model}')")
    from harness import wait_for
    wait_for("the upload", lambda: c.one(
        f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message ~ '^(uploaded|reused) train file'") == "1",
        timeout=1800, every=0.5)
    stop.set()
    t.join()
    secs = float(c.one(f"""SELECT extract(epoch FROM
        (SELECT created_at FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE 'uploaded train file%')
      - (SELECT created_at FROM vibe_ft.job_events WHERE job_id = '{job}' AND to_status = 'uploading'))"""))
    retries = c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'error'")
    assert retries == "0", f"the upload was retried {retries} time(s): not a clean measurement"
    uploaded = c.one(f"SELECT training_file_id FROM vibe_ft.jobs WHERE id = '{job}'")
    files = sim.state()["files"] if provider == "openai" else sim.together()["files"]
    sim_bytes = [f["bytes"] for f in files if f["id"] == uploaded][0]
    assert sim_bytes == size, f"the worker uploaded {sim_bytes} bytes, the export is {size}"
    growth = (peak[0] - base) / 1024
    upload_started = float(c.one(f"SELECT extract(epoch FROM created_at) FROM vibe_ft.job_events WHERE job_id = '{job}' AND to_status = 'uploading'"))
    export_peak = max([v for t, v in samples if t < upload_started] or [base])
    upload_base = min([v for t, v in samples if t >= upload_started] or [base])
    upload_peak = max([v for t, v in samples if t >= upload_started] or [base])
    ratio = curl / secs
    print(f"upload ({provider}): {size / 1e6:.0f} MB training file")
    print(f"  vibe_ft worker (find + streamed multipart upload): {secs:.2f} s, {size / 1e6 / secs:.0f} MB/s")
    print(f"  curl -F to the same simulator:                     {curl:.2f} s, {size / 1e6 / curl:.0f} MB/s")
    print(f"  throughput vibe_ft / curl: {ratio:.2f} (goal >= 0.8)")
    print(f"  worker anonymous memory: {base / 1024:.0f} MB before; export peak +{(export_peak - base) / 1024:.1f} MB; "
          f"upload peak +{(upload_peak - upload_base) / 1024:.1f} MB over the upload's start; overall peak +{growth:.1f} MB "
          f"(goal < 64)")
    return ratio >= 0.8 and growth < 64


SERVING_FN = """CREATE OR REPLACE FUNCTION pg_temp.bench_serving(n int, q text)
 RETURNS float8 LANGUAGE plpgsql AS $$
 DECLARE t timestamptz; xs float8[] := '{}'; i int;
 BEGIN
   EXECUTE q;  -- load the library, plan once
   FOR i IN 1 .. n LOOP
     t := clock_timestamp();
     EXECUTE q;
     xs := xs || extract(epoch FROM clock_timestamp() - t) * 1000;
   END LOOP;
   RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(xs) x);
 END $$;"""


def bench_serving(c, samples=2000):
    """The model a chat request should call: vibe_ft's callable rule vs 0.4.0's query."""
    print("\n== serving: the model to call, 2,000 succeeded jobs ==", flush=True)
    q(c, """CREATE EXTENSION vibe_ft;
            INSERT INTO vibe_ft.datasets (name) SELECT 'd' || i FROM generate_series(1, 100) i;
            INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, fine_tuned_model, finished_at, provider)
            SELECT d.id, CASE WHEN d.name::text ~ '[05]$' THEN 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference'
                              ELSE (ARRAY['gpt-4o-2024-08-06', 'gpt-4o-mini-2024-07-18', 'gpt-4.1-2025-04-14'])[1 + i % 3] END,
                   'succeeded', 'ft:x:' || i || ':' || d.name, now() - i * interval '1 minute',
                   CASE WHEN d.name::text ~ '[05]$' THEN 'together' ELSE 'openai' END
              FROM vibe_ft.datasets d, generate_series(1, 20) i;
            -- The newest Together model of each Together dataset has a running endpoint.
            INSERT INTO vibe_ft.deployments (job_id, provider, model, endpoint_id, endpoint_name, hardware, min_replicas,
                                             max_replicas, hourly_usd, max_hourly_usd, inactive_timeout_minutes, state)
            SELECT DISTINCT ON (j.dataset_id) j.id, 'together', j.fine_tuned_model, 'ep-' || j.id, 'acct/ep-' || j.id,
                   '1x_nvidia_h100_80gb_sxm', 1, 1, 3.99, 5, 60, 'STARTED'
              FROM vibe_ft.jobs j WHERE j.provider = 'together' ORDER BY j.dataset_id, j.finished_at DESC;
            VACUUM ANALYZE;""")
    cases = [
        ("0.4.0 query, one base model (baseline)",
         "SELECT fine_tuned_model FROM vibe_ft.jobs WHERE status = 'succeeded' AND fine_tuned_model IS NOT NULL"
         " AND base_model = 'gpt-4o-mini-2024-07-18' ORDER BY finished_at DESC, created_at DESC LIMIT 1"),
        ("get_latest_finetuned_model(base model)", "SELECT * FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18')"),
        ("vibe_ft.serving_model(base model)", "SELECT * FROM vibe_ft.serving_model('gpt-4o-mini-2024-07-18')"),
        ("vibe_ft.serving_model(Together base)",
         "SELECT * FROM vibe_ft.serving_model('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference')"),
        ("0.4.0 query, any base model (baseline)",
         "SELECT fine_tuned_model FROM vibe_ft.jobs WHERE status = 'succeeded' AND fine_tuned_model IS NOT NULL"
         " ORDER BY finished_at DESC, created_at DESC LIMIT 1"),
        ("get_latest_finetuned_model()", "SELECT * FROM get_latest_finetuned_model()"),
        ("vibe_ft.serving_model()", "SELECT * FROM vibe_ft.serving_model()"),
    ]
    base = None
    for name, sql in cases:
        ms = float(q(c, f"{SERVING_FN} SELECT pg_temp.bench_serving({samples}, $q${sql}$q$);")[-1][0])
        if "baseline" in name:
            base = ms
        print(f"  {name:<40} median {ms:.3f} ms  ({ms / base:.1f}x the baseline above)", flush=True)
    return True


EXP_FN = """CREATE OR REPLACE FUNCTION pg_temp.bench_choose(n int)
 RETURNS TABLE (choose_ms float8, lookup_ms float8) LANGUAGE plpgsql AS $$
 DECLARE t timestamptz; a float8[]; b float8[]; i int; users text[]; bases text[]; m text;
 BEGIN
   SELECT array_agg('user-' || (random() * 20000)::int), array_agg('base-' || (1 + (random() * 99)::int))
     INTO users, bases FROM generate_series(1, n);
   a := array_fill(0::float8, ARRAY[n]); b := a;  -- filled in place: no copy per sample
   SELECT c.model INTO m FROM choose_model(users[1], bases[1]) c;  -- plan once
   SELECT x.model INTO m FROM bench_assign x WHERE x.base_model = bases[1] AND x.user_id = users[1];
   FOR i IN 1 .. n LOOP
     t := clock_timestamp();
     SELECT c.model INTO m FROM choose_model(users[i], bases[i]) c;
     a[i] := extract(epoch FROM clock_timestamp() - t) * 1000;
     t := clock_timestamp();
     SELECT x.model INTO m FROM bench_assign x WHERE x.base_model = bases[i] AND x.user_id = users[i];
     b[i] := extract(epoch FROM clock_timestamp() - t) * 1000;
   END LOOP;
   RETURN QUERY SELECT (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(a) x),
                       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(b) x);
 END $$;"""


def bench_experiments(c, answers=1_000_000, samples=5000):
    """choose_model against a precomputed assignment lookup; evaluate_experiments at a million answers."""
    print(f"\n== experiments: 100 running experiments, {answers:,} recorded answers ==", flush=True)
    # 100 datasets, each with a promoted model (the control) and a newer one
    # under test (the candidate), at 50% of users.
    q(c, """CREATE EXTENSION vibe_ft;
            INSERT INTO vibe_ft.datasets (name, base_model, experiment_steps)
            SELECT 'd' || i, 'base-' || i, '{50}' FROM generate_series(1, 100) i;
            INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, fine_tuned_model, finished_at)
            SELECT d.id, d.base_model, 'succeeded', 'ft:' || d.base_model || ':' || k, now() - (3 - k) * interval '1 day'
              FROM vibe_ft.datasets d, generate_series(1, 2) k;
            INSERT INTO vibe_ft.promotions (dataset_id, job_id, how)
            SELECT j.dataset_id, j.id, 'manual' FROM vibe_ft.jobs j WHERE j.fine_tuned_model LIKE '%:1';
            SELECT count(vibe_ft.start_experiment(j.id)) FROM vibe_ft.jobs j WHERE j.fine_tuned_model LIKE '%:2';
            -- the experiments began ten days ago
            UPDATE vibe_ft.experiments SET started_at = now() - interval '10 days';
            UPDATE vibe_ft.experiment_phases SET started_at = now() - interval '10 days';""")
    t0 = time.perf_counter()
    step = 250_000
    for lo in range(0, answers, step):
        hi = min(lo + step, answers) - 1
        q(c, f"""
            INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, model, thumbs_up, rated_at, created_at)
            SELECT 'user-' || (i % 100000), 'a-' || i, '[{{"role":"user","content":"hi"}}]', 'answer ' || i,
                   'ft:base-' || (1 + i % 100) || ':' || (1 + (i / 100) % 2),
                   CASE WHEN i % 3 = 0 THEN NULL ELSE (i / 7) % 5 < 3 END,
                   CASE WHEN i % 3 = 0 THEN NULL ELSE now() END,
                   now() - (i % 864000) * interval '1 second'
              FROM generate_series({lo}, {hi}) i""")
    q(c, """CREATE TABLE bench_assign AS
              SELECT x.base_model, 'user-' || u AS user_id,
                     CASE WHEN vibe_ft.bucket(x.seed, 'user-' || u) < x.share * 100 THEN c.fine_tuned_model
                          ELSE k.fine_tuned_model END AS model
                FROM vibe_ft.experiments x JOIN vibe_ft.jobs c ON c.id = x.candidate_job_id
                JOIN vibe_ft.jobs k ON k.id = x.control_job_id, generate_series(0, 20000) u;
            ALTER TABLE bench_assign ADD PRIMARY KEY (base_model, user_id);
            VACUUM ANALYZE;""")
    print(f"  {answers:,} answers and a {c.one('SELECT count(*) FROM bench_assign')}-row assignment table "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    ch, lk = [float(x) for x in q(c, f"{EXP_FN} SELECT * FROM pg_temp.bench_choose({samples});")[-1]]
    print(f"  choose_model(user, base model)              median {ch:.4f} ms (goal < 0.05 ms)", flush=True)
    print(f"  lookup in a precomputed assignment table    median {lk:.4f} ms (baseline); ratio {ch / lk:.1f}x", flush=True)
    writes = q(c, """SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables WHERE schemaname = 'vibe_ft'""")[0][0]
    q(c, f"{EXP_FN} SELECT * FROM pg_temp.bench_choose(1000);")
    time.sleep(1)
    writes2 = q(c, """SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables WHERE schemaname = 'vibe_ft'""")[0][0]
    print(f"  rows written by 1,000 more choose_model calls: {int(writes2) - int(writes)}", flush=True)
    # evaluate_experiments(): nothing is decided (the arms are equal), so every run reads every answer.
    ev = timed(c, "SELECT count(*) FROM vibe_ft.evaluate_experiments()")
    print(f"  evaluate_experiments(), {answers:,} answers in running phases: {ev:.3f} s (goal < 1 s)", flush=True)
    # As many answers again, given before the experiments began (decided history).
    for lo in range(answers, 2 * answers, step):
        hi = min(lo + step, 2 * answers) - 1
        q(c, f"""
            INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, model, thumbs_up, rated_at, created_at)
            SELECT 'user-' || (i % 100000), 'a-' || i, '[{{"role":"user","content":"hi"}}]', 'answer ' || i,
                   'ft:base-' || (1 + i % 100) || ':1', (i / 7) % 5 < 3, now() - interval '20 days',
                   now() - interval '20 days' - (i % 864000) * interval '1 second'
              FROM generate_series({lo}, {hi}) i""")
    q(c, "VACUUM ANALYZE vibe_ft.feedback")
    ev2 = timed(c, "SELECT count(*) FROM vibe_ft.evaluate_experiments()")
    print(f"  ... with {answers:,} more answers from before the experiments: {ev2:.3f} s; ratio {ev2 / ev:.2f} (flat: ~1)",
          flush=True)
    return ch < 0.05 and ev < 1.0


def bench_idle(c, seconds=60):
    """CPU time the idle worker uses (utime + stime from /proc) over `seconds`."""
    q(c, "CREATE EXTENSION vibe_ft")
    pid = worker_pid(c)
    time.sleep(2)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    a, t0 = cpu(), time.perf_counter()
    time.sleep(seconds)
    used, wall = cpu() - a, time.perf_counter() - t0
    share = 100 * used / wall
    print(f"idle: the worker used {used:.2f} s of CPU in {wall:.0f} s = {share:.3f}% of a core "
          f"(naptime {c.one('SHOW vibe_ft.worker_naptime')}; goal < 0.1%)")
    return share < 0.1

def bench_redaction(c, n):
    """Ratings per second through generate_examples with today's redaction
    against the previous release's, in the same run on the same rows: the
    previous release's package (built from its release commit, cached in
    target/releases) is installed, measured, then this tree's package. The
    texts are the redaction corpus (Faker, twelve locales: tests/redaction),
    so names, addresses and numbers are there to be found; the same rows are
    also measured with redaction off, which is the floor."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
    from test_install import PREVIOUS, build_release_package, dpkg_install, this_package
    root = os.path.join(os.path.dirname(__file__), "..")
    print(f"\n== redaction: {n:,} rated answers through generate_examples, {PREVIOUS} against this tree ==", flush=True)
    venv = os.path.join(root, "target", "faker-venv")
    if not os.path.exists(os.path.join(venv, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "Faker==37.12.0"], check=True)
    corpus = subprocess.run([os.path.join(venv, "bin", "python"), os.path.join(root, "tests", "redaction", "corpus.py")],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    texts = [json.loads(x)["text"] for x in corpus]
    data = os.path.join(c.dir, "bench-redaction.copy")
    with open(data, "w", encoding="utf-8") as f:
        for i in range(n):
            # A question and an answer, each a corpus text, chosen by a fixed stride.
            qtext, atext = texts[(i * 7919) % len(texts)], texts[(i * 104729 + 1) % len(texts)]
            row = [qtext, atext]
            f.write("\t".join(x.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") for x in row) + "\n")
    os.chmod(data, 0o644)
    load = f"""
        CREATE TABLE bench_texts (q text, a text);
        COPY bench_texts FROM '{data}';
        INSERT INTO vibe_ft.feedback (user_id, answer_id, messages, answer, thumbs_up, stars)
        SELECT 'user-' || (row_number() OVER () %% 5000), 'answer-' || row_number() OVER (),
               jsonb_build_array(jsonb_build_object('role', 'system', 'content', 'You are Coach Decibel.'),
                                 jsonb_build_object('role', 'user', 'content', q)),
               a, true, 5
          FROM bench_texts;
        VACUUM ANALYZE vibe_ft.feedback;
    """.replace("%%", "%")
    old_deb, new_deb = build_release_package(tempfile.mkdtemp(prefix="vibe_ft-release."), PREVIOUS), this_package()
    results = {}
    for label, deb in ((PREVIOUS, old_deb), ("this tree", new_deb)):
        c.stop()
        dpkg_install(deb)
        c.start()
        db = "bench_redaction_" + label.replace(".", "_").replace(" ", "_")
        q(c, f"CREATE DATABASE {db}")
        q(c, "CREATE EXTENSION vibe_ft", db)
        q(c, load, db)
        # Three datasets per mode, interleaved (each reads every rating once);
        # the median is reported.
        times = {True: [], False: []}
        for run in range(3):
            for redact in (True, False):
                name = f"r-{redact}-{run}"
                q(c, f"INSERT INTO vibe_ft.datasets (name, from_feedback, redact) VALUES ('{name}', true, {redact})", db)
                ds = c.one(f"SELECT id FROM vibe_ft.datasets WHERE name = '{name}'", db)
                times[redact].append(timed(c, f"SELECT * FROM vibe_ft.generate_examples('{ds}')", runs=1, db=db))
        for redact in (True, False):
            t = statistics.median(times[redact])
            r = c.one(f"SELECT count(*) FROM vibe_ft.examples e JOIN vibe_ft.datasets d ON d.id = e.dataset_id "
                      f"WHERE d.name = 'r-{redact}-0'", db)
            results[(label, redact)] = t
            print(f"{label:>10}, redaction {'on ' if redact else 'off'}: median {t:.2f}s "
                  f"({', '.join(f'{x:.2f}' for x in times[redact])}), {n / t:,.0f} ratings/s -> {r} examples", flush=True)
        red = c.one(f"SELECT sum((SELECT sum(v::int) FROM jsonb_each_text(metadata->'redactions') AS k(kind, v))) "
                    f"FROM vibe_ft.examples e JOIN vibe_ft.datasets d ON d.id = e.dataset_id WHERE d.name = 'r-True-0'", db)
        print(f"{label:>10}: {red} replacements in the examples")
    before, after = results[(PREVIOUS, True)], results[("this tree", True)]
    floor = results[("this tree", False)]
    print(f"ratings/s with redaction: {PREVIOUS} {n / before:,.0f}, this tree {n / after:,.0f}; "
          f"time ratio this tree / {PREVIOUS}: {after / before:.2f}x (goal <= 1.3x); "
          f"redaction's share of this tree's time: {(after - floor) / after:.0%}")
    return after / before <= 1.3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=10_000_000)
    ap.add_argument("--only", choices=["export", "decision", "upload", "idle", "generate", "tokens", "serving", "experiments",
                                           "redaction"])
    ap.add_argument("--feedback", type=int, default=1_000_000)
    ap.add_argument("--ratings", type=int, default=100_000, help="rated answers of --only redaction")
    ap.add_argument("--upload-mb", type=int, default=500)
    ap.add_argument("--provider", choices=["openai", "together"], default="openai", help="the upload path measured")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vibe_ft-bench.")
    os.chmod(work, 0o755)
    if os.geteuid() == 0:
        shutil.chown(work, os.environ.get("VIBE_FT_PG_USER", "vibeft"))
    sim = Sim(key="sk-bench", job_seconds=5) if args.only in ("upload", "idle") else None
    c = Cluster(work, "bench", preload="vibe_ft",
                conf=["shared_buffers = 2GB", "max_wal_size = 8GB", "checkpoint_timeout = 30min",
                      "synchronous_commit = off", "maintenance_work_mem = 1GB",
                      # Without the simulator the worker stays off: the other benchmarks make jobs of their own.
                      *([*sim.conf(), *sim.conf("together")[:2], "vibe_ft.http_timeout = 600"]
                        if sim else ["vibe_ft.enabled = off"])])
    try:
        print(f"vibe_ft benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, PostgreSQL "
              f"{c.one('SHOW server_version')}")
        ok = True
        if args.only in (None, "export"):
            ok = bench_export(c, args.examples)
        if args.only in (None, "decision"):
            bench_decision(c, args.small, args.large)
        if args.only == "upload":
            ok = bench_upload(c, sim, args.upload_mb, args.provider)
        if args.only == "idle":
            ok = bench_idle(c)
        if args.only == "serving":
            ok = bench_serving(c)
        if args.only == "experiments":
            ok = bench_experiments(c)
        if args.only == "generate":
            ok = bench_generate(c, args.feedback)
        if args.only == "redaction":
            ok = bench_redaction(c, args.ratings)
        if args.only == "tokens":
            ok = bench_tokens()
        sys.exit(0 if ok else 1)
    finally:
        c.stop()
        if sim:
            sim.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
