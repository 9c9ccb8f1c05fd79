"""End-to-end tests of the job runner: a real cluster, the real background
worker (or the SQL-only path), and the provider simulator on loopback."""

from harness import *  # noqa: F401,F403

FINAL = ("succeeded", "failed", "cancelled")


def runner_cluster(work, name, sim, preload="vibe_ft", conf=(), flavor="openai"):
    return Cluster(work, name, preload=preload, conf=["vibe_ft.enabled = on", *sim.conf(flavor), *conf])


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
        wait_for("the worker's heartbeat", lambda: c.one("SELECT count(*) FROM vibe_ft.worker_heartbeat") == "1")
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
