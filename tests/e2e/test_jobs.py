"""End-to-end tests of the job runner: a real cluster, the real background
worker (or the SQL-only path), and the provider simulator on loopback."""

from harness import *  # noqa: F401,F403

FINAL = ("succeeded", "failed", "cancelled")


def runner_cluster(work, name, sim, preload="vibe_ft", conf=(), flavor="openai"):
    return Cluster(work, name, preload=preload, conf=[*sim.conf(flavor), *conf])


def job_row(c, job):
    cols = ["status", "provider_job_id", "fine_tuned_model", "error_code", "error_message", "training_file_id",
            "validation_file_id", "trained_tokens"]
    select = ", ".join("coalesce(%s::text, '')" % x for x in cols)
    row = c.sql(f"SELECT {select} FROM vibe_ft.jobs WHERE id = '{job}'")[0]
    return dict(zip(cols, row))


def wait_final(c, job, timeout=90, run_sql=False):
    def done():
        if run_sql:
            c.sql("CALL vibe_ft.run_jobs(5)")
        s = c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'")
        return s if s in FINAL else None
    return wait_for(f"job {job} to finish", done, timeout=timeout, every=0.3)


def test_worker_runs_a_job_to_a_model(work):
    sim = Sim()
    c = runner_cluster(work, "worker_loop", sim, conf=["vibe_ft.worker_naptime = 3600"])
    try:
        ds = install(c)
        wait_for("the worker's heartbeat", lambda: c.one("SELECT worker_heartbeat_at IS NOT NULL FROM vibe_ft.status") == "t")
        assert c.sql("SELECT backend_type, application_name FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'") == [
            ["vibe_ft worker", "vibe_ft worker"]]
        job = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18', '{{\"n_epochs\": 2}}', 'coach')")
        # The commit wakes the worker (naptime is an hour): the job moves at once.
        wait_for("the worker to pick the job up", lambda: c.one(
            f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") != "pending", timeout=20)
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        r = job_row(c, job)
        pj = sim.jobs_for(job)
        assert len(pj) == 1, pj
        assert r["provider_job_id"] == pj[0]["id"]
        assert r["fine_tuned_model"] == pj[0]["fine_tuned_model"] and r["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:vibe-ft-sim:coach:")
        assert int(r["trained_tokens"]) > 0
        assert pj[0]["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
        assert pj[0]["validation_file"] == r["validation_file_id"] != ""
        assert c.one("SELECT model_id FROM get_latest_finetuned_model('gpt-4o-mini-2024-07-18')") == r["fine_tuned_model"]
        # Every transition is an event; provider events and final metrics are stored.
        statuses = [x[0] for x in c.sql(f"SELECT to_status FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'status' ORDER BY id")]
        assert statuses[:4] == ["pending", "exporting", "uploading", "submitted"], statuses
        assert statuses[-1] == "succeeded" and "running" in statuses, statuses
        assert c.one(f"SELECT count(*) > 5 FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'provider'") == "t"
        assert c.one(f"SELECT metrics ? 'final' AND jsonb_array_length(metrics->'checkpoints') > 0 FROM vibe_ft.jobs WHERE id = '{job}'") == "t"
        # The uploaded training file holds exactly what the export function returns.
        tf = [f for f in sim.state()["files"] if f["id"] == r["training_file_id"]][0]
        expected = c.one(f"SELECT sum(octet_length(jsonl_line) + 1) FROM export_training_dataset_openai_jsonl('{ds}', 'train', 6)")
        assert tf["bytes"] == int(expected) and tf["filename"] == f"vibe_ft-{job}-train.jsonl"
        # Local files are gone once uploaded.
        assert os.listdir(os.path.join(c.data, "vibe_ft_files")) == []
        st = c.sql("SELECT worker_loaded, worker_pid IS NOT NULL, jobs_waiting, jobs_running FROM vibe_ft.status")
        assert st == [["t", "t", "0", "0"]], st
    finally:
        c.stop()
        sim.stop()


def test_sql_only_path_runs_a_job_without_the_worker(work):
    """No preload: CALL vibe_ft.run_jobs() (what pg_cron runs) does every step."""
    sim = Sim(job_seconds=2)
    # Without preloading the key settings do not exist: the key comes from the environment.
    conf = [line for line in sim.conf() if "api_key" not in line]
    c = Cluster(work, "sql_only", preload="", conf=conf, env=[f"OPENAI_API_KEY={sim.key}"])
    try:
        ds = install(c)
        assert c.one("SELECT vibe_ft.worker_loaded()") == "f"
        assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "environment"
        job = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18')")
        # Inside a transaction block a procedure cannot commit: a clear error.
        expect_error(lambda: c.sql("BEGIN; CALL vibe_ft.run_jobs(1); COMMIT;"), "invalid transaction termination")
        c.sql("CALL vibe_ft.run_jobs(10)")
        status = c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'")
        assert status in ("validating_files", "queued", "running", "succeeded"), (
            status, c.sql(f"SELECT kind, to_status, message FROM vibe_ft.job_events WHERE job_id = '{job}' ORDER BY id"))
        assert wait_final(c, job, run_sql=True) == "succeeded", job_row(c, job)
        assert len(sim.jobs_for(job)) == 1
        assert c.one("SELECT model_id FROM get_latest_finetuned_model()") == sim.jobs_for(job)[0]["fine_tuned_model"]
        # The kill switch stops provider calls from SQL too. (Without preloading,
        # a session knows vibe_ft's settings once the library is loaded.)
        c.sql("LOAD 'vibe_ft'; ALTER SYSTEM SET vibe_ft.enabled = off; SELECT pg_reload_conf();")
        job2 = c.one(f"SELECT create_finetuning_job('{ds}')")
        time.sleep(0.5)
        c.sql("CALL vibe_ft.run_jobs(2)")
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job2}'") == "pending"
    finally:
        c.stop()
        sim.stop()


def test_many_runners_at_once_make_one_provider_job(work):
    """The worker and six sessions running the SQL runner, all at the same moment."""
    sim = Sim(job_seconds=3)
    c = runner_cluster(work, "runner_race", sim, conf=["vibe_ft.enabled = off"])
    try:
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql("ALTER SYSTEM SET vibe_ft.enabled = on; SELECT pg_reload_conf();")
        results = _race_sessions(c, 6, "CALL vibe_ft.run_jobs(15);")
        assert all(r[0] == 0 for r in results), results
        assert wait_final(c, job, run_sql=True) == "succeeded", job_row(c, job)
        assert len(sim.jobs_for(job)) == 1, sim.jobs_for(job)
        assert len(sim.requests("create")) == 1
        names = [f["filename"] for f in sim.state()["files"]]
        assert sorted(names) == sorted([f"vibe_ft-{job}-train.jsonl", f"vibe_ft-{job}-validation.jsonl"]), names
    finally:
        c.stop()
        sim.stop()


def _race_sessions(c, n, statement):
    from test_extension import _race
    return _race(c, "postgres", n, statement)


# (endpoint, fault kind) -> what the job must end as, and the error code when it fails
TRANSIENT = ["429", "500", "503", "hang", "reset", "malformed", "drop"]
FAULT_CASES = (
    [("upload", k, "succeeded", None) for k in TRANSIENT]
    + [("upload", "401", "failed", "invalid_api_key")]
    + [("create", k, "succeeded", None) for k in TRANSIENT]
    + [("create", "401", "failed", "invalid_api_key"), ("create", "quota", "failed", "insufficient_quota")]
    + [("retrieve", k, "succeeded", None) for k in TRANSIENT + ["401"]]
    # Requests that outlive the client's timeout and complete later at the provider.
    + [("upload", "late", "succeeded", None), ("create", "late", "succeeded", None)]
)


def test_each_fault_at_each_step(work):
    sim = Sim(job_seconds=1.5, hang_seconds=5)
    c = runner_cluster(work, "faults", sim)
    try:
        ds = install(c)
        for endpoint, kind, expected, code in FAULT_CASES:
            before_files = {f["id"] for f in sim.state()["files"]}
            # A late request lands 6 s after it was sent: after the runner timed out (3 s),
            # waited (1 s) and tried again, and well before the (6 s) job ends.
            sim.config(job_seconds=6 if kind == "late" else 1.5)
            sim.faults({"endpoint": endpoint, "kind": kind, "count": 1, "retry_after": 0, "seconds": 6 if kind == "late" else 4})
            job = c.one(f"SELECT create_finetuning_job('{ds}')")
            case = f"{kind} on {endpoint}"
            got = wait_final(c, job, timeout=60)
            r = job_row(c, job)
            assert got == expected, (case, r)
            assert sim.state()["faults"][0]["count"] == 0, f"{case}: the fault was not hit"
            pjobs = sim.jobs_for(job)
            if kind == "late":
                # The late request lands after the runner moved on: the job it made
                # is cancelled, the file it stored deleted, both before the job ends.
                extra = [j for j in pjobs if j["id"] != r["provider_job_id"]]
                assert [j["status"] for j in extra] == (["cancelled"] if endpoint == "create" else []), (case, pjobs)
                note = "cancelled duplicate provider job %" if endpoint == "create" else "deleted duplicate upload %"
                assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE '{note}'") == "1", case
                pjobs = [j for j in pjobs if j["id"] == r["provider_job_id"]]
            if expected == "succeeded":
                assert len(pjobs) == 1, (case, pjobs)
                new_files = [f for f in sim.state()["files"] if f["id"] not in before_files]
                assert len(new_files) == 2, (case, "files reused or deleted, never duplicated", new_files)
                # Retried inline where safe (a 429 was not processed; GETs repeat);
                # otherwise recorded, and the step runs again after a delay.
                inline = kind == "429" or (endpoint == "retrieve" and kind != "401")
                errors = c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'error'")
                assert (errors == "0") == inline, (case, errors)
            else:
                assert len(pjobs) == 0, (case, pjobs)
                assert r["error_code"] == code, (case, r)
                new_files = [f for f in sim.state()["files"] if f["id"] not in before_files]
                assert new_files == [], (case, "uploaded files of a failed job are deleted", new_files)
        # The daily job-creation cap defers the job instead of failing it.
        sim.faults({"endpoint": "create", "kind": "daily", "count": 1})
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the deferral", lambda: c.one(
            f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE '%deferred in 21600s%'") == "1")
        assert c.sql(f"SELECT status, next_attempt_at > now() + interval '5 hours' FROM vibe_ft.jobs WHERE id = '{job}'") == [["submitted", "t"]]
        assert sim.jobs_for(job) == []
        assert c.one("SELECT cancel_finetuning_job('%s')" % job) == "cancelled"
        assert [f for f in sim.state()["files"] if job in f["filename"]] == [], "cancel deletes the uploaded files"
    finally:
        c.stop()
        sim.stop()


def try_one(c, sql):
    try:
        return c.one(sql)
    except SqlError:
        return None


def _kill_worker(c):
    pid = c.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'")
    subprocess.run(["kill", "-9", pid], check=True)
    return pid


# (endpoint, what is lost, the event that shows the runner found it again)
KILL_POINTS = [("upload", "a training file stored but not recorded", "reused train file %"),
               ("create", "a provider job made but not recorded", "adopted provider job found by its metadata %"),
               ("retrieve", "a poll in flight", "% successfully completed")]


def test_crashes_at_each_step_resume_without_duplicates(work):
    sim = Sim(job_seconds=2, hang_seconds=30)
    c = runner_cluster(work, "kills", sim)
    try:
        ds = install(c)
        for how in ("sigkill", "immediate"):
            for endpoint, what, found_again in KILL_POINTS:
                case = f"{how} during {endpoint} ({what})"
                # The provider does the work, then holds the answer: we die before we hear it.
                sim.faults({"endpoint": endpoint, "kind": "slow", "count": 1, "seconds": 30})
                job = c.one(f"SELECT create_finetuning_job('{ds}')")
                wait_for(f"{case}: the request to arrive", lambda: sim.state()["faults"][0]["count"] == 0)
                time.sleep(0.3)
                if how == "sigkill":
                    old = _kill_worker(c)
                    # A killed backend makes the postmaster reset every session (crash recovery).
                    wait_for(f"{case}: a new worker", lambda: try_one(c,
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker' AND pid <> %s" % old) == "1",
                        timeout=60)
                else:
                    c.stop("immediate")
                    c.start()
                assert wait_final(c, job, timeout=90) == "succeeded", (case, job_row(c, job))
                assert len(sim.jobs_for(job)) == 1, (case, sim.jobs_for(job))
                files = sorted(f["filename"] for f in sim.state()["files"] if job in f["filename"])
                assert files == [f"vibe_ft-{job}-train.jsonl", f"vibe_ft-{job}-validation.jsonl"], (case, files)
                assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE '{found_again}'") == "1", case
    finally:
        c.stop()
        sim.stop()


def test_cancel_at_the_provider_and_locally(work):
    sim = Sim(job_seconds=60)
    c = runner_cluster(work, "cancel", sim)
    try:
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the job to reach the provider", lambda: c.one(
            f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") in ("validating_files", "queued", "running"))
        assert c.one(f"SELECT cancel_finetuning_job('{job}')") == "cancelled"
        assert sim.jobs_for(job)[0]["status"] == "cancelled"
        assert c.one(f"SELECT cancel_finetuning_job('{job}')") == "cancelled", "idempotent"
        assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message = 'cancelled by postgres'") == "1"
        # A job that never reached the provider cancels without calling it.
        c.sql("ALTER SYSTEM SET vibe_ft.enabled = off; SELECT pg_reload_conf();")
        time.sleep(0.5)
        job2 = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert c.one(f"SELECT cancel_finetuning_job('{job2}')") == "cancelled"
        expect_error(lambda: c.sql("SELECT cancel_finetuning_job(NULL)"), "p_job_id must not be NULL")
        expect_error(lambda: c.sql("SELECT cancel_finetuning_job(gen_random_uuid())"), "does not exist")
        job3 = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql(f"UPDATE vibe_ft.jobs SET status = 'succeeded' WHERE id = '{job3}'")
        expect_error(lambda: c.sql("SELECT cancel_finetuning_job(id) FROM vibe_ft.jobs WHERE status = 'succeeded'"),
                     "finished jobs never change status")
    finally:
        c.stop()
        sim.stop()


def test_keys_are_invisible_and_never_logged(work):
    secret = "sk-e2e-TOPSECRET-4242"
    sim = Sim(key=secret, job_seconds=1.5)
    c = runner_cluster(work, "keys", sim, conf=["log_min_messages = debug1", "log_statement = 'all'",
                                                 "log_error_verbosity = verbose"])
    try:
        ds = install(c)
        c.sql("CREATE ROLE app LOGIN; SELECT vibe_ft.grant_access('app');")
        assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "setting"
        # A non-superuser cannot read the key by any means.
        for probe in ["SHOW vibe_ft.openai_api_key", "SELECT current_setting('vibe_ft.openai_api_key')",
                      "SELECT * FROM pg_file_settings", "SELECT pg_read_file('postgresql.conf')",
                      "SELECT vibe_ft.provider_key_source('openai')"]:
            expect_error(lambda: c.sql(probe, user="app"), "ERROR")
        assert c.one("SELECT count(*) FROM pg_settings WHERE name LIKE 'vibe_ft.%key%'", user="app") == "0"
        assert not any("TOPSECRET" in "|".join(r) for r in c.sql("SHOW ALL", user="app"))
        # Run jobs through every path that uses the key: worker, SQL runner, a 401, cancel.
        job = c.one(f"SELECT create_finetuning_job('{ds}')", user="app")
        assert wait_final(c, job) == "succeeded"
        sim.faults({"endpoint": "create", "kind": "401", "count": 1})
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "failed"
        sim.config(job_seconds=60)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the provider job", lambda: c.one(f"SELECT provider_job_id IS NOT NULL FROM vibe_ft.jobs WHERE id = '{job}'") == "t")
        assert c.one(f"SELECT cancel_finetuning_job('{job}')", user="app") == "cancelled"
        c.sql("SELECT pg_reload_conf()")
        # Vault comes first when it is installed (a stand-in extension named
        # supabase_vault; a look-alike is refused: test_security).
        with vault_extension():
            c.sql("CREATE EXTENSION supabase_vault; SELECT vault.create_secret('sk-from-vault', 'vibe_ft_openai_api_key')")
            assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "vault"
            c.sql("DROP EXTENSION supabase_vault; DROP SCHEMA vault")
        time.sleep(1)
        log = c.log()
        assert "create_finetuning_job" in log and "statement:" in log, "log_statement = all was on"
        assert secret not in log, "the key reached the server log"
        assert "TOPSECRET" not in log
        assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE message LIKE '%TOPSECRET%' OR data::text LIKE '%TOPSECRET%'") == "0"
    finally:
        c.stop()
        sim.stop()


def test_key_from_the_environment(work):
    secret = "sk-e2e-ENVIRONMENT-7"
    sim = Sim(key=secret, job_seconds=1.5)
    conf = [line for line in sim.conf() if "api_key" not in line]
    c = Cluster(work, "envkey", preload="vibe_ft", conf=[*conf, "log_min_messages = debug1"],
                env=[f"OPENAI_API_KEY={secret}", "TOGETHER_API_KEY=tg-e2e-ENVIRONMENT"])
    try:
        ds = install(c)
        assert c.one("SELECT vibe_ft.provider_key_source('openai')") == "environment"
        assert c.one("SELECT vibe_ft.provider_key_source('together')") == "environment"
        assert c.one("SELECT vibe_ft.provider_key_source('azure') IS NULL") == "t"
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "succeeded"
        assert secret not in c.log()
    finally:
        c.stop()
        sim.stop()


def test_worker_survives_errors_and_stops_on_sigterm(work):
    sim = Sim(job_seconds=1.5)
    c = runner_cluster(work, "survive", sim, conf=["vibe_ft.worker_check_interval = 1"])
    try:
        ds = install(c)
        pid = wait_for("the worker", lambda: try_one(c, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'"))
        # A database error inside a step (here: a trigger that refuses the write).
        c.sql("""CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.status = 'uploading' AND NEW.suffix = 'doomed' THEN RAISE EXCEPTION 'refused by a test'; END IF;
                 RETURN NEW; END $$;
                 CREATE TRIGGER refuse BEFORE UPDATE ON vibe_ft.jobs FOR EACH ROW EXECUTE FUNCTION public.refuse();""")
        c.sql("INSERT INTO vibe_ft.datasets (name) VALUES ('other')")
        other = c.one("SELECT id FROM vibe_ft.datasets WHERE name = 'other'")
        c.sql(f"INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) SELECT '{other}', messages, quality_score FROM vibe_ft.examples WHERE dataset_id = '{ds}'")
        doomed = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'doomed')")
        wait_for("the error to be recorded", lambda: c.one(
            "SELECT coalesce(worker_last_error LIKE '%refused by a test%', false) FROM vibe_ft.status") == "t")
        # ... and is left alone for a while, doubling: no busy loop on a broken job.
        time.sleep(3)
        tries = int(c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{doomed}' AND kind = 'error'"))
        assert 1 <= tries < 10, tries
        fine = c.one(f"SELECT create_finetuning_job('{other}')")
        assert wait_final(c, fine) == "succeeded", job_row(c, fine)
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{doomed}'") == "exporting"
        assert c.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'") == pid, "same worker"
        # A provider this version has no module for fails that job, not the worker.
        c.sql(f"SELECT cancel_finetuning_job('{doomed}')")
        c.sql(f"UPDATE vibe_ft.datasets SET provider = 'fireworks' WHERE id = '{other}'")
        odd = c.one(f"SELECT create_finetuning_job('{other}')")
        assert wait_final(c, odd) == "failed"
        assert c.one(f"SELECT error_code FROM vibe_ft.jobs WHERE id = '{odd}'") == "unsupported_provider"
        c.sql(f"UPDATE vibe_ft.datasets SET auto_finetune = true, min_new_examples = 1, min_days_between_jobs = 0 WHERE id = '{ds}'")
        c.stop("fast")
        assert "vibe_ft worker stopping" in c.log()
        assert "terminated by signal" not in c.log()
        # Started again, the worker runs its own monthly check (vibe_ft.worker_check_interval) at once.
        c.start()
        auto = wait_for("the worker's monthly check", lambda: try_one(
            c, f"SELECT id FROM vibe_ft.jobs WHERE dataset_id = '{ds}' AND suffix IS NULL"))
        assert wait_final(c, auto) == "succeeded"
    finally:
        c.stop()
        sim.stop()


def test_azure_openai_job(work):
    """The same loop against Azure OpenAI's v1 surface: api-key header, its paths and model ids."""
    sim = Sim(job_seconds=1.5)
    c = runner_cluster(work, "azure", sim, flavor="azure")
    try:
        ds = install(c)
        assert c.one("SELECT vibe_ft.provider_key_source('azure')") == "setting"
        c.sql(f"UPDATE vibe_ft.datasets SET provider = 'azure' WHERE id = '{ds}'")
        # Azure's suffix rule is checked before any upload.
        bad = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'coach v2')")
        assert wait_final(c, bad) == "failed"
        assert c.one(f"SELECT error_code FROM vibe_ft.jobs WHERE id = '{bad}'") == "invalid_suffix"
        job = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18', p_suffix => 'coach-v2')")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        model = c.one(f"SELECT fine_tuned_model FROM vibe_ft.jobs WHERE id = '{job}'")
        assert model.startswith("gpt-4o-mini-2024-07-18.ft-"), model
        assert all(r["path"].startswith("/openai/v1/") for r in sim.state()["requests"])
        assert len(sim.state()["files"]) == 2
    finally:
        c.stop()
        sim.stop()
