"""End-to-end: vibe_ft under attack and at its edges. Every function called with
NULLs and extreme values (generated from the catalog); a hostile role's traps
planted for every operator, function and relation vibe_ft's SQL could resolve
through a writable schema, then everything vibe_ft runs, run as a superuser;
pg_upgrade --check; the Vault look-alike."""

import calls
import traps
from harness import *  # noqa: F401,F403
from harness import ROOT
from test_jobs import wait_final, job_row


def check_calls(c, ids, db="postgres"):
    funcs = calls.functions(c, db)
    generated = calls.calls(funcs, ids)
    results = calls.run(c, generated, db)
    undocumented = [r for r in results if r[2] not in calls.DOCUMENTED and r[2] != ""]
    assert not undocumented, "calls answered with an undocumented SQLSTATE:\n" + "\n".join(
        f"  {r[2]} {r[1][:160]}\n        {r[3][:200]}" for r in undocumented[:40])
    # Every function was called, with a NULL in every argument position.
    called = {r[0] for r in results}
    assert called == {f"{s}.{n}" for s, n, _, _ in funcs}, called ^ {f"{s}.{n}" for s, n, _, _ in funcs}
    return funcs, results


def test_every_function_answers_nulls_and_edges_with_a_documented_sqlstate(work):
    c = Cluster(work, "calls", preload="vibe_ft")
    try:
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        funcs, results = check_calls(c, {"p_dataset_id": ds, "p_job_id": job})
        nulls = sum(1 for _, _, _, args in funcs for _ in args)
        assert len(results) > nulls > 100, (len(results), nulls)
        # No backend died on the way (a crash restarts every session).
        assert "terminated by signal" not in c.log() and "server process" not in c.log(), c.log()[-3000:]
        assert c.one("SELECT 1") == "1"
    finally:
        c.stop()


