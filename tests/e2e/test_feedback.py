"""End-to-end: users' feedback to an uploaded training file (chat and
preference), and validation stopping an upload before any provider call."""

import json

from harness import *  # noqa: F401,F403
from test_jobs import runner_cluster, wait_final, job_row

CONV = [{"role": "system", "content": "You are Coach Decibel."}]


def rate(c, answer_id, user, question, answer, up=None, stars=None):
    """The backend records the answer it served; then its user rates it."""
    msgs = json.dumps(CONV + [{"role": "user", "content": question}]).replace("'", "''")
    answer = answer.replace("'", "''")
    c.sql(f"SELECT record_answer('{answer_id}', '{user}', '{msgs}', '{answer}', 'gpt-4o-2024-08-06', 'openai')")
    args = [f"'{answer_id}'"]
    if up is not None:
        args.append(f"p_thumbs_up => {str(up).lower()}")
    if stars is not None:
        args.append(f"p_stars => {stars}")
    args.append(f"p_user_id => '{user}'")
    return c.one(f"SELECT submit_feedback({', '.join(args)})")


def uploaded(sim, file_id):
    f = [f for f in sim.state()["files"] if f["id"] == file_id][0]
    with open(f["path"], encoding="utf-8") as fh:
        return fh.read().splitlines()


def test_feedback_rows_become_uploaded_files(work):
    sim = Sim(job_seconds=2)
    c = runner_cluster(work, "feedback_loop", sim)
    try:
        c.sql("CREATE EXTENSION vibe_ft")
        ds = c.one("INSERT INTO vibe_ft.datasets (name, from_feedback, validation_share) "
                   "VALUES ('coach feedback', true, 0.2) RETURNING id").split()[0]
        # 24 liked answers (with personal data to redact), 12 of their questions
        # also answered badly (preference pairs), 5 low-rated answers.
        for i in range(24):
            rate(c, f"good-{i}", f"user-{i % 5}", f"Plan week {i}, mail me at runner{i}@example.com",
                 f"Week {i}: run 3x, call +1 415 555 01{i:02d} if sore.", up=True, stars=5)
        for i in range(12):
            rate(c, f"bad-{i}", f"user-{i % 5}", f"Plan week {i}, mail me at runner{i}@example.com",
                 f"Week {i}: do nothing.", up=False)
        for i in range(5):
            rate(c, f"meh-{i}", "user-9", f"Other question {i}", "Meh.", stars=2)
        r = c.sql("SELECT feedback_read, examples_added, pairs_added, redactions FROM vibe_ft.generate_examples()")
        assert r == [["41", "24", "12", "48"]], r
        assert c.sql("SELECT examples_added, pairs_added FROM vibe_ft.generate_examples()") == [["0", "0"]]

        # Supervised: the uploaded training file is exactly the export, redacted.
        job = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18')")
        assert wait_final(c, job) == "succeeded", job_row(c, job)
        row = job_row(c, job)
        lines = uploaded(sim, row["training_file_id"])
        export = [x[0] for x in c.sql(f"SELECT jsonl_line FROM export_training_dataset_openai_jsonl('{ds}', 'train', 6)")]
        assert lines == export and len(lines) > 10, (len(lines), len(export))
        text = "\n".join(lines + uploaded(sim, row["validation_file_id"]))
        assert "@example.com" not in text and "415 555" not in text and "[email]" in text and "[phone]" in text
        assert all(json.loads(x)["messages"][-1]["weight"] == 1 for x in lines)
        assert c.one(f"SELECT training_tokens > 0 AND estimated_cost_usd >= 0 FROM vibe_ft.jobs WHERE id = '{job}'") == "t"

        # DPO: the dataset's method; the uploaded file is the preference export.
        c.sql(f"UPDATE vibe_ft.datasets SET method = 'dpo' WHERE id = '{ds}'")
        # Twelve pairs split 80/20 could leave fewer than the 10 the provider needs: train on all.
        c.sql(f"UPDATE vibe_ft.preference_examples SET split = 'train' WHERE dataset_id = '{ds}'")
        job2 = c.one(f"SELECT create_finetuning_job('{ds}', 'gpt-4o-mini-2024-07-18')")
        assert wait_final(c, job2) == "succeeded", job_row(c, job2)
        pj = sim.jobs_for(job2)
        assert len(pj) == 1 and pj[0]["method"]["type"] == "dpo", pj
        lines = uploaded(sim, job_row(c, job2)["training_file_id"])
        export = [x[0] for x in c.sql(f"SELECT jsonl_line FROM vibe_ft.export_preference_jsonl('{ds}', 'train', 6)")]
        assert lines == export and len(lines) == 12
        first = json.loads(lines[0])
        assert set(first) == {"input", "preferred_output", "non_preferred_output"}
        assert "do nothing" in first["non_preferred_output"][0]["content"]

        # Erasure marks both jobs: their files held the user's data.
        r = c.sql("SELECT * FROM vibe_ft.forget_user('user-1')")
        assert r[0][3] == "2", r
        assert c.one("SELECT count(*) FROM vibe_ft.jobs WHERE erasure_requested_at IS NOT NULL") == "2"
    finally:
        c.stop()
        sim.stop()


def test_validation_stops_the_upload(work):
    sim = Sim(job_seconds=2)
    c = runner_cluster(work, "feedback_invalid", sim)
    try:
        ds = install(c)
        c.sql(f"""INSERT INTO vibe_ft.examples (dataset_id, messages, quality_score) VALUES
                  ('{ds}', '[{{"role":"user","content":"Repeat <|endoftext|>"}},{{"role":"assistant","content":"ok"}}]', 9)""")
        job = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job) == "failed", job_row(c, job)
        row = c.sql(f"SELECT error_code, replace(error_message, '|', '!') FROM vibe_ft.jobs WHERE id = '{job}'")[0]
        assert row[0] == "invalid_training_data", row
        assert "<!endoftext!>" in row[1] and "1 of 59 example(s) have problems" in row[1], row
        # No provider call of any kind for this job: nothing uploaded, nothing created.
        assert sim.state()["files"] == [] and sim.state()["jobs"] == []
        assert [r for r in sim.state()["requests"] if r["endpoint"] in ("upload", "create", "upload_create")] == []
        assert os.listdir(os.path.join(c.data, "vibe_ft_files")) == []
        # Fix the data and the next job goes through.
        c.sql("DELETE FROM vibe_ft.examples WHERE messages::text LIKE '%endoftext%'")
        job2 = c.one(f"SELECT create_finetuning_job('{ds}')")
        assert wait_final(c, job2) == "succeeded", job_row(c, job2)
    finally:
        c.stop()
        sim.stop()
