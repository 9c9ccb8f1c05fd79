"""End-to-end tests of the extension itself: install, dump/restore, races, pg_cron, restarts."""

from harness import *  # noqa: F401,F403
from harness import ROOT  # noqa: F401


# --------------------------------------------------------------------------

def test_works_without_preload(work):
    """Plain CREATE EXTENSION with nothing in shared_preload_libraries."""
    c = Cluster(work, "nopreload", preload="")
    try:
        assert c.one("SELECT current_setting('shared_preload_libraries') = ''") == "t"
        ds = install(c)
        assert c.sql(f"SELECT should_finetune, new_examples, days_since_last_job FROM should_create_finetuning_job('{ds}', 50, 0)") == [["t", "73", "999"]]
        assert c.one(f"SELECT count(*) FROM export_training_dataset_openai_jsonl('{ds}', 'train', 6)") == "58"
        # Settings exist once the library is loaded (here: on first use in the session).
        assert c.sql("SELECT FROM get_latest_finetuned_model(); SHOW vibe_ft.job_events_per_job") == [["1000"]]
    finally:
        c.stop()


def test_works_with_preload(work):
    c = Cluster(work, "preload", preload="vibe_ft", conf=["vibe_ft.enabled = off"])
    try:
        assert c.one("SHOW shared_preload_libraries") == "vibe_ft"
        ds = install(c)
        assert c.one(f"SELECT count(*) FROM export_training_dataset_openai_jsonl('{ds}', 'train', 6)") == "58"
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql(f"SELECT update_finetuning_job_status('{job}', 'ftjob-1', 'succeeded', 'ft:m')")
        assert c.one("SELECT model_id FROM get_latest_finetuned_model()") == "ft:m"
    finally:
        c.stop()


