"""End-to-end: running vibe_ft in production. The SQL-only path as the README
sets it up; a failing step in SQL-only mode; erasure while the provider holds an
upload; redirects; a restored copy of a database; a fast shutdown in the middle
of an upload and of a retry wait; an error at commit in the worker."""

import http.server
import json
import threading

from harness import *  # noqa: F401,F403
from test_feedback import rate
from test_jobs import FINAL, job_row, runner_cluster, try_one, wait_final


def sql_only_cluster(work, name, sim, preload="", conf=()):
    """No vibe_ft in shared_preload_libraries; of vibe_ft's settings only the
    provider's address (a real OpenAI user sets none); the key in the server's
    environment."""
    return Cluster(work, name, preload=preload, conf=[f"vibe_ft.openai_base_url = '{sim.base}/v1'", *conf],
                   env=[f"OPENAI_API_KEY={sim.key}"])


def test_sql_only_runs_in_a_new_session_and_from_pg_cron(work):
    """0.3.0's CALL vibe_ft.run_jobs() read vibe_ft.enabled before the library
    was loaded in the session: every pg_cron run failed."""
    sim = Sim(job_seconds=1)
    c = sql_only_cluster(work, "sql_only_cron", sim, preload="pg_cron")
    try:
        c.sql("CREATE EXTENSION pg_cron")
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        # The first statement of a new session (psql runs each call in its own).
        c.sql("CALL vibe_ft.run_jobs(5)")
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") != "pending"
        assert wait_final(c, job, run_sql=True) == "succeeded", job_row(c, job)
        # pg_cron, as the README schedules it, every minute in a session of its own.
        c.sql("SELECT vibe_ft.schedule_job_runner()")
        job2 = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("pg_cron's runs to finish the job", lambda: c.one(
            f"SELECT status FROM vibe_ft.jobs WHERE id = '{job2}'") in FINAL, timeout=200, every=3)
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job2}'") == "succeeded", job_row(c, job2)
        assert c.one("SELECT count(*) FROM cron.job_run_details WHERE status <> 'succeeded'") == "0", c.sql(
            "SELECT status, return_message FROM cron.job_run_details")
    finally:
        c.stop()
        sim.stop()


def test_a_failing_step_is_recorded_and_the_other_jobs_go_on(work):
    """In SQL-only mode a job whose step raises (here a trigger refuses the
    write; below, an unwritable work_dir) used to abort the whole CALL, record
    nothing, and keep every other job waiting forever."""
    sim = Sim(job_seconds=1)
    c = sql_only_cluster(work, "sql_only_failing", sim, conf=["vibe_ft.retry_delay = 30"])
    try:
        ds = install(c)
        c.sql("""CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.status = 'uploading' AND NEW.suffix = 'doomed' THEN RAISE EXCEPTION 'refused by a test'; END IF;
                 RETURN NEW; END $$;
                 CREATE TRIGGER refuse BEFORE UPDATE ON vibe_ft.jobs FOR EACH ROW EXECUTE FUNCTION public.refuse();""")
        c.sql("INSERT INTO vibe_ft.datasets (name) VALUES ('other')")
        other = c.one("SELECT id FROM vibe_ft.datasets WHERE name = 'other'")
        c.sql(f"INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) "
              f"SELECT '{other}', messages, quality_score FROM vibe_ft.examples WHERE dataset_id = '{ds}'")
        doomed = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'doomed')")
        fine = c.one(f"SELECT create_finetuning_job('{other}')")
        out = c.sql_with_notices("CALL vibe_ft.run_jobs(5)")
        assert "refused by a test" in out, out
        r = c.sql(f"""SELECT status, attempts, next_attempt_at > now() + interval '20 seconds'
                        FROM vibe_ft.jobs WHERE id = '{doomed}'""")
        assert r == [["exporting", "1", "t"]], r
        assert c.one(f"SELECT message FROM vibe_ft.job_events WHERE job_id = '{doomed}' AND kind = 'error'").startswith(
            "step failed: refused by a test (SQLSTATE P0001)")
        assert wait_final(c, fine, run_sql=True) == "succeeded", job_row(c, fine)
        # The doomed job waits its turn (30 s, doubling), it does not sort first forever.
        c.sql("CALL vibe_ft.run_jobs(1)")
        assert c.one(f"SELECT attempts FROM vibe_ft.jobs WHERE id = '{doomed}'") == "1"
        # A work directory that cannot be written: recorded on the job, the CALL completes.
        c.sql(f"SELECT cancel_finetuning_job('{doomed}')")
        c.sql("LOAD 'vibe_ft'; ALTER SYSTEM SET vibe_ft.work_dir = '/proc/vibe_ft_cannot_write_here'; SELECT pg_reload_conf();")
        time.sleep(0.5)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql("CALL vibe_ft.run_jobs(5)")
        assert c.one(f"SELECT count(*) > 0 FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'error' "
                     f"AND message LIKE '%vibe_ft.work_dir%'") == "t"
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") == "exporting"
    finally:
        c.stop()
        sim.stop()


