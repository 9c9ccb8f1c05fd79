"""End-to-end tests of the providers after OpenAI: Together AI (no metadata, no
idempotency key: a lost job is found by its training file and suffix), a
dataset that switches from OpenAI to Together with one UPDATE, a Together DPO
job, Azure's open-weight models, and serving a model on a dedicated endpoint
that bills per minute. Real clusters, the real worker, the simulator."""

import json
import urllib.error
import urllib.request

from harness import *  # noqa: F401,F403
from test_jobs import FINAL, _kill_worker, _race_sessions, job_row, try_one, wait_final

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


def together_cluster(work, name, sim, preload="vibe_ft", conf=()):
    return Cluster(work, name, preload=preload, conf=[*sim.conf("together"), *conf])


def to_together(c, ds, model=LLAMA):
    """The one UPDATE that switches a dataset's provider."""
    c.sql(f"UPDATE vibe_ft.datasets SET provider = 'together', base_model = '{model}' WHERE id = '{ds}'")


def add_pairs(c, ds, n=12, system=True):
    """n preference pairs (the generation makes them from ratings; here, directly)."""
    sys_msg = "jsonb_build_object('role', 'system', 'content', 'You are a coach.')," if system else ""
    c.sql(f"""INSERT INTO vibe_ft.preference_examples (dataset_id, prefix_hash, input, preferred, non_preferred,
                                                       quality_score, split)
              SELECT '{ds}', sha256(convert_to(m::text, 'UTF8')), m, 'a kind answer ' || i, 'a curt answer ' || i, 8, 'train'
                FROM generate_series(1, {n}) i,
                     LATERAL (SELECT jsonb_build_array({sys_msg}
                                     jsonb_build_object('role', 'user', 'content', 'question ' || i)) AS m) x""")