def test_no_trap_fires(work):
    """A role with CREATE on public and a schema of its own, first in the
    superuser's search_path, plants traps; then everything vibe_ft runs
    (every function, the monthly check, generation, validation, cost, erasure,
    cancel, run_jobs, pg_cron's jobs and a full worker loop) runs as that
    superuser. No trap may fire."""
    sim = Sim(job_seconds=2)
    c = Cluster(work, "traps", preload="vibe_ft,pg_cron",
                conf=[*sim.conf(), *sim.conf("together")[:2], "vibe_ft.worker_naptime = 1"])
    try:
        c.sql("CREATE EXTENSION pg_cron")
        ds = install(c)
        planted = traps.plant(c)
        ops, fns, views = (int(x) for x in traps.counts(c))
        assert ops > 10000 and fns > 1000 and views >= 10, (ops, fns, views, planted)
        print(f"    planted {ops} operators, {fns} functions and {views} views")
        # The victim: every session of the superuser (psql, pg_cron's) resolves
        # through the hostile schema first, then public. (The worker is the
        # superuser too.)
        c.sql("ALTER ROLE postgres SET search_path = hostile, public")
        assert c.one("SHOW search_path") == "hostile, public"
        # The traps work: an unqualified numeric / integer finds the planted operator.
        c.sql("BEGIN; SELECT 1.5 / 2; ROLLBACK;")
        n, what, su = traps.fired(c)
        assert n == 1 and not su, (n, what, su)
        c.sql(traps.PIN + "SELECT setval('hostile.fired_seq', 1, false); TRUNCATE hostile.fired")
        log_from = len(c.log())

        # 1. Every function and procedure, with NULLs and edges (generated).
        fresh = c.one(f"SELECT public.create_finetuning_job('{ds}')")
        check_calls(c, {"p_dataset_id": ds, "p_job_id": fresh})
        assert traps.fired(c) == (0, [], False), traps.fired(c)

        # 2. The whole pipeline, as a superuser would run it.
        c.sql("UPDATE vibe_ft.jobs SET status = 'cancelled' WHERE status NOT IN ('succeeded', 'failed', 'cancelled')")
        c.sql("""
            INSERT INTO vibe_ft.datasets (name, from_feedback, validation_share, monthly_budget_usd, auto_finetune,
                                          min_new_examples, min_days_between_jobs)
            VALUES ('trapped', true, 0.2, 100, true, 1, 0);
            CREATE ROLE trap_backend NOLOGIN; SELECT vibe_ft.grant_access('trap_backend');
            CREATE ROLE trap_user NOLOGIN; SELECT vibe_ft.grant_feedback('trap_user');
        """)
        tds = c.one("SELECT id FROM vibe_ft.datasets WHERE name = 'trapped'")
        for i in range(24):
            c.sql(f"""SELECT public.record_answer('t{i}', 'user-{i % 5}', '[{{"role":"user","content":"question {i} from x{i}@example.com"}}]',
                                           'answer {i}, call +1 415 555 01{i:02d}', 'gpt-4o-2024-08-06', 'openai', 'coach')""")
            c.sql(f"""BEGIN; SET LOCAL ROLE trap_user;
                      SELECT set_config('request.jwt.claims', '{{"sub":"user-{i % 5}"}}', true);
                      SELECT public.submit_feedback('t{i}', p_thumbs_up => {'true' if i % 4 else 'false'}, p_stars => {1 + i % 5}); COMMIT;""")
        # (The caller's own names are qualified, as PostgREST qualifies them: an
        # unqualified name in the caller's query is the caller's to resolve.)
        c.sql(f"""
            SELECT * FROM vibe_ft.generate_examples();
            SELECT * FROM vibe_ft.validate_dataset('{tds}');
            SELECT * FROM vibe_ft.estimate_cost('{tds}');
            SELECT * FROM public.should_create_finetuning_job('{tds}', 1, 0);
            SELECT count(*) FROM public.export_training_dataset_openai_jsonl('{tds}', 'train', 6.0);
            SELECT count(*) FROM vibe_ft.export_preference_jsonl('{tds}');
            SELECT * FROM vibe_ft.run_monthly_check();
            SELECT * FROM public.should_create_finetuning_job('{tds}', 1, 0);
            SELECT * FROM public.finetuning_job_stats;
            SELECT * FROM vibe_ft.status;
            SELECT * FROM public.get_latest_finetuned_model();
        """)
        job = c.one(f"SELECT id FROM vibe_ft.jobs WHERE dataset_id = '{tds}' AND status NOT IN ('succeeded', 'failed', 'cancelled')")
        # 3. The worker runs the job to a model (export, upload, create, poll).
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        c.sql(f"SELECT * FROM public.should_create_finetuning_job('{tds}', 1, 0)")
        # 4. The SQL-only runner, erasure, cancel, the status updates of the seed.
        c.sql("ALTER SYSTEM SET vibe_ft.enabled = off; SELECT pg_reload_conf();")
        job2 = c.one(f"SELECT public.create_finetuning_job('{tds}', p_suffix => 'again')")
        c.sql("ALTER SYSTEM SET vibe_ft.enabled = on; SELECT pg_reload_conf();")
        c.sql("CALL vibe_ft.run_jobs(3)")
        c.sql("SELECT * FROM vibe_ft.forget_user('user-1')")
        c.sql(f"SELECT public.cancel_finetuning_job('{job2}')")
        c.sql(f"""SELECT public.update_finetuning_job_status('{job}', p_training_metrics => '{{"trained_tokens": 10}}');
                  SELECT vibe_ft.adopt_jobs(); SELECT vibe_ft.revoke_access('trap_backend');""")
        # 4b. Another provider: the dataset switches to Together, a job runs to a
        # model, which is deployed, found by the registry, and stopped.
        c.sql(f"""UPDATE vibe_ft.datasets SET provider = 'together',
                         base_model = 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference' WHERE id = '{tds}'""")
        tg = c.one(f"SELECT public.create_finetuning_job('{tds}', p_suffix => 'tg')")
        assert wait_final(c, tg) == "succeeded", job_row(c, tg)
        c.sql(f"SELECT * FROM vibe_ft.deploy_model('{tg}', 5)")
        wait_for("the endpoint", lambda: c.one(f"SELECT callable FROM vibe_ft.models WHERE job_id = '{tg}'") == "t")
        c.sql(f"""SELECT * FROM vibe_ft.serving_model(p_dataset_id => '{tds}');
                  SELECT * FROM public.get_latest_finetuned_model('meta-llama/Meta-Llama-3.1-8B-Instruct-Reference');
                  SELECT vibe_ft.refresh_deployments(); SELECT * FROM vibe_ft.status;
                  SELECT vibe_ft.stop_deployment('{tg}');""")
        # 4c. Which model to serve: the jobs above started experiments; users
        # are assigned, answers recorded and rated, experiments evaluated,
        # decided by hand, reported on. (Qualified, as the caller's own.)
        c.sql(f"""
            SELECT pg_catalog.count(*) FROM pg_catalog.generate_series(1, 40) u
             CROSS JOIN LATERAL public.choose_model(pg_catalog.concat('u', u), p_dataset_id => '{tds}') m
             CROSS JOIN LATERAL public.record_answer(pg_catalog.concat('x', u), pg_catalog.concat('u', u),
                                                     '[{{"role":"user","content":"q"}}]', 'a', m.model) r;
            SELECT pg_catalog.count(*) FROM pg_catalog.generate_series(1, 40) u
             CROSS JOIN LATERAL public.submit_feedback(pg_catalog.concat('x', u), true, 5, pg_catalog.concat('u', u)) f;
            SELECT * FROM public.choose_model('someone', 'gpt-4o-2024-08-06');
            SELECT * FROM vibe_ft.evaluate_experiments();
            SELECT * FROM vibe_ft.experiment_results; SELECT * FROM vibe_ft.model_ratings;
            SELECT pg_catalog.length(vibe_ft.report_html()), pg_catalog.length(vibe_ft.report_html('{tds}', 30));""")
        running = c.one("SELECT x.id FROM vibe_ft.experiments x WHERE x.state OPERATOR(pg_catalog.=) 'running'")
        c.sql(f"""SELECT vibe_ft.pause_experiment({running}); SELECT vibe_ft.resume_experiment({running});
                  SELECT vibe_ft.promote_experiment({running});
                  SELECT * FROM public.choose_model('someone', p_dataset_id => '{tds}');""")
        # 5. pg_cron's jobs run as the superuser, in sessions of its own.
        c.sql("""SELECT vibe_ft.schedule_job_runner('* * * * *'), vibe_ft.schedule_example_generation('* * * * *'),
                        vibe_ft.schedule_monthly_check('* * * * *'), vibe_ft.schedule_experiment_evaluation('* * * * *')""")
        wait_for("pg_cron to run vibe_ft's four jobs", lambda: c.one(
            "SELECT count(DISTINCT jobid) FROM cron.job_run_details WHERE status = 'succeeded'") == "4",
            timeout=150, every=2)
        assert c.one("SELECT count(*) FROM cron.job_run_details WHERE status <> 'succeeded'") == "0", c.sql(
            "SELECT command, status, return_message FROM cron.job_run_details")

        n, what, su = traps.fired(c)
        assert (n, what, su) == (0, [], False), f"traps fired {n} time(s): {what}; hostile role superuser: {su}"
        assert "TRAP FIRED" not in c.log()[log_from:]
    finally:
        c.stop()
        sim.stop()