def uploaded_text(sim, file_id):
    f = [f for f in sim.state()["files"] if f["id"] == file_id][0]
    with open(f["path"], encoding="utf-8") as fh:
        return fh.read()


def test_erasure_while_the_provider_holds_the_upload(work):
    """forget_user while the job's training file is on its way: after it returns,
    no upload holds the user's rows; the job exports again (new file names) and
    the earlier upload is deleted at the provider."""
    sim = Sim(job_seconds=1)
    c = runner_cluster(work, "erase_upload", sim)
    try:
        install(c)
        c.sql("INSERT INTO vibe_ft.datasets (name, from_feedback, validation_share) VALUES ('fb', true, 0)")
        ds = c.one("SELECT id FROM vibe_ft.datasets WHERE name = 'fb'")
        for i in range(14):
            user = "leaving-user" if i < 3 else f"user-{i}"
            rate(c, f"a{i}", user, f"question {i}", f"Answer {i} for {user}.", up=True)
        assert c.one("SELECT examples_added FROM vibe_ft.generate_examples()") == "14"
        # The provider stores the file, then holds the answer for 6 s.
        sim.faults({"endpoint": "upload", "kind": "slow", "count": 1, "seconds": 6})
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the upload to arrive", lambda: sim.state()["faults"][0]["count"] == 0)
        erased = c.sql("SELECT * FROM vibe_ft.forget_user('leaving-user')")
        after = time.time()
        assert erased == [["3", "3", "0", "0", "1"]], erased
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        r = job_row(c, job)
        # Every upload that reached the provider after forget_user returned is clean.
        late = [f for f in sim.state()["files"] if f.get("created_at", 0) >= int(after)]
        assert late, sim.state()["files"]
        for f in late:
            assert "leaving-user" not in uploaded_text(sim, f["id"]), f
        assert "leaving-user" not in uploaded_text(sim, r["training_file_id"])
        names = sorted(f["filename"] for f in sim.state()["files"] if job in f["filename"])
        assert names == [f"vibe_ft-{job}-train-r1.jsonl"], ("the earlier upload is deleted", names)
        assert c.one(f"SELECT export_round FROM vibe_ft.jobs WHERE id = '{job}'") == "1"
    finally:
        c.stop()
        sim.stop()


class Catcher:
    """An HTTP listener on loopback that records every request it gets."""

    def __init__(self):
        got = self.got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_one(self):
                got.append({"path": self.path, "headers": dict(self.headers)})
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_DELETE = handle_one

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def test_redirects_are_not_followed(work):
    """A provider answering 307 to another host (here plain HTTP on another port):
    the request, and the api-key with it, never goes there."""
    sim = Sim(job_seconds=1)
    catcher = Catcher()
    c = runner_cluster(work, "redirect", sim, flavor="azure")
    try:
        ds = install(c)
        c.sql(f"UPDATE vibe_ft.datasets SET provider = 'azure' WHERE id = '{ds}'")
        sim.faults({"endpoint": "upload", "kind": "redirect", "count": 1, "location": catcher.url})
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "failed"
        r = job_row(c, job)
        assert r["error_code"] == "redirect" and catcher.url in r["error_message"], r
        # While polling, a redirect is retried (the job is never abandoned), never followed.
        sim.faults({"endpoint": "retrieve", "kind": "redirect", "count": 2, "location": catcher.url})
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        assert sim.state()["faults"][0]["count"] == 0
        assert catcher.got == [], catcher.got
    finally:
        c.stop()
        sim.stop()
        catcher.stop()