def chat(sim, model):
    """What an app does with the name vibe_ft gives it: (HTTP status, error code)."""
    req = urllib.request.Request(f"{sim.base}/together/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {sim.key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()).get("error", {}).get("code")


def test_together_runs_a_job_to_a_model_and_serves_it_on_request(work):
    sim = Sim(job_seconds=2)
    c = together_cluster(work, "together_loop", sim)
    try:
        ds = install(c)
        to_together(c, ds)
        assert c.one("SELECT vibe_ft.provider_key_source('together')") == "setting"
        job = c.one(f"""SELECT create_finetuning_job('{ds}', p_hyperparameters => '{{"n_epochs": 2, "learning_rate": 1e-5}}',
                                                     p_suffix => 'coach')""")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        r = job_row(c, job)
        pj = sim.together_jobs_for(c, job)
        assert len(pj) == 1, pj
        pj = pj[0]
        # Together's request: flat fields, LoRA, SFT, our suffix; no metadata (it would be refused).
        assert (pj["model"], pj["suffix"], pj["n_epochs"], pj["learning_rate"]) == (LLAMA, "coach", 2, 1e-5), pj
        assert pj["training_type"]["type"] == "Lora" and pj["training_method"]["method"] == "sft", pj
        assert pj["validation_file"] == r["validation_file_id"] != ""
        # The model's name is read, never built; the real cost is recorded.
        assert r["fine_tuned_model"] == pj["model_output_name"], (r, pj)
        cost, source, estimate = c.sql(f"SELECT cost_usd, estimated_cost_source, estimated_cost_usd FROM vibe_ft.jobs WHERE id = '{job}'")[0]
        assert abs(float(cost) - pj["total_price"] / 1e9) < 1e-9 and source == "together estimate" and float(estimate) > 0
        assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE 'together estimate: $%'") == "1"
        assert c.one(f"SELECT count(*) > 3 FROM vibe_ft.job_events WHERE job_id = '{job}' AND kind = 'provider'") == "t"
        report = json.loads(c.one(f"SELECT data FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE 'exported and checked%'"))
        assert report["validation_report"]["train"]["tokens_exact"] is False, "an open-weight model's counts are estimates"
        # Succeeded, but not callable: Together serves fine-tunes on paid endpoints only.
        assert c.one(f"SELECT count(*) FROM get_latest_finetuned_model('{LLAMA}')") == "0"
        assert c.one("SELECT not_callable_because LIKE 'not deployed:%' FROM vibe_ft.models").startswith("t")
        assert sim.together()["endpoints"] == [], "vibe_ft never starts paid serving by itself"
        # Over the cap: refused before anything is started.
        expect_error(lambda: c.sql(f"SELECT * FROM vibe_ft.deploy_model('{job}', 2)"), "over p_max_hourly_usd")
        assert sim.together()["endpoints"] == []
        name, state, hourly = c.sql(f"SELECT * FROM vibe_ft.deploy_model('{job}', 5, p_inactive_timeout_minutes => 30)")[0]
        assert state in ("PENDING", "STARTING", "STARTED") and float(hourly) == 3.99, (name, state, hourly)
        ep = sim.together()["endpoints"]
        assert len(ep) == 1 and ep[0]["model"] == r["fine_tuned_model"] and ep[0]["inactive_timeout"] == 30, ep
        assert ep[0]["display_name"] == f"vibe_ft-{job}"
        # The worker records when it has started; then the endpoint's name is what an app calls.
        wait_for("the endpoint to start", lambda: c.one("SELECT callable FROM vibe_ft.models") == "t", timeout=30)
        assert c.one(f"SELECT model_id FROM get_latest_finetuned_model('{LLAMA}')") == name == ep[0]["name"]
        provider, base_url, model = c.sql(f"SELECT provider, base_url, model FROM vibe_ft.serving_model(p_dataset_id => '{ds}')")[0]
        assert (provider, base_url, model) == ("together", f"{sim.base}/together/v1", name)
        assert chat(sim, model) == (200, None)
        assert chat(sim, r["fine_tuned_model"])[0] == 404, "the fine-tuned model's own name is not what an app calls"
        # Deploying again changes nothing; stopping ends the billing and the serving.
        assert c.sql(f"SELECT endpoint_name FROM vibe_ft.deploy_model('{job}', 5, p_inactive_timeout_minutes => 30)") == [[name]]
        assert len(sim.together()["endpoints"]) == 1
        assert c.one(f"SELECT vibe_ft.stop_deployment('{job}')") in ("STOPPING", "STOPPED")
        wait_for("the stop to be recorded", lambda: c.one("SELECT deployment_state FROM vibe_ft.models") == "STOPPED", timeout=30)
        assert c.one(f"SELECT count(*) FROM get_latest_finetuned_model('{LLAMA}')") == "0"
        assert chat(sim, name) == (400, "dedicated_endpoint_not_running")
        # Started again, on request, within this call's cap: two replicas at
        # $3.99/h do not fit in $5/h, whatever the first call allowed.
        expect_error(lambda: c.sql(f"SELECT * FROM vibe_ft.deploy_model('{job}', 5, p_max_replicas => 2)"), "over p_max_hourly_usd")
        c.sql(f"SELECT * FROM vibe_ft.deploy_model('{job}', 5, p_inactive_timeout_minutes => 30)")
        wait_for("the restart", lambda: c.one("SELECT callable FROM vibe_ft.models") == "t", timeout=30)
        assert len(sim.together()["endpoints"]) == 1
        assert os.listdir(os.path.join(c.data, "vibe_ft_files")) == []
    finally:
        c.stop()
        sim.stop()


TRANSIENT = ["429", "500", "503", "hang", "reset", "malformed", "drop"]
FAULT_CASES = (
    [("upload", k, "succeeded", None) for k in TRANSIENT]
    + [("upload", "401", "failed", "invalid_api_key")]
    + [("create", k, "succeeded", None) for k in TRANSIENT]
    + [("create", "401", "failed", "invalid_api_key")]
    + [("retrieve", k, "succeeded", None) for k in TRANSIENT + ["401"]]
    + [("estimate", k, "succeeded", None) for k in ("500", "hang")]
    + [("upload", "late", "succeeded", None), ("create", "late", "succeeded", None)]
)


def test_together_each_fault_at_each_step_makes_one_paid_job(work):
    sim = Sim(job_seconds=1.5, hang_seconds=5)
    c = together_cluster(work, "together_faults", sim)
    try:
        ds = install(c)
        to_together(c, ds)
        for endpoint, kind, expected, code in FAULT_CASES:
            case = f"{kind} on {endpoint}"
            before = {f["id"] for f in sim.together()["files"]}
            sim.config(job_seconds=6 if kind == "late" else 1.5)
            sim.faults({"endpoint": endpoint, "kind": kind, "count": 1, "retry_after": 0, "seconds": 6 if kind == "late" else 4})
            job = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'coach')")
            got = wait_final(c, job, timeout=60)
            r = job_row(c, job)
            assert got == expected, (case, r)
            assert sim.state()["faults"][0]["count"] == 0, f"{case}: the fault was not hit"
            pjobs = sim.together_jobs_for(c, job)
            if kind == "late" and endpoint == "create":
                # The late create lands after the runner found nothing and created
                # again: the poll cancels it before it trains.
                extra = [j for j in pjobs if j["id"] != r["provider_job_id"]]
                wait_for(f"{case}: the duplicate to be cancelled", lambda: all(
                    j["status"] in ("cancel_requested", "cancelled")
                    for j in sim.together_jobs_for(c, job) if j["id"] != r["provider_job_id"]), timeout=20)
                assert len(extra) <= 1, (case, pjobs)
                pjobs = [j for j in pjobs if j["id"] == r["provider_job_id"]]
            if expected == "succeeded":
                assert len(pjobs) == 1 and pjobs[0]["status"] == "completed", (case, pjobs)
                new_files = [f for f in sim.together()["files"] if f["id"] not in before]
                assert len(new_files) == 2, (case, "files reused or deleted, never duplicated", new_files)
            else:
                assert pjobs == [], (case, pjobs)
                assert r["error_code"] == code, (case, r)
                assert [f for f in sim.together()["files"] if f["id"] not in before] == [], (case, "uploads of a failed job are deleted")
    finally:
        c.stop()
        sim.stop()