def test_pg_upgrade_check_passes(work):
    """pg_upgrade --check from a cluster with vibe_ft and every table populated
    (0.3.0's regprocedure column stopped it) to a fresh cluster."""
    sim = Sim(job_seconds=1)
    old = Cluster(work, "upgrade_old", preload="vibe_ft", conf=sim.conf())
    new = Cluster(work, "upgrade_new", preload="vibe_ft")
    try:
        ds = install(old)
        old.sql("""
            CREATE FUNCTION public.my_redact(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT t $$;
            INSERT INTO vibe_ft.datasets (name, from_feedback, redact_function) VALUES ('fb', true, 'public.my_redact(text)');
            SELECT record_answer('a1', 'u1', '[{"role":"user","content":"Hi"}]', 'Hello!', 'gpt-4o-2024-08-06');
            SELECT record_answer('a2', 'u1', '[{"role":"user","content":"Hi"}]', 'Go away.', 'gpt-4o-2024-08-06');
            SELECT submit_feedback('a1', true, p_user_id => 'u1'), submit_feedback('a2', false, p_user_id => 'u1');
            SELECT * FROM vibe_ft.generate_examples();
            INSERT INTO vibe_ft.prices (provider, base_model, training_per_million) VALUES ('openai', 'x', 1);
        """)
        job = old.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(old, job) == "succeeded"
        empty = old.sql("""SELECT c.relname FROM pg_class c
                             JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'e'
                             JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'vibe_ft'
                            WHERE c.relkind = 'r' AND c.reltuples = 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_user_tables s
                                  WHERE s.relid = c.oid AND s.n_live_tup > 0)""")
        assert empty == [], f"tables left empty: {empty}"
        assert old.one("""SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                          WHERE c.relnamespace = 'vibe_ft'::regnamespace AND a.atttypid::regtype::text LIKE 'reg%'""") == "0"
        old.stop()
        new.stop()
        p = subprocess.run(as_pg([f"{PG_BIN}/pg_upgrade", "--check", "-b", PG_BIN, "-B", PG_BIN,
                                  "-d", old.data, "-D", new.data, "-p", old.port, "-P", new.port,
                                  "-s", old.sock, "-U", "postgres"]),
                           cwd=old.dir, capture_output=True, text=True)
        assert p.returncode == 0 and "Clusters are compatible" in p.stdout, p.stdout + p.stderr
    finally:
        old.stop()
        new.stop()
        sim.stop()


def test_a_vault_look_alike_is_not_a_key_source(work):
    """Where Vault is not installed, a role allowed to CREATE in the database can
    make a schema `vault` with a `decrypted_secrets` of its own: vibe_ft must not
    take a key from it (it would send every training file to that account)."""
    c = Cluster(work, "vault_lookalike", preload="vibe_ft", conf=["vibe_ft.enabled = off"], env=["OPENAI_API_KEY=sk-env"])
    try:
        install(c)
        c.sql("""
            CREATE ROLE mallory LOGIN; GRANT CREATE ON DATABASE postgres TO mallory;
            SET ROLE mallory;
            CREATE SCHEMA vault;
            CREATE VIEW vault.decrypted_secrets AS
                SELECT 'vibe_ft_openai_api_key'::text AS name, 'sk-mallory'::text AS decrypted_secret, now() AS created_at;
            GRANT USAGE ON SCHEMA vault TO PUBLIC; GRANT SELECT ON vault.decrypted_secrets TO PUBLIC;
        """)
        assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "environment"
        # The real one (an extension named supabase_vault owns the view) is used.
        c.sql("RESET ROLE; DROP SCHEMA vault CASCADE")
        with vault_extension():
            c.sql("CREATE EXTENSION supabase_vault; SELECT vault.create_secret('sk-vault', 'vibe_ft_openai_api_key')")
            assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "vault"
    finally:
        c.stop()