def job_at_the_provider_then_dump(c):
    """Create a job, wait until the provider has it, and dump the database
    (custom format). Returns (the job id, the dump's path)."""
    ds = install(c)
    job = c.one(f"SELECT create_finetuning_job('{ds}')")
    wait_for("the job at the provider", lambda: c.one(
        f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") in ("validating_files", "queued", "running"))
    dump = os.path.join(c.dir, "db.dump")
    with open(dump, "wb") as f:
        f.write(c.tool("pg_dump", "-Fc", *c.conn_args("postgres")).stdout)
    os.chmod(dump, 0o644)
    return job, dump


def test_a_restored_copy_leaves_the_originals_jobs_alone(work):
    """A dump of production restored on staging, with its worker and the same
    key: zero requests about production's jobs until adopt_jobs."""
    sim = Sim(job_seconds=20)
    prod = runner_cluster(work, "prod", sim)
    staging = None
    try:
        job, dump = job_at_the_provider_then_dump(prod)
        r = job_row(prod, job)
        prod.stop()
        seen = len(sim.state()["requests"])
        staging = runner_cluster(work, "staging", sim)
        staging.sql("CREATE DATABASE copy")
        staging.tool("pg_restore", "--exit-on-error", *staging.conn_args("copy"), dump)
        # The staging worker serves `postgres`; run the copy's runner by SQL too.
        staging.sql("CALL vibe_ft.run_jobs(3)", "copy")
        staging.sql("ALTER SYSTEM SET vibe_ft.database = 'copy'")
        staging.stop()
        staging.start()
        time.sleep(4)  # several worker rounds (naptime and polls at 1 s)
        assert staging.one("SELECT foreign_jobs FROM vibe_ft.status", "copy") == "1"
        expect_error(lambda: staging.sql(f"SELECT vibe_ft.run_job_step('{job}')", "copy"), "another installation")
        ids = [job, r["provider_job_id"], r["training_file_id"], r["validation_file_id"]]
        about = [q for q in sim.state()["requests"][seen:] if any(i and i in q["path"] for i in ids)]
        assert about == [], about
        assert len(sim.state()["requests"]) == seen, sim.state()["requests"][seen:]
        # Cancelling it there is local only.
        assert staging.one(f"SELECT cancel_finetuning_job('{job}')", "copy") == "cancelled"
        assert len(sim.state()["requests"]) == seen and sim.jobs_for(job)[0]["status"] != "cancelled"
        # Production carries on from its own cluster.
        prod.start()
        assert wait_final(prod, job, timeout=200) == "succeeded"
    finally:
        prod.stop()
        if staging:
            staging.stop()
        sim.stop()


def test_adopting_a_restored_job(work):
    """Moving for real (the original is gone): adopt_jobs, and the copy finishes the job."""
    sim = Sim(job_seconds=6)
    old = runner_cluster(work, "moving_from", sim)
    new = None
    try:
        job, dump = job_at_the_provider_then_dump(old)
        old.stop()
        new = runner_cluster(work, "moving_to", sim)
        new.sql("CREATE EXTENSION vibe_ft")
        new.tool("pg_restore", "--exit-on-error", "--data-only", *new.conn_args("postgres"), dump)
        assert new.one("SELECT foreign_jobs FROM vibe_ft.status") == "1"
        assert new.one(f"SELECT vibe_ft.adopt_jobs('{job}')") == "1"
        assert wait_final(new, job) == "succeeded", job_row(new, job)
        assert len(sim.jobs_for(job)) == 1
    finally:
        old.stop()
        if new:
            new.stop()
        sim.stop()


def test_fast_shutdown_mid_upload_and_mid_retry_wait(work):
    """pg_ctl -m fast while the worker waits on a held upload (120 s) and while it
    sleeps before a retry (the provider asks for 100 s): it stops at once."""
    sim = Sim(job_seconds=1, hang_seconds=120)
    c = runner_cluster(work, "shutdown", sim, conf=["vibe_ft.http_timeout = 300"])
    try:
        ds = install(c)
        timings = {}
        for case, fault in [("upload held", {"endpoint": "upload", "kind": "hang", "count": 1, "seconds": 120}),
                            ("retry wait", {"endpoint": "retrieve", "kind": "429", "count": 1, "retry_after": 100})]:
            sim.faults(fault)
            job = c.one(f"SELECT create_finetuning_job('{ds}')")
            wait_for(f"{case}: the request to arrive", lambda: sim.state()["faults"][0]["count"] == 0, timeout=60)
            time.sleep(0.5)
            start = time.monotonic()
            c.stop("fast")
            timings[case] = time.monotonic() - start
            assert try_one(c, "SELECT 1") is None, "stopped"
            log = c.log()
            assert "terminated by signal" not in log, log[-2000:]
            c.start()
            # Nothing was lost: the step runs again and the job finishes.
            assert wait_final(c, job) == "succeeded", (case, job_row(c, job))
            assert len(sim.jobs_for(job)) == 1, case
        print(f"    fast shutdown took {timings}")
        # The worker had 120 s and 100 s to wait: it gave up at once (a bound far
        # above the measured time, only to tell the two apart).
        assert all(t < 30 for t in timings.values()), timings
    finally:
        c.stop()
        sim.stop()


def test_an_error_at_commit_is_a_step_error(work):
    """A deferred constraint fails the worker's commit: recorded like any other
    step error, and the worker (same process) carries on."""
    sim = Sim(job_seconds=1)
    c = runner_cluster(work, "commit_error", sim)
    try:
        ds = install(c)
        pid = wait_for("the worker", lambda: try_one(c, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'"))
        c.sql("""CREATE FUNCTION public.refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.status = 'uploading' AND NEW.suffix = 'doomed' THEN RAISE EXCEPTION 'refused at commit by a test'; END IF;
                 RETURN NULL; END $$;
                 CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER UPDATE ON vibe_ft.jobs
                     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse_at_commit();""")
        doomed = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'doomed')")
        wait_for("the error to be recorded", lambda: c.one(
            f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{doomed}' AND kind = 'error' "
            f"AND message LIKE '%refused at commit%'") != "0")
        assert c.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'") == pid, "same worker"
        c.sql(f"SELECT cancel_finetuning_job('{doomed}')")
        c.sql("DROP TRIGGER refuse_at_commit ON vibe_ft.jobs")
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "succeeded"
        assert "terminated by signal" not in c.log()
    finally:
        c.stop()
        sim.stop()


def test_cancelling_a_job_that_succeeded_at_the_provider(work):
    """The provider finished the job before our next poll: cancel answers 55000
    (a succeeded job cannot be cancelled, as the README says; it was 23505), and
    the next poll records the model."""
    sim = Sim(job_seconds=1)
    c = runner_cluster(work, "cancel_done", sim, conf=["vibe_ft.poll_interval_fast = 3600", "vibe_ft.poll_interval = 3600"])
    try:
        ds = install(c)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the job at the provider", lambda: c.one(
            f"SELECT provider_job_id IS NOT NULL FROM vibe_ft.jobs WHERE id = '{job}'") == "t")
        wait_for("the provider to finish it", lambda: sim.jobs_for(job)[0]["status"] == "succeeded", timeout=30)
        err = expect_error(lambda: c.sql(f"\\set VERBOSITY verbose\nSELECT cancel_finetuning_job('{job}')"), "55000")
        assert "already succeeded" in err, err
        c.sql(f"SELECT vibe_ft.run_job_step('{job}')")
        assert c.one(f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") == "succeeded"
    finally:
        c.stop()
        sim.stop()