def test_dump_and_restore_keeps_the_data(work):
    c = Cluster(work, "dump", preload="")
    try:
        c.sql("CREATE DATABASE src; CREATE DATABASE dst;")
        ds = install(c, "src")
        job = c.one(f"SELECT create_finetuning_job('{ds}', p_hyperparameters => '{{\"n_epochs\": 3}}', p_suffix => 'coach')", "src")
        c.sql(f"SELECT update_finetuning_job_status('{job}', 'ftjob-dump', 'running')", "src")
        c.sql(f"SELECT update_finetuning_job_status('{job}', p_status => 'succeeded', p_fine_tuned_model => 'ft:dumped')", "src")
        c.sql(f"SELECT vibe_ft.add_training_example('{ds}', 9, p_user_message => 'after', p_assistant_message => 'job')", "src")
        # 0.3.0 data: feedback, examples and pairs made from it, a price of the user's.
        c.sql("""
            INSERT INTO vibe_ft.datasets (name, from_feedback) VALUES ('fb', true);
            SELECT record_answer('a1', 'u1', '[{"role":"user","content":"Hi, I am ana@example.org"}]', 'Hello!', 'gpt-4o-2024-08-06');
            SELECT record_answer('a2', 'u1', '[{"role":"user","content":"Hi, I am ana@example.org"}]', 'Go away.', 'gpt-4o-2024-08-06');
            SELECT record_answer('a4', 'u1', '[{"role":"user","content":"Hi"}]', 'Served, not rated yet.', 'gpt-4o-2024-08-06');
            SELECT submit_feedback('a1', true, p_user_id => 'u1'), submit_feedback('a2', false, p_user_id => 'u1');
            SELECT * FROM vibe_ft.generate_examples();
            INSERT INTO vibe_ft.prices (provider, base_model, valid_from, training_per_million) VALUES ('openai', 'gpt-4o-2024-08-06', '2026-11-01', 20);
        """, "src")
        fingerprint = """
            SELECT (SELECT md5(string_agg(id || dataset_id::text || messages::text || quality_score || split || encode(content_hash, 'hex') || created_at, ',' ORDER BY id)) FROM vibe_ft.examples),
                   (SELECT md5(string_agg(to_jsonb(j)::text, ',' ORDER BY id)) FROM vibe_ft.jobs j),
                   (SELECT md5(string_agg(to_jsonb(e)::text, ',' ORDER BY id)) FROM vibe_ft.job_events e),
                   (SELECT md5(string_agg(to_jsonb(d)::text, ',' ORDER BY id)) FROM vibe_ft.datasets d),
                   (SELECT md5(string_agg(jsonl_line, E'\\n')) FROM export_training_dataset_openai_jsonl('%s', 'train', 0)),
                   (SELECT md5(string_agg(to_jsonb(f)::text, ',' ORDER BY id)) FROM vibe_ft.feedback f),
                   (SELECT md5(string_agg(to_jsonb(p)::text, ',' ORDER BY id)) FROM vibe_ft.preference_examples p),
                   (SELECT string_agg(base_model || valid_from || training_per_million || source, ',' ORDER BY base_model, valid_from) FROM vibe_ft.prices),
                   vibe_ft.training_price('openai', 'gpt-4o-2024-08-06')
        """ % ds
        before = c.sql(fingerprint, "src")
        dump = os.path.join(c.dir, "src.dump")
        with open(dump, "wb") as f:
            f.write(c.tool("pg_dump", "-Fc", *c.conn_args("src")).stdout)
        os.chmod(dump, 0o644)
        c.tool("pg_restore", "--exit-on-error", *c.conn_args("dst"), dump)
        after = c.sql(fingerprint, "dst")
        assert before == after, f"data changed in dump/restore:\n{before}\n{after}"
        # Sequences continue past the restored ids; triggers and the state machine are back.
        new_id = c.one(f"SELECT vibe_ft.add_training_example('{ds}', 9, p_user_message => 'restored', p_assistant_message => 'db')", "dst")
        assert int(new_id) > int(c.one("SELECT max(id) FROM vibe_ft.examples WHERE id <> %s" % new_id, "dst"))
        expect_error(lambda: c.sql(f"UPDATE vibe_ft.jobs SET status = 'running' WHERE id = '{job}'", "dst"), "finished jobs never change status")
        assert c.one("SELECT model_id FROM get_latest_finetuned_model()", "dst") == "ft:dumped"
        # Feedback keeps its change numbers: the next generation finds nothing new,
        # and a new rating is picked up.
        assert c.sql("SELECT feedback_read, examples_added FROM vibe_ft.generate_examples()", "dst") == [["0", "0"]]
        c.sql("SELECT record_answer('a3', 'u2', '[{\"role\":\"user\",\"content\":\"More\"}]', 'Sure.', 'gpt-4o-2024-08-06')", "dst")
        c.sql("SELECT submit_feedback('a3', true, p_user_id => 'u2')", "dst")
        assert c.sql("SELECT feedback_read, examples_added FROM vibe_ft.generate_examples()", "dst") == [["1", "1"]]
        # And a plain-text dump restores too (the form people diff and edit).
        c.sql("CREATE DATABASE dst2")
        text = c.tool("pg_dump", *c.conn_args("src")).stdout
        subprocess.run(c.psql_cmd("dst2") , input=text, check=True, capture_output=True)
        assert c.sql(fingerprint, "dst2") == before
    finally:
        c.stop()


