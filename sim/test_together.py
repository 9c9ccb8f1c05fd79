"""Tests of ftsim's Together AI surface (/together/v1). Standard library only.

Run from the repository root:  python3 -m unittest sim/test_together.py
or from sim/:                  python3 -m unittest test_together
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "ftsim.py")
KEY = "sk-together-test"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BASE_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
LORA_SFT_NANO = 480  # $0.48 per 1M tokens
LORA_DPO_NANO = 1200


def conv(i):
    return {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": f"Question {i}?"},
                         {"role": "assistant", "content": f"Answer {i}."}]}


def pref(i):
    return {"input": {"messages": [{"role": "user", "content": f"Question {i}?"}]},
            "preferred_output": [{"role": "assistant", "content": f"Good answer {i}."}],
            "non_preferred_output": [{"role": "assistant", "content": f"Bad answer {i}."}]}


def jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def tokens_of(data):
    """The simulator's token estimate: characters / 4."""
    return max(1, len(data.decode("utf-8")) // 4)


class Sim:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, SIM, "--port", "0", "--job-seconds", "2"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class TogetherTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim()

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.admin("POST", "/_sim/reset")
        self.config(job_seconds=2, file_processing_seconds=0.05, endpoint_start_seconds=1.0,
                    endpoint_stop_seconds=0.3, cancel_seconds=0.3, user_limit=1000, endpoint_minute_seconds=60)

    # ---- HTTP helpers ----
    def raw(self, method, path, data=None, headers=None):
        req = urllib.request.Request(self.sim.base + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def call(self, method, path, body=None, key=KEY):
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self.raw(method, "/together/v1" + path, data, headers)
        return status, (json.loads(raw) if raw else None)

    def ok(self, method, path, body=None):
        status, obj = self.call(method, path, body)
        self.assertEqual(status, 200, obj)
        return obj

    def refused(self, method, path, body=None, status=400):
        got, obj = self.call(method, path, body)
        self.assertEqual(got, status, obj)
        self.assertEqual(set(obj), {"error"})
        self.assertEqual(set(obj["error"]), {"message", "type", "param", "code"})
        return obj["error"]

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self.raw(method, path, data, {"content-type": "application/json"})
        self.assertEqual(status, 200, raw)
        return json.loads(raw)

    def config(self, **kw):
        return self.admin("POST", "/_sim/config", kw)

    def upload(self, data, file_name="train.jsonl", fields=None, key=KEY):
        b = "ftsimtest" + uuid.uuid4().hex
        if fields is None:
            fields = {"file_name": file_name, "purpose": "fine-tune", "file_type": "jsonl"}
        body = b""
        for k, v in fields.items():
            body += f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        if data is not None:
            body += (f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{b}--\r\n".encode()
        headers = {"content-type": f"multipart/form-data; boundary={b}"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        status, raw = self.raw("POST", "/together/v1/files/upload", body, headers)
        return status, json.loads(raw)

    def uploaded(self, data, **kw):
        status, f = self.upload(data, **kw)
        self.assertEqual(status, 200, f)
        return f

    def processed(self, fid, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            f = self.ok("GET", f"/files/{fid}")
            if f["Processed"]:
                return f
            time.sleep(0.02)
        self.fail(f"file {fid} was not processed")

    def ready_file(self, rows):
        data = jsonl(rows)
        f = self.uploaded(data)
        self.assertEqual(self.processed(f["id"])["processing_status"], "COMPLETED")
        return f["id"], tokens_of(data)

    def wait_job(self, jid, statuses, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            j = self.ok("GET", f"/fine-tunes/{jid}")
            if j["status"] in statuses:
                return j
            time.sleep(0.03)
        self.fail(f"job {jid} never reached {statuses}")

    def wait_endpoint(self, eid, state, timeout=10):
        seen = []
        end = time.time() + timeout
        while time.time() < end:
            ep = self.ok("GET", f"/endpoints/{eid}")
            if not seen or seen[-1] != ep["state"]:
                seen.append(ep["state"])
            if ep["state"] == state:
                return ep, seen
            time.sleep(0.02)
        self.fail(f"endpoint {eid} never reached {state}: {seen}")

    def completed_job(self, suffix="done"):
        self.config(job_seconds=0.4)
        fid, _ = self.ready_file([conv(i) for i in range(5)])
        job = self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid, "suffix": suffix})
        return self.wait_job(job["id"], {"completed"})

    # ---- files ----
    def test_upload_processing_and_capitalised_keys(self):
        self.config(file_processing_seconds=30)
        data = jsonl([conv(i) for i in range(7)])
        f = self.uploaded(data, file_name="my data.jsonl")
        self.assertEqual(set(f), {"id", "object", "created_at", "filename", "bytes", "purpose", "Processed",
                                  "FileType", "LineCount", "processing_status"})
        self.assertRegex(f["id"], r"^file-[0-9a-f-]{36}$")
        self.assertEqual(f["object"], "file")
        self.assertIsInstance(f["created_at"], int)
        self.assertEqual((f["filename"], f["bytes"], f["purpose"]), ("my data.jsonl", len(data), "fine-tune"))
        self.assertEqual((f["Processed"], f["FileType"], f["LineCount"], f["processing_status"]),
                         (False, "jsonl", 0, "PENDING"))
        # still processing: a job cannot use it yet
        err = self.refused("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": f["id"]})
        self.assertIn("not processed yet", err["message"])
        self.assertEqual(err["param"], "training_file")
        # processing is lazy and time-based
        self.config(file_processing_seconds=0)
        g = self.ok("GET", f"/files/{f['id']}")
        self.assertEqual((g["Processed"], g["LineCount"], g["processing_status"]), (True, 7, "COMPLETED"))
        self.assertNotIn("validation_report", g)
        lst = self.ok("GET", "/files")
        self.assertEqual(set(lst), {"object", "data"})
        self.assertEqual(lst["object"], "list")
        self.assertEqual([x["id"] for x in lst["data"]], [f["id"]])
        st = self.admin("GET", "/_sim/state")
        self.assertEqual(st["files"], [])  # OpenAI's list stays OpenAI's
        (tf,) = st["together"]["files"]
        self.assertEqual(tf["id"], f["id"])
        with open(tf["path"], "rb") as fh:
            self.assertEqual(fh.read(), data)
        self.assertEqual(self.ok("DELETE", f"/files/{f['id']}"), {"id": f["id"], "object": "file", "deleted": True})
        self.refused("GET", f"/files/{f['id']}", status=404)
        self.refused("DELETE", f"/files/{f['id']}", status=404)
        self.refused("GET", "/files/file-unknown", status=404)

    def test_upload_refusals_and_auth(self):
        data = jsonl([conv(0)])
        status, obj = self.upload(data, fields={"purpose": "fine-tune"})
        self.assertEqual((status, obj["error"]["param"]), (400, "file_name"))
        status, obj = self.upload(data, fields={"file_name": "x.jsonl"})
        self.assertEqual((status, obj["error"]["param"]), (400, "purpose"))
        status, obj = self.upload(data, fields={"file_name": "x.jsonl", "purpose": "batch-api"})
        self.assertEqual((status, obj["error"]["param"]), (400, "purpose"))
        status, obj = self.upload(None, fields={"file_name": "x.jsonl", "purpose": "fine-tune"})
        self.assertEqual((status, obj["error"]["param"]), (400, "file"))
        status, obj = self.upload(data, key=None)
        self.assertEqual(status, 401)
        self.assertEqual(obj["error"]["code"], "invalid_api_key")
        self.assertEqual(self.call("GET", "/files", key=None)[0], 401)
        self.assertEqual(self.ok("GET", "/files")["data"], [])

    def test_data_rules(self):
        good = conv(0)
        weird_json = b'{"messages": [}\n'
        cases = [
            # (file bytes, line named, text in the error)
            (b"", None, "File is empty"),
            (jsonl([good]) + weird_json, 2, "Unexpected format on line 2"),
            (jsonl([good]) + b"\n" + jsonl([good]), 2, "Unexpected format on line 2"),
            (jsonl([good, [1, 2]]), 2, "Invalid format on line 2"),
            (jsonl([good, good, dict(good, metadata={"a": "b"})]), 3, 'Found extra column "metadata"'),
            (jsonl([good, dict(good, text="t")]), 2, 'Found extra column "messages"'),
            (jsonl([{"question": "q", "answer": "a"}]), 1, "Could not detect a format"),
            (jsonl([good, {"prompt": "p", "completion": "c"}]), 2, "same dataset format"),
            (jsonl([{"messages": "hi"}]), 1, "must be a list"),
            (jsonl([{"messages": []}]), 1, "must not be empty"),
            (jsonl([{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}]), 1,
             "Missing required column `content`"),
            (jsonl([{"messages": [{"role": "developer", "content": "d"}, {"role": "assistant", "content": "a"}]}]), 1,
             "Invalid role `developer`"),
            (jsonl([good, good, good, good, good, good,
                    {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                  {"role": "assistant", "content": "c"}]}]), 7, "roles must alternate"),
            (jsonl([{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}]), 1,
             "At least one message with the assistant role"),
            (jsonl([{"messages": [{"role": "user", "content": "u"},
                                  {"role": "assistant", "content": "a", "weight": 2}]}]), 1,
             "Weight must be either 0 or 1"),
            (jsonl([{"messages": [{"role": "user", "content": "u", "weight": 0.5},
                                  {"role": "assistant", "content": "a"}]}]), 1, "Weight must be an integer"),
            (jsonl([{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}]), 1,
             "Invalid content type"),
            (jsonl([dict(good, weight="heavy")]), 1, "`weight` must be a number"),
            (jsonl([pref(0), dict(pref(1), input=[{"role": "user", "content": "u"}])]), 2,
             "`input` field must be a dictionary"),
            (jsonl([dict(pref(0), input={"messages": [{"role": "user", "content": "u"},
                                                      {"role": "assistant", "content": "a"}]})]), 1,
             "must not be from the assistant"),
            (jsonl([dict(pref(0), preferred_output=[{"role": "assistant", "content": "a"},
                                                    {"role": "assistant", "content": "b"}])]), 1,
             "exactly one message"),
            (jsonl([dict(pref(0), non_preferred_output=[{"role": "user", "content": "a"}])]), 1,
             "must have the 'assistant' role"),
            (jsonl([dict(pref(0), preferred_output={"role": "assistant", "content": "a"})]), 1, "must be a list"),
        ]
        for data, line, text in cases:
            with self.subTest(text=text, line=line):
                f = self.processed(self.uploaded(data)["id"])
                self.assertEqual(f["processing_status"], "INVALID_FORMAT", f)
                self.assertTrue(f["Processed"])
                rep = f["validation_report"]
                self.assertEqual((rep["valid"], rep["error_type"]), (False, "INVALID_FORMAT"))
                if line is not None:
                    self.assertTrue(rep["error"].startswith(f"Line {line}: "), rep["error"])
                self.assertIn(text, rep["error"])
                err = self.refused("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": f["id"]})
                self.assertIn(rep["error"], err["message"])
                self.assertEqual(err["param"], "training_file")

    def test_data_that_passes(self):
        rows = [
            # tools at the top level, tool messages, a 0/1 message weight and a numeric sample weight
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "weather?"},
                          {"role": "assistant", "content": "", "weight": 0},
                          {"role": "tool", "content": "{\"t\": 20}"},
                          {"role": "assistant", "content": "20 degrees", "weight": 1}],
             "tools": [{"type": "function", "function": {"name": "w", "parameters": {}}}], "weight": 0.5},
            conv(1),
        ]
        f = self.processed(self.uploaded(jsonl(rows))["id"])
        self.assertEqual((f["processing_status"], f["LineCount"]), ("COMPLETED", 2), f)
        g = self.processed(self.uploaded(jsonl([pref(i) for i in range(3)]))["id"])
        self.assertEqual((g["processing_status"], g["LineCount"]), ("COMPLETED", 3))
        h = self.processed(self.uploaded(jsonl([{"prompt": "p", "completion": "c"}]))["id"])
        self.assertEqual(h["processing_status"], "COMPLETED")

    # ---- jobs ----
    def test_create_refusals(self):
        fid, _ = self.ready_file([conv(i) for i in range(3)])
        pid, _ = self.ready_file([pref(i) for i in range(3)])
        base = {"model": BASE_MODEL, "training_file": fid}
        for key, value in [("metadata", {"vibe_ft_job_id": "1"}), ("method", {"type": "supervised"}),
                           ("hyperparameters", {"n_epochs": 1}), ("integrations", []), ("seed", 1),
                           ("idempotency_key", "x"), ("bogus", True)]:
            with self.subTest(key=key):
                err = self.refused("POST", "/fine-tunes", dict(base, **{key: value}))
                self.assertEqual(err["param"], key)
                self.assertIn(key, err["message"])
        err = self.refused("POST", "/fine-tunes", dict(base, model="gpt-4o-mini-2024-07-18"))
        self.assertEqual(err["param"], "model")
        self.assertIn("not available for fine-tuning on Together", err["message"])
        self.assertEqual(self.refused("POST", "/fine-tunes", {"model": BASE_MODEL})["param"], "training_file")
        self.assertEqual(self.refused("POST", "/fine-tunes", {"training_file": fid})["param"], "model")
        self.assertEqual(self.refused("POST", "/fine-tunes", dict(base, training_file="file-nope"))["param"],
                         "training_file")
        self.assertEqual(self.refused("POST", "/fine-tunes", dict(base, validation_file="file-nope"))["param"],
                         "validation_file")
        bad = [("n_epochs", 0), ("n_epochs", 21), ("n_epochs", 1.5), ("learning_rate", 0), ("learning_rate", 0.5),
               ("batch_size", 0), ("batch_size", "auto"), ("batch_size", 65), ("suffix", "x" * 41), ("suffix", ""),
               ("training_type", {"type": "QLora"}), ("training_type", {"type": "Lora", "lora_r": 0}),
               ("training_type", {"type": "Lora", "lora_dropout": 1.0}), ("training_method", {"method": "ppo"}),
               ("training_method", {"method": "sft", "dpo_beta": 0.1}), ("n_evals", 2), ("warmup_ratio", 2),
               ("lr_scheduler", {"lr_scheduler_type": "step"})]
        for key, value in bad:
            with self.subTest(key=key, value=value):
                self.refused("POST", "/fine-tunes", dict(base, **{key: value}))
        err = self.refused("POST", "/fine-tunes", dict(base, training_method={"method": "dpo"}))
        self.assertIn("preference format", err["message"])
        err = self.refused("POST", "/fine-tunes", dict(base, training_file=pid))
        self.assertIn("preference format", err["message"])
        # what the v1 SDK actually sends is accepted (validation_file "" means none)
        sdk = dict(base, validation_file="", n_epochs=1, n_evals=0, n_checkpoints=1, batch_size="max",
                   learning_rate=1e-5, lr_scheduler={"lr_scheduler_type": "cosine",
                                                     "lr_scheduler_args": {"min_lr_ratio": 0.0, "num_cycles": 0.5}},
                   warmup_ratio=0.0, max_grad_norm=1.0, weight_decay=0.0,
                   training_type={"type": "Lora", "lora_r": 64, "lora_alpha": 128, "lora_dropout": 0.0,
                                  "lora_trainable_modules": "all-linear"},
                   training_method={"method": "sft", "train_on_inputs": "auto"})
        j = self.ok("POST", "/fine-tunes", sdk)
        self.assertEqual((j["validation_file"], j["batch_size"]), (None, 64))
        d = self.ok("POST", "/fine-tunes", dict(base, training_file=pid, training_method={"method": "dpo",
                                                                                           "dpo_beta": 0.1}))
        self.assertEqual(d["training_method"]["method"], "dpo")
        for path in ("/fine-tunes/ft-nope", "/fine-tunes/ft-nope/events", "/fine-tunes/ft-nope/checkpoints"):
            self.refused("GET", path, status=404)
        self.refused("POST", "/fine-tunes/ft-nope/cancel", status=404)

    def test_job_lifecycle(self):
        self.config(job_seconds=5)
        rows = [conv(i) for i in range(12)]
        fid, tokens = self.ready_file(rows)
        job = self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid, "suffix": "support-v1",
                                              "n_epochs": 3, "n_checkpoints": 3, "batch_size": 4,
                                              "learning_rate": 2e-5})
        self.assertRegex(job["id"], r"^ft-[0-9a-f-]{36}$")
        self.assertEqual(job["status"], "pending")
        for k in ("created_at", "updated_at"):
            self.assertRegex(job[k], ISO)
        for k in ("started_at", "token_count", "param_count", "total_price", "model_output_name"):
            self.assertIsNone(job[k], k)
        self.assertEqual((job["user_id"], job["queue_depth"], job["epochs_completed"]), ("ftsim-user", 0, 0))
        self.assertEqual((job["model"], job["training_file"], job["validation_file"], job["suffix"]),
                         (BASE_MODEL, fid, None, "support-v1"))
        self.assertEqual((job["n_epochs"], job["batch_size"], job["learning_rate"]), (3, 4, 2e-5))
        self.assertEqual(job["training_type"]["type"], "Lora")
        self.assertEqual(job["training_method"], {"method": "sft", "train_on_inputs": "auto"})
        self.assertIsInstance(job["events"], list)
        seen = []
        end = time.time() + 30
        while time.time() < end:
            j = self.ok("GET", f"/fine-tunes/{job['id']}")
            if not seen or seen[-1] != j["status"]:
                seen.append(j["status"])
            if j["status"] == "completed":
                break
            time.sleep(0.03)
        self.assertEqual(seen, ["pending", "queued", "running", "compressing", "uploading", "completed"])
        self.assertEqual(j["model_output_name"], f"ftsim-user/Meta-Llama-3.1-8B-Instruct-Reference:support-v1:{j['id']}")
        self.assertEqual(j["token_count"], tokens * 3)
        self.assertIs(type(j["total_price"]), int)
        self.assertEqual(j["total_price"], tokens * 3 * LORA_SFT_NANO)
        self.assertEqual(j["epochs_completed"], 3)
        for k in ("created_at", "updated_at", "started_at"):
            self.assertRegex(j[k], ISO)
        self.assertLess(j["created_at"], j["started_at"])
        self.assertLessEqual(j["started_at"], j["updated_at"])
        # events: all of them, oldest first, no paging
        ev = self.ok("GET", f"/fine-tunes/{j['id']}/events?limit=1")
        self.assertEqual(set(ev), {"object", "data"})
        self.assertEqual(ev["object"], "list")
        evs = ev["data"]
        types = [e["type"] for e in evs]
        self.assertEqual(types[0], "JOB_PENDING")
        self.assertEqual(types[-1], "JOB_COMPLETE")
        for t in ("JOB_START", "TRAINING_START", "TRAINING_COMPLETE", "MODEL_UPLOAD_COMPLETE"):
            self.assertIn(t, types)
        self.assertEqual(types.count("EPOCH_COMPLETE"), 3)
        self.assertEqual(types.count("CHECKPOINT_SAVE"), 2)
        self.assertEqual([e["created_at"] for e in evs], sorted(e["created_at"] for e in evs))
        for e in evs:
            self.assertEqual(e["object"], "fine-tune-event")
            self.assertRegex(e["created_at"], ISO)
            self.assertIn(e["level"], ("info", "warning", "error", None))
            self.assertNotIn("id", e)
            for k in ("message", "step", "total_steps"):
                self.assertIn(k, e)
        epochs = [e for e in evs if e["type"] == "EPOCH_COMPLETE"]
        self.assertEqual([e["step"] for e in epochs], [3, 6, 9])  # 12 examples / batch 4 = 3 steps an epoch
        self.assertEqual({e["total_steps"] for e in epochs}, {9})
        self.assertEqual(j["events"], evs)
        # checkpoints
        cps = self.ok("GET", f"/fine-tunes/{j['id']}/checkpoints")
        self.assertEqual(set(cps), {"data"})
        self.assertEqual([(c["step"], c["checkpoint_type"]) for c in cps["data"]],
                         [(3, "Intermediate"), (6, "Intermediate"), (9, "Final Merged"), (9, "Final Adapter")])
        for c in cps["data"]:
            self.assertRegex(c["created_at"], ISO)
            self.assertTrue(c["path"])
        # list: no paging, truncated entries
        other = self.ok("POST", "/fine-tunes", {"model": "Qwen/Qwen3-8B", "training_file": fid})
        lst = self.ok("GET", "/fine-tunes?limit=1&after=" + j["id"])
        self.assertEqual(set(lst), {"data"})
        self.assertEqual([x["id"] for x in lst["data"]], [j["id"], other["id"]])
        entry = lst["data"][0]
        for k in ("id", "status", "model", "model_output_name", "suffix", "training_file", "validation_file",
                  "created_at", "updated_at", "total_price", "token_count"):
            self.assertIn(k, entry)
        self.assertNotIn("events", entry)
        self.assertEqual(entry["model_output_name"], j["model_output_name"])
        st = self.admin("GET", "/_sim/state")
        self.assertEqual(st["jobs"], [])
        self.assertEqual([x["id"] for x in st["together"]["jobs"]], [j["id"], other["id"]])

    def test_cancel(self):
        fid, _ = self.ready_file([conv(i) for i in range(4)])
        job = self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid})
        c = self.ok("POST", f"/fine-tunes/{job['id']}/cancel")
        self.assertEqual(c["status"], "cancel_requested")
        self.assertEqual(self.ok("POST", f"/fine-tunes/{job['id']}/cancel")["status"], "cancel_requested")
        j = self.wait_job(job["id"], {"cancelled"}, timeout=5)
        self.assertIsNone(j["model_output_name"])
        self.assertIs(type(j["total_price"]), int)
        types = [e["type"] for e in self.ok("GET", f"/fine-tunes/{job['id']}/events")["data"]]
        self.assertIn("CANCEL_REQUESTED", types)
        self.assertNotIn("JOB_COMPLETE", types)
        time.sleep(2.2)  # past the job's whole run: it stays cancelled
        self.assertEqual(self.ok("GET", f"/fine-tunes/{job['id']}")["status"], "cancelled")
        err = self.refused("POST", f"/fine-tunes/{job['id']}/cancel")
        self.assertIn("cancelled", err["message"])
        done = self.completed_job()
        err = self.refused("POST", f"/fine-tunes/{done['id']}/cancel")
        self.assertIn("completed", err["message"])

    def test_user_error_when_training_file_is_gone(self):
        fid, _ = self.ready_file([conv(i) for i in range(4)])
        job = self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid})
        self.ok("DELETE", f"/files/{fid}")
        j = self.wait_job(job["id"], {"user_error", "completed"})
        self.assertEqual(j["status"], "user_error")
        last = j["events"][-1]
        self.assertEqual((last["type"], last["level"]), ("JOB_USER_ERROR", "error"))
        self.assertIn(fid, last["message"])
        self.assertIsNone(j["model_output_name"])

    def test_estimate_price(self):
        fid, tokens = self.ready_file([conv(i) for i in range(20)])
        pid, ptokens = self.ready_file([pref(i) for i in range(20)])
        body = {"training_file": fid, "model": BASE_MODEL, "n_epochs": 2, "n_evals": 0,
                "training_type": {"type": "Lora", "lora_r": 16, "lora_alpha": 16, "lora_dropout": 0.0,
                                  "lora_trainable_modules": "all-linear"},
                "training_method": {"method": "sft"}}
        est = self.ok("POST", "/fine-tunes/estimate-price", body)
        self.assertEqual(set(est), {"estimated_total_price", "user_limit", "estimated_train_token_count",
                                    "estimated_eval_token_count", "allowed_to_proceed"})
        self.assertEqual(est["estimated_train_token_count"], tokens * 2)
        self.assertEqual(est["estimated_eval_token_count"], 0)
        self.assertAlmostEqual(est["estimated_total_price"], tokens * 2 * LORA_SFT_NANO / 1e9, places=6)  # dollars
        self.assertEqual((est["user_limit"], est["allowed_to_proceed"]), (1000.0, True))
        dpo = self.ok("POST", "/fine-tunes/estimate-price", dict(body, training_file=pid, n_epochs=1,
                                                                  training_method={"method": "dpo"}))
        self.assertAlmostEqual(dpo["estimated_total_price"], ptokens * LORA_DPO_NANO / 1e9, places=6)
        self.config(user_limit=0.000001)
        est = self.ok("POST", "/fine-tunes/estimate-price", body)
        self.assertEqual((est["user_limit"], est["allowed_to_proceed"]), (0.000001, False))
        self.assertEqual(self.refused("POST", "/fine-tunes/estimate-price", dict(body, metadata={}))["param"],
                         "metadata")
        self.assertEqual(self.refused("POST", "/fine-tunes/estimate-price", dict(body, model="gpt-4o-mini"))["param"],
                         "model")
        self.config(file_processing_seconds=30)
        late = self.uploaded(jsonl([conv(0)]))
        err = self.refused("POST", "/fine-tunes/estimate-price", dict(body, training_file=late["id"]))
        self.assertIn("not processed yet", err["message"])

    # ---- endpoints and the chat check ----
    def test_endpoints_lifecycle_and_chat(self):
        done = self.completed_job(suffix="bot")
        name_out = done["model_output_name"]
        self.config(job_seconds=30, endpoint_start_seconds=0.6, endpoint_stop_seconds=0.3)
        fid, _ = self.ready_file([conv(i) for i in range(3)])
        running = self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid, "suffix": "later"})
        deploy = {"model": name_out, "hardware": "1x_nvidia_h100_80gb_sxm",
                  "autoscaling": {"min_replicas": 1, "max_replicas": 1}, "display_name": "support bot",
                  "inactive_timeout": 60}
        self.assertEqual(self.refused("POST", "/endpoints", dict(deploy, hardware="1x_nvidia_a100_fake"))["param"],
                         "hardware")
        self.assertEqual(self.refused("POST", "/endpoints", dict(deploy, model="Qwen/Qwen3-8B"), 404)["param"],
                         "model")
        pending_name = f"ftsim-user/Meta-Llama-3.1-8B-Instruct-Reference:later:{running['id']}"
        self.assertEqual(self.refused("POST", "/endpoints", dict(deploy, model=pending_name))["code"],
                         "model_not_ready")
        self.refused("POST", "/endpoints", {k: v for k, v in deploy.items() if k != "autoscaling"})
        self.refused("POST", "/endpoints", dict(deploy, autoscaling={"min_replicas": 2, "max_replicas": 1}))
        self.refused("POST", "/endpoints", dict(deploy, replicas=1))
        ep = self.ok("POST", "/endpoints", deploy)
        for k in ("object", "id", "name", "display_name", "model", "hardware", "type", "owner", "state",
                  "autoscaling", "created_at"):
            self.assertIn(k, ep)
        self.assertEqual((ep["object"], ep["type"], ep["owner"], ep["state"]),
                         ("endpoint", "dedicated", "ftsim-user", "PENDING"))
        self.assertRegex(ep["id"], r"^endpoint-[0-9a-f-]{36}$")
        self.assertRegex(ep["name"], r"^ftsim-user/Meta-Llama-3\.1-8B-Instruct-Reference-bot-[0-9a-f]{8}$")
        self.assertNotEqual(ep["name"], name_out)
        self.assertEqual((ep["model"], ep["hardware"], ep["display_name"], ep["inactive_timeout"]),
                         (name_out, "1x_nvidia_h100_80gb_sxm", "support bot", 60))
        self.assertEqual(ep["autoscaling"], {"min_replicas": 1, "max_replicas": 1})
        self.assertRegex(ep["created_at"], ISO)
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        err = self.refused("POST", "/chat/completions", dict(chat, model=ep["name"]))
        self.assertEqual(err["code"], "dedicated_endpoint_not_running")
        _, seen = self.wait_endpoint(ep["id"], "STARTED")
        self.assertEqual(seen[-2:], ["STARTING", "STARTED"])
        answer = self.ok("POST", "/chat/completions", dict(chat, model=ep["name"]))
        self.assertEqual(answer["model"], ep["name"])
        self.assertEqual(answer["choices"][0]["message"]["role"], "assistant")
        # the fine-tuned model's own name is not what an app must call
        err = self.refused("POST", "/chat/completions", dict(chat, model=name_out), 404)
        self.assertEqual(err["code"], "model_not_available")
        self.assertEqual(self.refused("POST", "/chat/completions", dict(chat, model="nobody/nothing"), 404)["code"],
                         "model_not_available")
        self.assertEqual([e["id"] for e in self.ok("GET", "/endpoints")["data"]], [ep["id"]])
        # stop, then start again
        self.assertEqual(self.ok("PATCH", f"/endpoints/{ep['id']}", {"state": "STOPPED"})["state"], "STOPPING")
        self.wait_endpoint(ep["id"], "STOPPED")
        err = self.refused("POST", "/chat/completions", dict(chat, model=ep["name"]))
        self.assertEqual(err["code"], "dedicated_endpoint_not_running")
        self.refused("PATCH", f"/endpoints/{ep['id']}", {"state": "PAUSED"})
        self.refused("PATCH", f"/endpoints/{ep['id']}", {"min_replicas": 2})
        again = self.ok("PATCH", f"/endpoints/{ep['id']}", {"state": "STARTED",
                                                            "autoscaling": {"min_replicas": 1, "max_replicas": 3}})
        self.assertEqual((again["state"], again["autoscaling"]["max_replicas"]), ("STARTING", 3))
        self.wait_endpoint(ep["id"], "STARTED")
        self.ok("POST", "/chat/completions", dict(chat, model=ep["name"]))
        st = self.admin("GET", "/_sim/state")
        self.assertEqual([e["id"] for e in st["together"]["endpoints"]], [ep["id"]])
        # delete
        status, body = self.call("DELETE", f"/endpoints/{ep['id']}")
        self.assertEqual((status, body), (204, None))
        self.refused("GET", f"/endpoints/{ep['id']}", status=404)
        self.refused("PATCH", f"/endpoints/{ep['id']}", {"state": "STOPPED"}, status=404)
        self.refused("DELETE", f"/endpoints/{ep['id']}", status=404)
        self.assertEqual(self.refused("POST", "/chat/completions", dict(chat, model=ep["name"]), 404)["code"],
                         "model_not_available")

    def test_inactive_timeout_stops_an_idle_endpoint(self):
        done = self.completed_job()
        self.config(endpoint_start_seconds=0.1, endpoint_stop_seconds=0.1, endpoint_minute_seconds=0.5)
        ep = self.ok("POST", "/endpoints", {"model": done["model_output_name"], "hardware": "1x_nvidia_h200_141gb_sxm",
                                            "autoscaling": {"min_replicas": 1, "max_replicas": 1},
                                            "inactive_timeout": 1})
        self.wait_endpoint(ep["id"], "STARTED")
        _, seen = self.wait_endpoint(ep["id"], "STOPPED", timeout=5)
        self.assertIn("STARTED", seen)
        stopped = self.ok("PATCH", f"/endpoints/{ep['id']}", {"state": "STARTED"})
        self.assertEqual(stopped["state"], "STARTING")

    def test_hardware_and_limits(self):
        hw = self.ok("GET", "/hardware")
        ids = {h["id"]: h for h in hw["data"]}
        self.assertAlmostEqual(ids["1x_nvidia_h100_80gb_sxm"]["pricing"]["cents_per_minute"], 399 / 60, places=3)
        self.assertAlmostEqual(ids["1x_nvidia_b200_180gb_sxm"]["pricing"]["cents_per_minute"], 995 / 60, places=3)
        lim = self.ok("GET", "/fine-tunes/models/limits?model=" + BASE_MODEL)
        self.assertEqual(lim["max_num_epochs"], 20)
        self.assertIn("max_rank", lim["lora_training"])
        self.refused("GET", "/fine-tunes/models/limits?model=gpt-4o-mini", status=404)

    # ---- faults and the request log ----
    def test_fault_hits_together_create(self):
        fid, _ = self.ready_file([conv(i) for i in range(3)])
        self.admin("POST", "/_sim/faults", {"faults": [{"endpoint": "create", "kind": "500"}]})
        err = self.refused("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid}, status=500)
        self.assertEqual(err["type"], "server_error")
        self.assertEqual(self.ok("GET", "/fine-tunes")["data"], [])
        self.ok("POST", "/fine-tunes", {"model": BASE_MODEL, "training_file": fid})
        for name in ("estimate", "deploy", "endpoint", "endpoint_update", "endpoint_delete"):
            self.admin("POST", "/_sim/faults", {"faults": [{"endpoint": name, "kind": "429"}]})
        status, raw = self.raw("POST", "/_sim/faults", json.dumps({"faults": [{"endpoint": "bogus", "kind": "500"}]})
                               .encode(), {"content-type": "application/json"})
        self.assertEqual(status, 400)
        self.admin("POST", "/_sim/faults", {"faults": [{"endpoint": "estimate", "kind": "429", "retry_after": 2}]})
        status, _ = self.call("POST", "/fine-tunes/estimate-price", {"training_file": fid, "model": BASE_MODEL})
        self.assertEqual(status, 429)
        self.admin("POST", "/_sim/faults", {"faults": [{"endpoint": "deploy", "kind": "malformed"}]})
        done = self.completed_job()
        req = urllib.request.Request(self.sim.base + "/together/v1/endpoints", method="POST",
                                     data=json.dumps({"model": done["model_output_name"],
                                                      "hardware": "1x_nvidia_h100_80gb_sxm",
                                                      "autoscaling": {"min_replicas": 1, "max_replicas": 1}}).encode(),
                                     headers={"authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            with self.assertRaises(ValueError):
                json.loads(r.read())
        reqs = self.admin("GET", "/_sim/state")["requests"]
        creates = [r for r in reqs if r["endpoint"] == "create"]
        self.assertTrue(creates)
        self.assertTrue(all(r["path"] == "/together/v1/fine-tunes" for r in creates))
        self.assertTrue(all(r["path"].startswith("/together/v1/") for r in reqs))

    def test_reset_clears_together(self):
        self.completed_job()
        self.admin("POST", "/_sim/reset")
        tg = self.admin("GET", "/_sim/state")["together"]
        self.assertEqual((tg["files"], tg["jobs"], tg["endpoints"]), ([], [], []))
        self.assertEqual(self.ok("GET", "/fine-tunes")["data"], [])

    def test_openai_paths_unchanged(self):
        status, raw = self.raw("GET", "/v1/fine_tuning/jobs", None, {"authorization": f"Bearer {KEY}"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(raw), {"object": "list", "data": [], "has_more": False})
        status, raw = self.raw("GET", "/v1/fine-tunes", None, {"authorization": f"Bearer {KEY}"})
        self.assertEqual(status, 404)
        status, raw = self.raw("GET", "/together/v1/fine_tuning/jobs", None, {"authorization": f"Bearer {KEY}"})
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