KILL_POINTS = [("upload", "reused train file %"),
               ("create", "adopted provider job found by its training file %"),
               ("retrieve", None)]


def test_together_crashes_at_each_step_resume_without_duplicates(work):
    sim = Sim(job_seconds=2, hang_seconds=30)
    c = together_cluster(work, "together_kills", sim)
    try:
        ds = install(c)
        to_together(c, ds)
        for how in ("sigkill", "immediate"):
            for endpoint, found_again in KILL_POINTS:
                case = f"{how} during {endpoint}"
                sim.faults({"endpoint": endpoint, "kind": "slow", "count": 1, "seconds": 30})
                job = c.one(f"SELECT create_finetuning_job('{ds}', p_suffix => 'coach')")
                wait_for(f"{case}: the request to arrive", lambda: sim.state()["faults"][0]["count"] == 0)
                time.sleep(0.3)
                if how == "sigkill":
                    old = _kill_worker(c)
                    wait_for(f"{case}: a new worker", lambda: try_one(c,
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker' AND pid <> %s" % old) == "1",
                        timeout=60)
                else:
                    c.stop("immediate")
                    c.start()
                assert wait_final(c, job, timeout=90) == "succeeded", (case, job_row(c, job))
                assert len(sim.together_jobs_for(c, job)) == 1, (case, sim.together_jobs_for(c, job))
                files = sorted(f["filename"] for f in sim.together()["files"] if job in f["filename"])
                assert files == [f"vibe_ft-{job}-train.jsonl", f"vibe_ft-{job}-validation.jsonl"], (case, files)
                if found_again:
                    assert c.one(f"SELECT count(*) FROM vibe_ft.job_events WHERE job_id = '{job}' AND message LIKE '{found_again}'") == "1", case
    finally:
        c.stop()
        sim.stop()


def test_together_racing_runners_make_one_provider_job(work):
    """The worker and six sessions running the SQL runner at once, on Together."""
    sim = Sim(job_seconds=3)
    c = together_cluster(work, "together_race", sim, conf=["vibe_ft.enabled = off"])
    try:
        ds = install(c)
        to_together(c, ds)
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        c.sql("ALTER SYSTEM SET vibe_ft.enabled = on; SELECT pg_reload_conf();")
        results = _race_sessions(c, 6, "CALL vibe_ft.run_jobs(15);")
        assert all(r[0] == 0 for r in results), results
        assert wait_final(c, job, run_sql=True) == "succeeded", job_row(c, job)
        assert len(sim.together_jobs_for(c, job)) == 1
        assert len([r for r in sim.requests("create") if r["path"].startswith("/together/")]) == 1
        names = sorted(f["filename"] for f in sim.together()["files"])
        assert names == sorted([f"vibe_ft-{job}-train.jsonl", f"vibe_ft-{job}-validation.jsonl"]), names
    finally:
        c.stop()
        sim.stop()


def test_a_dataset_switches_from_openai_to_together_and_keeps_its_history(work):
    sim = Sim(job_seconds=1.5)
    c = Cluster(work, "switch", preload="vibe_ft", conf=[*sim.conf("openai"), *sim.conf("together")[:2]])
    try:
        ds = install(c)
        c.sql(f"UPDATE vibe_ft.datasets SET monthly_budget_usd = 100 WHERE id = '{ds}'")
        first = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18')")
        assert wait_final(c, first) == "succeeded", job_row(c, first)
        old_model = c.one(f"SELECT fine_tuned_model FROM vibe_ft.jobs WHERE id = '{first}'")
        counts = lambda: c.sql(f"""SELECT (SELECT count(*) FROM vibe_ft.examples WHERE dataset_id = '{ds}'),
                                          (SELECT count(*) FROM vibe_ft.job_events e JOIN vibe_ft.jobs j ON j.id = e.job_id
                                            WHERE j.id = '{first}'),
                                          (SELECT monthly_budget_usd FROM vibe_ft.datasets WHERE id = '{ds}')""")
        before = counts()
        to_together(c, ds)
        # The seed's default base model on a Together dataset means the dataset's own.
        second = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert c.one(f"SELECT provider || ' ' || base_model FROM vibe_ft.jobs WHERE id = '{second}'") == f"together {LLAMA}"
        assert wait_final(c, second) == "succeeded", job_row(c, second)
        assert counts() == before, "examples, the old job's history and the budget are untouched"
        # Both models stay in the registry; the old job still says where it ran.
        rows = c.sql("SELECT provider, fine_tuned_model, callable FROM vibe_ft.models ORDER BY finished_at")
        assert rows[0] == ["openai", old_model, "t"] and rows[1][0] == "together" and rows[1][2] == "f", rows
        assert c.one(f"SELECT provider FROM vibe_ft.jobs WHERE id = '{first}'") == "openai"
        assert len(sim.jobs_for(first)) == 1 and len(sim.together_jobs_for(c, second)) == 1
        # Until the new model is deployed, apps keep calling the old one.
        assert c.sql("SELECT provider, model FROM vibe_ft.serving_model()") == [["openai", old_model]]
        # The spend of both providers counts against the one budget.
        assert float(c.one(f"SELECT sum(coalesce(cost_usd, estimated_cost_usd)) FROM vibe_ft.jobs WHERE dataset_id = '{ds}'")) > 0
    finally:
        c.stop()
        sim.stop()


def test_together_dpo_job(work):
    sim = Sim(job_seconds=1.5)
    c = together_cluster(work, "together_dpo", sim)
    try:
        install(c)
        c.sql(f"""INSERT INTO vibe_ft.datasets (name, method, provider, base_model, validation_share)
                  VALUES ('prefs', 'dpo', 'together', '{LLAMA}', 0)""")
        ds = c.one("SELECT id FROM vibe_ft.datasets WHERE name = 'prefs'")
        add_pairs(c, ds)
        job = c.one(f"""SELECT create_finetuning_job('{ds}', p_hyperparameters => '{{"beta": 0.2}}')""")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        pj = sim.together_jobs_for(c, job)
        assert len(pj) == 1, pj
        assert (pj[0]["training_method"]["method"], pj[0]["training_method"]["dpo_beta"]) == ("dpo", 0.2), pj[0]
        line = json.loads(open(next(f["path"] for f in sim.together()["files"] if f["id"] == pj[0]["training_file"])).readline())
        assert sorted(line) == ["input", "non_preferred_output", "preferred_output"], line
    finally:
        c.stop()
        sim.stop()


def test_azure_open_weight_model_job(work):
    """Azure fine-tunes open-weight models through the same v1 API, with trainingType."""
    sim = Sim(job_seconds=1.5)
    c = Cluster(work, "azure_oss", preload="vibe_ft", conf=sim.conf("azure"))
    try:
        ds = install(c)
        c.sql(f"UPDATE vibe_ft.datasets SET provider = 'azure', base_model = 'Ministral-3B' WHERE id = '{ds}'")
        job = c.one(f"SELECT create_finetuning_job('{ds}', 'Ministral-3B', p_suffix => 'coach')")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        pj = sim.jobs_for(job)
        assert len(pj) == 1 and pj[0]["trainingType"] == "globalStandard", pj
        assert c.one(f"SELECT fine_tuned_model FROM vibe_ft.jobs WHERE id = '{job}'").startswith("Ministral-3B.ft-")
        # Azure's open-weight models take supervised jobs only: refused before any upload.
        c.sql(f"UPDATE vibe_ft.datasets SET method = 'dpo' WHERE id = '{ds}'")
        add_pairs(c, ds, system=False)
        dpo = c.one(f"SELECT create_finetuning_job('{ds}', 'Ministral-3B')")
        assert wait_final(c, dpo) == "failed"
        assert c.one(f"SELECT error_code FROM vibe_ft.jobs WHERE id = '{dpo}'") == "unsupported_method"
        assert len(sim.state()["files"]) == 2, "nothing of the refused job was uploaded"
    finally:
        c.stop()
        sim.stop()