def _race(c, db, n, statement):
    """Start n psql sessions that all block on one advisory lock, then release
    it so they run `statement` at the same moment. Returns [(rc, stdout, stderr)]."""
    holder = subprocess.Popen(c.psql_cmd(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    holder.stdin.write("SELECT pg_advisory_lock(4242);\n")
    holder.stdin.flush()
    wait_for("the holder's lock", lambda: c.one(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted", db) == "1")
    racers = [subprocess.Popen(c.psql_cmd(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(n)]
    for r in racers:
        r.stdin.write(f"SELECT pg_advisory_lock_shared(4242);\n{statement}\n")
        r.stdin.close()
        r.stdin = None  # communicate() below must not touch it again
    wait_for(f"{n} sessions waiting", lambda: c.one(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted", db) == str(n))
    holder.stdin.write("SELECT pg_advisory_unlock(4242);\n")
    holder.stdin.close()
    holder.wait(30)
    out = []
    for r in racers:
        stdout, stderr = r.communicate(timeout=60)
        out.append((r.returncode, stdout, stderr))
    return out


def test_concurrent_starts_make_one_job(work):
    c = Cluster(work, "race", preload="vibe_ft", conf=["vibe_ft.enabled = off"])
    try:
        ds = install(c)
        n = 12
        results = _race(c, "postgres", n, f"SELECT create_finetuning_job('{ds}');")
        ok = [r for r in results if r[0] == 0]
        failed = [r for r in results if r[0] != 0]
        assert len(ok) == 1, f"exactly one session may create the job: {results}"
        assert all("already has an unfinished job" in r[2] for r in failed), failed
        assert c.one("SELECT count(*) FROM vibe_ft.jobs") == "1"
        # The monthly check racing with itself and with direct calls: still one job.
        c.sql("UPDATE vibe_ft.jobs SET status = 'cancelled'; UPDATE vibe_ft.datasets SET auto_finetune = true, min_new_examples = 10, min_days_between_jobs = 0")
        results = _race(c, "postgres", 6, "SELECT count(job_id) FROM vibe_ft.run_monthly_check();")
        assert c.one("SELECT count(*) FROM vibe_ft.jobs WHERE status = 'pending'") == "1", results
        # The same conversation added by many sessions at once is stored once.
        results = _race(c, "postgres", 8,
                        f"SELECT vibe_ft.add_training_example('{ds}', 8, p_user_message => 'race', p_assistant_message => 'once');")
        ids = {r[1].strip() for r in results}
        assert all(r[0] == 0 for r in results), results
        assert len(ids) == 1, f"every session gets the one example id: {ids}"
        assert c.one("SELECT count(*) FROM vibe_ft.examples WHERE messages->0->>'content' = 'race'") == "1"
    finally:
        c.stop()


def test_pg_cron_schedules_and_runs_the_monthly_check(work):
    c = Cluster(work, "cron", preload="vibe_ft,pg_cron")
    try:
        c.sql("CREATE EXTENSION pg_cron;")
        ds = install(c)
        # Idempotent scheduling: same job id, one cron job, the schedule updated.
        first = c.one("SELECT vibe_ft.schedule_monthly_check()")
        again = c.one("SELECT vibe_ft.schedule_monthly_check()")
        assert first == again
        assert c.sql("SELECT schedule, command FROM cron.job WHERE jobname = 'vibe_ft_monthly_check'") == [
            ["0 0 1 * *", "SELECT * FROM vibe_ft.run_monthly_check()"]]
        # Every minute, so that we can watch it run; the dataset is due.
        c.sql("UPDATE vibe_ft.datasets SET auto_finetune = true, min_new_examples = 50, min_days_between_jobs = 0")
        assert c.one("SELECT vibe_ft.schedule_monthly_check('* * * * *')") == first
        assert c.one("SELECT count(*) FROM cron.job") == "1"
        # (The worker may move the job on at once; it waits for an API key then.)
        wait_for("pg_cron to run the monthly check", lambda: c.one(
            "SELECT count(*) FROM vibe_ft.jobs") == "1", timeout=150, every=2)
        wait_for("the run to be recorded", lambda: c.one(
            "SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'") != "0", timeout=30)
        assert c.one(f"SELECT train_examples FROM vibe_ft.jobs WHERE dataset_id = '{ds}'") == "58"
        assert c.one("SELECT vibe_ft.unschedule_monthly_check()") == "t"
        assert c.one("SELECT vibe_ft.unschedule_monthly_check()") == "f"
        assert c.one("SELECT count(*) FROM cron.job") == "0"
    finally:
        c.stop()


def test_restart_keeps_jobs_and_rules(work):
    """An immediate shutdown (crash) and restart loses nothing that committed."""
    c = Cluster(work, "restart", preload="vibe_ft", conf=["vibe_ft.enabled = off"])
    try:
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql(f"SELECT update_finetuning_job_status('{job}', 'ftjob-r', 'running')")
        c.stop("immediate")
        c.start()
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") == "running"
        expect_error(lambda: c.sql(f"SELECT create_finetuning_job('{ds}')"), "already has an unfinished job")
    finally:
        c.stop()


def test_reinstall_in_the_same_session(work):
    """Plans cached by a backend survive DROP/CREATE EXTENSION in that session."""
    c = Cluster(work, "reinstall", preload="vibe_ft", conf=["vibe_ft.enabled = off"])
    try:
        rows = c.sql("""
            CREATE EXTENSION vibe_ft;
            INSERT INTO vibe_ft.datasets (name) VALUES ('a');
            SELECT reason FROM should_create_finetuning_job((SELECT id FROM vibe_ft.datasets));
            DROP EXTENSION vibe_ft; DROP SCHEMA vibe_ft;
            CREATE EXTENSION vibe_ft;
            INSERT INTO vibe_ft.datasets (name) VALUES ('b');
            SELECT vibe_ft.add_training_example((SELECT id FROM vibe_ft.datasets), 7, p_user_message => 'u', p_assistant_message => 'a') > 0;
            SELECT reason FROM should_create_finetuning_job((SELECT id FROM vibe_ft.datasets), 1, 0);
        """)
        assert rows[-1] == ["Sufficient new data: 1 examples (minimum 1), no previous job"], rows
    finally:
        c.stop()




# Everything an extension version defines, as text that is equal in two
# databases exactly when they define the same objects.
CATALOG = """
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'vibe_ft'),
members AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e'),
rels AS (SELECT c.oid, c.relname, c.relkind, c.relacl FROM pg_class c JOIN members m
           ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT * FROM (
  SELECT 'routine' AS kind, p.oid::regprocedure::text AS name,
         pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '') ||
         ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '') AS def
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT 'relation', r.oid::regclass::text,
         r.relkind::text || ' acl=' || coalesce(r.relacl::text, '') || ' comment=' || coalesce(obj_description(r.oid, 'pg_class'), '') ||
         ' columns=' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
                                   || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), ', ' ORDER BY a.attnum)
                                   FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                  WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
         ' view=' || coalesce(pg_get_viewdef(r.oid) || ' ' || coalesce(r_opts.reloptions::text, ''), '')
    FROM rels r LEFT JOIN pg_class r_opts ON r_opts.oid = r.oid AND r.relkind = 'v'
  UNION ALL
  SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN rels r ON r.oid = i.indrelid
  UNION ALL
  SELECT 'constraint', r.relname || '.' || co.conname, pg_get_constraintdef(co.oid)
    FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
  UNION ALL
  SELECT 'trigger', r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'dumped', '', (SELECT string_agg(x::regclass::text, ',' ORDER BY x::regclass::text)
                          FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'vibe_ft')
) all_objects ORDER BY 1, 2, 3
"""


def upgrade_matches_a_fresh_install(work, old, backend_role=False):
    """ALTER EXTENSION ... UPDATE from a frozen released version keeps the data
    and defines exactly what a fresh install of the new version does."""
    # The package ships the frozen install scripts of earlier releases.
    assert os.path.exists(os.path.join(SHAREDIR, f"vibe_ft--{old}.sql")), "install the package first"
    c = Cluster(work, "upgrade-" + old, preload="vibe_ft", conf=["vibe_ft.enabled = off"])
    try:
        c.sql("CREATE DATABASE fresh; CREATE DATABASE upgraded;")
        c.sql(f"CREATE EXTENSION vibe_ft VERSION '{old}'", "upgraded")
        c.sql(SEED_SQL, "upgraded")
        if backend_role:
            # A backend given access before the upgrade has, after it, exactly what
            # grant_access gives on a fresh install (the catalog below compares ACLs).
            c.sql("CREATE ROLE upgrade_backend NOLOGIN")
            c.sql("SELECT vibe_ft.grant_access('upgrade_backend')", "upgraded")
        ds = c.one("SELECT id FROM vibe_ft.datasets", "upgraded")
        # Plain SQL on the old schema: the installed library is already the new
        # one (binaries first, then ALTER EXTENSION ... UPDATE, as in production).
        c.sql(f"""INSERT INTO vibe_ft.jobs (dataset_id, base_model, status, provider_job_id, fine_tuned_model,
                                            train_examples, last_example_id, created_at)
                  VALUES ('{ds}', 'gpt-4o-2024-08-06', 'succeeded', 'ftjob-old', 'ft:old', 5, 5, now() - interval '1 day')""",
              "upgraded")
        waiting = c.one(f"INSERT INTO vibe_ft.jobs (dataset_id, base_model) VALUES ('{ds}', 'gpt-4o-2024-08-06') RETURNING id",
                        "upgraded").split()[0]
        before = c.sql("SELECT to_jsonb(j) FROM vibe_ft.jobs j ORDER BY created_at", "upgraded")
        c.sql("ALTER EXTENSION vibe_ft UPDATE", "upgraded")
        c.sql("CREATE EXTENSION vibe_ft", "fresh")
        if backend_role:
            c.sql("SELECT vibe_ft.grant_access('upgrade_backend')", "fresh")
        version = c.one("SELECT extversion FROM pg_extension WHERE extname = 'vibe_ft'", "fresh")
        assert c.one("SELECT extversion FROM pg_extension WHERE extname = 'vibe_ft'", "upgraded") == version
        fresh, upgraded = c.sql(CATALOG, "fresh"), c.sql(CATALOG, "upgraded")
        names = {r[1] for r in fresh if len(r) > 1}
        assert {"cancel_finetuning_job(uuid)", "vibe_ft.status", "vibe_ft.jobs_due", "jobs.jobs_wake_worker",
                "vibe_ft.feedback", "vibe_ft.prices", "feedback.feedback_before_write"} <= names, names
        if fresh != upgraded:
            import difflib
            diff = "\n".join(difflib.unified_diff(["|".join(r) for r in fresh], ["|".join(r) for r in upgraded],
                                                  "fresh", "upgraded", lineterm=""))
            raise AssertionError(f"{old} + upgrade differs from a fresh {version}:\n" + diff[:6000])
        # The data is untouched (new columns take their defaults).
        new_columns = ["updated_at", "seed", "provider_status", "provider_event_cursor", "estimated_finish_at",
                       "attempts", "next_attempt_at", "training_tokens", "validation_tokens",
                       "estimated_cost_usd", "erasure_requested_at", "installation_id", "export_round",
                       "cost_usd", "estimated_cost_source"]
        import json
        drop = lambda rows: [{k: v for k, v in json.loads(r[0]).items() if k not in new_columns} for r in rows]
        after = c.sql("SELECT to_jsonb(j) FROM vibe_ft.jobs j ORDER BY created_at", "upgraded")
        assert drop(before) == drop(after)
        assert c.one("SELECT model_id FROM get_latest_finetuned_model()", "upgraded") == "ft:old"
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{waiting}'", "upgraded") == "pending"
        assert c.one("SELECT has_function_privilege('public', 'cancel_finetuning_job(uuid)', 'execute')", "upgraded") == "f"
        assert c.one("SELECT has_function_privilege('public', 'submit_feedback(text,jsonb,text,boolean,integer,text,text,text,timestamptz)', 'execute')", "upgraded") == "f"
        assert c.one("SELECT has_function_privilege('public', 'submit_feedback(text,boolean,integer,text,timestamptz)', 'execute')", "upgraded") == "f"
        assert c.one("SELECT has_function_privilege('public', 'record_answer(text,text,jsonb,text,text,text,text)', 'execute')", "upgraded") == "f"
        # Jobs made before the upgrade are this installation's.
        assert c.one("SELECT count(*) FROM vibe_ft.jobs WHERE installation_id IS DISTINCT FROM vibe_ft.installation_id()", "upgraded") == "0"
        # The new parts work on the upgraded data.
        assert c.one("SELECT count(*) FROM vibe_ft.prices", "upgraded") == "4"
        assert c.one(f"SELECT valid FROM vibe_ft.validate_dataset('{ds}') WHERE split = 'train'", "upgraded") in ("t", "f")
    finally:
        c.stop()


def test_upgrade_from_0_1_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.1.0")


def test_upgrade_from_0_2_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.2.0")


def test_upgrade_from_0_3_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.3.0")


def test_upgrade_from_0_4_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.4.0", backend_role=True)


def test_upgrade_from_0_5_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.5.0", backend_role=True)


def test_upgrade_from_0_6_0_matches_a_fresh_install(work):
    upgrade_matches_a_fresh_install(work, "0.6.0", backend_role=True)
