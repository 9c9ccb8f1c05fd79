#!/usr/bin/env python3
"""ftsim: a fine-tuning provider simulator for vibe_ft's tests and demo.

NO TRAINING HAPPENS HERE. ftsim speaks enough of the OpenAI fine-tuning API
(base /v1, header "Authorization: Bearer KEY"), of Azure OpenAI's v1 surface
(base /openai/v1, header "api-key: KEY") and of Together AI's fine-tuning API
(base /together/v1, header "Authorization: Bearer KEY"; see sim/together.py)
for vibe_ft to run a whole job against it on loopback. OpenAI and Azure: files
(multipart, streamed to disk), the Uploads API, jobs (create, retrieve, list
with metadata filter, cancel, events, checkpoints). Together: files (upload,
processed a moment later and checked with Together's stricter data rules),
fine-tunes (create, list, retrieve, cancel, events, checkpoints,
estimate-price), dedicated endpoints (create, get, start/stop, delete) and a
chat check that only answers for the name of a started endpoint.
It validates what it receives the way the real service does (multipart shape,
required fields, JSONL format, at least 10 examples, suffix length, metadata
limits) and answers errors in the real shape. Jobs move through
validating_files -> queued -> running -> succeeded over --job-seconds and
"finish" with a made-up model id. Together jobs move through pending -> queued
-> running -> compressing -> uploading -> completed over the same time.

Faults are scripted per endpoint, at start (--fault create:500:2) or at run
time (POST /_sim/faults): redirect (307 to "location"), 429 (with Retry-After), 500, 503, hang (past the
client's timeout), reset (connection reset), malformed (2xx with a broken body),
401, drop (do the work, then drop the response), slow (do the work, then wait
before answering: a window to kill the client in), late (wait, then do the work
and answer: a request that outlives the client's timeout), daily (429
daily_rate_limit_exceeded), quota (429 insufficient_quota). The Together routes
use the same endpoint names where the meaning matches (upload, list_files,
retrieve_file, delete_file, create, list_jobs, retrieve, cancel, events,
checkpoints) and their own for the rest (estimate, limits, deploy,
list_endpoints, endpoint, endpoint_update, endpoint_delete, hardware, chat).
Together's knobs (file_processing_seconds, endpoint_start_seconds,
endpoint_stop_seconds, cancel_seconds, user_limit, endpoint_minute_seconds)
are set with POST /_sim/config; /_sim/state shows Together under "together".

Standard library only. Run: python3 sim/ftsim.py --port 8089
"""

import argparse
import importlib.util
import json
import os
import re
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote

# Together AI's API lives in together.py beside this file. Loaded by path, so that
# neither Together's own SDK (also named "together") nor a second copy of this
# module (ftsim runs as __main__) can be picked up instead.
_spec = importlib.util.spec_from_file_location(
    "ftsim_together", os.path.join(os.path.dirname(os.path.abspath(__file__)), "together.py"))
together = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(together)
together.bind(sys.modules[__name__])

BANNER = "ftsim: simulated fine-tuning provider - no training happens"
FAULT_KINDS = {"429", "500", "503", "hang", "reset", "malformed", "401", "drop", "daily", "quota", "slow", "late",
               "redirect"}
ENDPOINTS = {
    "upload", "list_files", "retrieve_file", "delete_file", "upload_create", "upload_part", "upload_complete",
    "create", "list_jobs", "retrieve", "cancel", "events", "checkpoints", "any",
} | together.FAULT_ENDPOINTS
MIN_EXAMPLES = 10
SINGLE_UPLOAD_MAX = 512 * 1024 * 1024
PART_MAX = 64 * 1024 * 1024
VALID_ROLES = {"system", "user", "assistant", "tool", "developer"}


class ApiError(Exception):
    def __init__(self, status, message, code=None, param=None, etype="invalid_request_error", headers=None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.etype = status, message, code, param, etype
        self.headers = headers or {}

    def body(self):
        return {"error": {"message": self.message, "type": self.etype, "param": self.param, "code": self.code}}


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="ftsim-")
        self.files = {}
        self.uploads = {}
        self.jobs = {}
        self.faults = []  # dicts: endpoint, kind, count, retry_after
        self.requests = []
        self.seq = 0
        self.together = together.TogetherState()

    def next_id(self, prefix):
        with self.lock:
            self.seq += 1
            return f"{prefix}-{uuid.uuid4().hex[:20]}"

    def take_fault(self, endpoint):
        with self.lock:
            for f in self.faults:
                if f["count"] > 0 and f["endpoint"] in (endpoint, "any"):
                    f["count"] -= 1
                    return dict(f)
        return None

    # ---- jobs: status is a function of time, computed when looked at ----
    def advance(self, job):
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        elapsed = time.time() - job["_t0"]
        total = job["_seconds"]
        phases = [("validating_files", 0.2), ("queued", 0.1), ("running", 0.7)]
        t = 0.0
        for name, share in phases:
            start = t
            t += share * total
            if elapsed < t:
                self.enter(job, name, job["_t0"] + start)
                if name == "running":
                    self.progress(job, (elapsed - start) / (share * total))
                return
            self.enter(job, name, job["_t0"] + start)
            if name == "validating_files":
                n = self.files[job["training_file"]]["examples"]
                if n < MIN_EXAMPLES:
                    self.finish(job, "failed", job["_t0"] + t, error={
                        "code": "invalid_n_examples",
                        "message": f"Training file has {n} example(s), but must have at least {MIN_EXAMPLES} examples",
                        "param": "training_file"})
                    return
            if name == "running":
                self.progress(job, 1.0)
        self.finish(job, "succeeded", job["_t0"] + total)

    def enter(self, job, status, at):
        if job["_entered"].get(status):
            return
        job["_entered"][status] = True
        job["status"] = status
        msgs = {"validating_files": "Validating training file: " + job["training_file"],
                "queued": "Job enqueued. Waiting for jobs ahead to complete.",
                "running": "Fine-tuning job started (simulated: no training happens)"}
        self.event(job, msgs[status], at)

    def progress(self, job, frac):
        steps = job["_steps"]
        done = int(steps * min(frac, 1.0))
        while job["_step"] < done:
            job["_step"] += 1
            s = job["_step"]
            loss = round(2.0 / (1 + s / 3), 4)
            self.event(job, f"Step {s}/{steps}: training loss={loss}", None, kind="metrics",
                       data={"step": s, "train_loss": loss, "train_mean_token_accuracy": round(0.5 + s / (4 * steps), 4),
                             "total_steps": steps})
            if s % max(1, steps // 3) == 0 or s == steps:
                job["_checkpoints"].append({
                    "object": "fine_tuning.job.checkpoint", "id": self.next_id("ftckpt"), "created_at": int(time.time()),
                    "fine_tuning_job_id": job["id"], "step_number": s,
                    "fine_tuned_model_checkpoint": f"{self.model_name(job)}:ckpt-step-{s}",
                    "metrics": {"step": s, "train_loss": loss, "valid_loss": round(loss * 1.1, 4),
                                "full_valid_loss": round(loss * 1.12, 4),
                                "train_mean_token_accuracy": round(0.5 + s / (4 * steps), 4),
                                "valid_mean_token_accuracy": round(0.48 + s / (4 * steps), 4)}})

    def model_name(self, job):
        if job["_azure"]:
            return f"{job['model']}.ft-{job['id'][-12:]}"
        return f"ft:{job['model']}:vibe-ft-sim:{job.get('suffix') or 'model'}:{job['id'][-8:]}"

    def finish(self, job, status, at, error=None):
        job["status"] = status
        job["finished_at"] = int(at)
        job["estimated_finish"] = None
        if error:
            job["error"] = error
            self.event(job, error["message"], at, level="error")
        if status == "succeeded":
            job["fine_tuned_model"] = self.model_name(job)
            job["trained_tokens"] = self.files[job["training_file"]]["tokens"] * job["_epochs"]
            job["result_files"] = [self.next_id("file")]
            self.event(job, "New fine-tuned model created (simulated: no training happened)", at)
            self.event(job, "The job has successfully completed", at)
        if status == "cancelled":
            self.event(job, "Job cancelled", at)

    def event(self, job, message, at, level="info", kind="message", data=None):
        job["_events"].append({"object": "fine_tuning.job.event", "id": self.next_id("ftevent"),
                               "created_at": int(at or time.time()), "level": level, "message": message,
                               "type": kind, "data": data or {}})

    def public_job(self, job):
        self.advance(job)
        return {k: v for k, v in job.items() if not k.startswith("_")}


def read_exact(rfile, n):
    chunks, left = [], n
    while left > 0:
        c = rfile.read(min(left, 1 << 20))
        if not c:
            raise ApiError(400, "Request body ended early")
        chunks.append(c)
        left -= len(c)
    return b"".join(chunks)


class BodyReader:
    """Reads exactly content-length bytes from the socket, in chunks."""

    def __init__(self, rfile, length):
        self.rfile, self.left = rfile, length

    def read(self, n):
        if self.left <= 0:
            return b""
        c = self.rfile.read(min(n, self.left))
        if not c:
            raise ApiError(400, "Request body ended early")
        self.left -= len(c)
        return c

    def drain(self):
        while self.read(1 << 20):
            pass


def parse_multipart(reader, boundary, spool_dir):
    """Stream a multipart body: text parts in memory, file parts to disk."""
    delim = b"\r\n--" + boundary
    buf = b"\r\n"  # so the first boundary looks like every other one
    fields, files = {}, {}

    def fill():
        nonlocal buf
        c = reader.read(1 << 20)
        if not c:
            return False
        buf += c
        return True

    # skip preamble up to the first delimiter
    while delim not in buf:
        if not fill():
            raise ApiError(400, "Malformed multipart body: no boundary")
    buf = buf[buf.index(delim) + len(delim):]
    while True:
        while len(buf) < 2 and fill():
            pass
        if buf.startswith(b"--"):
            break  # closing delimiter
        while b"\r\n\r\n" not in buf:
            if not fill() or len(buf) > 65536:
                raise ApiError(400, "Malformed multipart body: part headers")
        head, buf = buf.split(b"\r\n\r\n", 1)
        headers = head.decode("utf-8", "replace")
        m = re.search(r'name="([^"]*)"', headers)
        if not m:
            raise ApiError(400, "Malformed multipart body: part without a name")
        name = m.group(1)
        fm = re.search(r'filename="([^"]*)"', headers)
        out = None
        if fm:
            path = os.path.join(spool_dir, uuid.uuid4().hex)
            out = open(path, "wb")
            size = 0
        else:
            value = b""
        while True:
            i = buf.find(delim)
            if i >= 0:
                data, buf = buf[:i], buf[i + len(delim):]
            else:
                keep = len(delim) - 1
                data, buf = (buf[:-keep], buf[-keep:]) if len(buf) > keep else (b"", buf)
            if out:
                out.write(data)
                size += len(data)
            else:
                value += data
                if len(value) > 1 << 20:
                    raise ApiError(400, f"Field {name} is too large")
            if i >= 0:
                break
            if not fill():
                raise ApiError(400, "Malformed multipart body: missing closing boundary")
        if out:
            out.close()
            files[name] = {"filename": fm.group(1), "path": path, "bytes": size}
        else:
            fields[name] = value.decode("utf-8", "replace")
    reader.drain()
    return fields, files


def check_jsonl(path):
    """Validate a chat or preference JSONL file; return (examples, approx tokens)."""
    n, chars = 0, 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                raise ApiError(400, f"Invalid file format. Line {lineno} is not valid JSON.", "invalid_file_format", "file")
            if not isinstance(obj, dict):
                raise ApiError(400, f"Invalid file format. Line {lineno} is not a JSON object.", "invalid_file_format", "file")
            msgs = obj.get("messages")
            if msgs is None and isinstance(obj.get("input"), dict):
                msgs = obj["input"].get("messages")
                if not isinstance(obj.get("preferred_output"), list) or not isinstance(obj.get("non_preferred_output"), list):
                    raise ApiError(400, f"Invalid file format. Line {lineno}: preference examples need preferred_output and non_preferred_output.", "invalid_file_format", "file")
            if not isinstance(msgs, list) or not msgs:
                raise ApiError(400, f"Invalid file format. Line {lineno} has no messages.", "invalid_file_format", "file")
            for m in msgs:
                if not isinstance(m, dict) or m.get("role") not in VALID_ROLES:
                    raise ApiError(400, f"Invalid file format. Line {lineno} has a message with a missing or unknown role.", "invalid_file_format", "file")
                if "content" not in m and not m.get("tool_calls"):
                    raise ApiError(400, f"Invalid file format. Line {lineno} has a message without content.", "invalid_file_format", "file")
            if "<|endoftext|>" in raw.decode("utf-8", "replace"):
                raise ApiError(400, f"Invalid file format. Line {lineno} contains a special token.", "invalid_file_format", "file")
            n += 1
            chars += len(raw)
    return n, max(1, chars // 4)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ftsim/1"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("ftsim: " + (fmt % a) + "\n")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def do_PATCH(self):
        self.route("PATCH")

    # ---- plumbing ----
    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:16])
        self.send_header("x-simulated", "true; no training happens")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def reset_connection(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def body_reader(self):
        n = int(self.headers.get("content-length") or 0)
        return BodyReader(self.rfile, n)

    def json_body(self):
        r = self.body_reader()
        raw = read_exact(r, r.left) if r.left else b""
        if not raw:
            return {}
        try:
            v = json.loads(raw)
        except ValueError:
            raise ApiError(400, "We could not parse the JSON body of your request.")
        if not isinstance(v, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return v

    def route(self, method):
        st = self.server.state
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path.startswith("/_sim/"):
            return self.admin(method, path)
        azure = path.startswith("/openai/v1/")
        tg = path.startswith(together.PREFIX + "/")
        if azure:
            path = path[len("/openai/v1"):]
        elif tg:
            path = path[len(together.PREFIX):]
        elif path.startswith("/v1/"):
            path = path[len("/v1"):]
        else:
            self.body_reader().drain()
            return self.send_json(404, ApiError(404, f"Unknown path {url.path}").body())
        endpoint, handler, args = together.match(self, method, path) if tg else self.match(method, path)
        with st.lock:
            st.requests.append({"method": method, "path": url.path, "endpoint": endpoint, "t": time.time()})
        try:
            if endpoint is None:
                self.body_reader().drain()
                raise ApiError(404, f"Invalid URL ({method} {url.path})", etype="invalid_request_error")
            key = self.headers.get("api-key") if azure else (self.headers.get("authorization") or "").removeprefix("Bearer ")
            fault = st.take_fault(endpoint)
            if fault and fault["kind"] == "redirect":
                # "Moved": to fault["location"] (another host, or plain HTTP) plus the path asked for.
                self.body_reader().drain()
                self.send_response(int(fault.get("status", 307)))
                self.send_header("location", fault["location"].rstrip("/") + url.path)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if fault and fault["kind"] in ("429", "500", "503", "401", "daily", "quota", "hang", "reset"):
                self.body_reader().drain()
                return self.fault(fault)
            if not key or (st.args.key and key != st.args.key):
                self.body_reader().drain()
                raise ApiError(401, "Incorrect API key provided.", "invalid_api_key", etype="invalid_request_error")
            if fault and fault["kind"] == "late":
                # The request sits in the provider's queue past the client's timeout, then is done.
                time.sleep(fault.get("seconds") or st.args.hang_seconds)
            status, obj = handler(query=query, azure=azure, **args)
            if fault and fault["kind"] == "drop":
                return self.reset_connection()
            if fault and fault["kind"] == "slow":
                time.sleep(fault.get("seconds") or st.args.hang_seconds)
            if fault and fault["kind"] == "malformed":
                body = b'{"object": "fine_tuning.job", "id": '
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                return self.wfile.write(body)
            if obj is None:  # 204 No Content
                self.send_response(status)
                self.send_header("content-length", "0")
                self.send_header("x-simulated", "true; no training happens")
                self.end_headers()
                return
            self.send_json(status, obj)
        except ApiError as e:
            self.send_json(e.status, e.body(), e.headers)

    def fault(self, f):
        kind = f["kind"]
        if kind == "hang":
            time.sleep(f.get("seconds") or self.server.state.args.hang_seconds)
            return self.reset_connection()
        if kind == "reset":
            return self.reset_connection()
        if kind == "429":
            ra = f.get("retry_after", 1)
            raise ApiError(429, "Rate limit reached for requests. Please try again shortly.", "rate_limit_exceeded",
                           etype="requests", headers={"retry-after": ra, "retry-after-ms": int(float(ra) * 1000),
                                                      "x-ratelimit-reset-requests": f"{ra}s"})
        if kind == "daily":
            raise ApiError(429, "You have exceeded the daily limit of fine-tuning jobs for this model.",
                           "daily_rate_limit_exceeded", etype="requests",
                           headers={"x-ratelimit-reset-requests": f.get("reset", "6h0m0s")})
        if kind == "quota":
            raise ApiError(429, "You exceeded your current quota, please check your plan and billing details.",
                           "insufficient_quota", etype="insufficient_quota")
        if kind == "401":
            raise ApiError(401, "Incorrect API key provided.", "invalid_api_key")
        raise ApiError(int(kind), "The server had an error while processing your request. Sorry about that!",
                       None, etype="server_error")

    def match(self, method, path):
        routes = [
            ("POST", r"/files", "upload", self.h_upload),
            ("GET", r"/files", "list_files", self.h_list_files),
            ("GET", r"/files/(?P<fid>[^/]+)", "retrieve_file", self.h_get_file),
            ("DELETE", r"/files/(?P<fid>[^/]+)", "delete_file", self.h_delete_file),
            ("POST", r"/uploads", "upload_create", self.h_upload_create),
            ("POST", r"/uploads/(?P<uid>[^/]+)/parts", "upload_part", self.h_upload_part),
            ("POST", r"/uploads/(?P<uid>[^/]+)/complete", "upload_complete", self.h_upload_complete),
            ("POST", r"/fine_tuning/jobs", "create", self.h_create),
            ("GET", r"/fine_tuning/jobs", "list_jobs", self.h_list_jobs),
            ("GET", r"/fine_tuning/jobs/(?P<jid>[^/]+)", "retrieve", self.h_retrieve),
            ("POST", r"/fine_tuning/jobs/(?P<jid>[^/]+)/cancel", "cancel", self.h_cancel),
            ("GET", r"/fine_tuning/jobs/(?P<jid>[^/]+)/events", "events", self.h_events),
            ("GET", r"/fine_tuning/jobs/(?P<jid>[^/]+)/checkpoints", "checkpoints", self.h_checkpoints),
        ]
        for m, pattern, name, fn in routes:
            mm = re.fullmatch(pattern, path)
            if m == method and mm:
                return name, fn, {k: unquote(v) for k, v in mm.groupdict().items()}
        return None, None, {}

    # ---- files ----
    def multipart(self):
        ctype = self.headers.get("content-type", "")
        m = re.match(r"multipart/form-data;\s*boundary=\"?([^\";]+)\"?", ctype)
        if not m:
            self.body_reader().drain()
            raise ApiError(400, "Expected multipart/form-data with a boundary.")
        if self.headers.get("content-length") is None:
            raise ApiError(411, "Content-Length required.")
        return parse_multipart(self.body_reader(), m.group(1).encode(), self.server.state.dir)

    def store_file(self, filename, path, size, purpose="fine-tune"):
        st = self.server.state
        examples, tokens = check_jsonl(path)
        f = {"object": "file", "id": st.next_id("file"), "bytes": size, "created_at": int(time.time()),
             "filename": filename, "purpose": purpose, "status": "processed", "status_details": None,
             "_path": path, "_examples": examples, "_tokens": tokens}
        with st.lock:
            st.files[f["id"]] = f
            st.files[f["id"]]["examples"] = examples
            st.files[f["id"]]["tokens"] = tokens
        return f

    def public_file(self, f):
        return {k: v for k, v in f.items() if not k.startswith("_") and k not in ("examples", "tokens")}

    def h_upload(self, query, azure):
        fields, files = self.multipart()
        try:
            if fields.get("purpose") != "fine-tune":
                raise ApiError(400, "'purpose' must be 'fine-tune' here (got %r)." % fields.get("purpose"), param="purpose")
            if "file" not in files:
                raise ApiError(400, "Missing file part 'file'.", param="file")
            fp = files.pop("file")
            if not fp["filename"].endswith(".jsonl"):
                raise ApiError(400, "Invalid file format for fine-tuning: file names must end in .jsonl.", "invalid_file_format", "file")
            if fp["bytes"] > SINGLE_UPLOAD_MAX:
                raise ApiError(413, "File is larger than 512 MB: use the Uploads API.", param="file")
            f = self.store_file(fp["filename"], fp["path"], fp["bytes"])
            return 200, self.public_file(f)
        except ApiError:
            for p in files.values():
                os.unlink(p["path"])
            raise

    def h_list_files(self, query, azure):
        st = self.server.state
        purpose = (query.get("purpose") or [None])[0]
        limit = int((query.get("limit") or ["10000"])[0])
        after = (query.get("after") or [None])[0]
        with st.lock:
            fs = sorted(st.files.values(), key=lambda f: (f["created_at"], f["id"]), reverse=True)
        fs = [f for f in fs if purpose in (None, f["purpose"])]
        if after:
            ids = [f["id"] for f in fs]
            fs = fs[ids.index(after) + 1:] if after in ids else []
        return 200, {"object": "list", "data": [self.public_file(f) for f in fs[:limit]], "has_more": len(fs) > limit}

    def get_file(self, fid):
        f = self.server.state.files.get(fid)
        if not f:
            raise ApiError(404, f"No such File object: {fid}", param="id")
        return f

    def h_get_file(self, query, azure, fid):
        return 200, self.public_file(self.get_file(fid))

    def h_delete_file(self, query, azure, fid):
        st = self.server.state
        with st.lock:
            f = self.get_file(fid)
            del st.files[fid]
        try:
            os.unlink(f["_path"])
        except OSError:
            pass
        return 200, {"object": "file", "id": fid, "deleted": True}

    def h_upload_create(self, query, azure):
        body = self.json_body()
        for k in ("filename", "purpose", "bytes", "mime_type"):
            if k not in body:
                raise ApiError(400, f"Missing required parameter: '{k}'.", "missing_required_parameter", k)
        if not isinstance(body["bytes"], int) or body["bytes"] <= 0 or body["bytes"] > 8 << 30:
            raise ApiError(400, "'bytes' must be between 1 and 8 GB.", param="bytes")
        st = self.server.state
        u = {"object": "upload", "id": st.next_id("upload"), "filename": body["filename"], "purpose": body["purpose"],
             "bytes": body["bytes"], "status": "pending", "created_at": int(time.time()),
             "expires_at": int(time.time()) + 3600, "_parts": {}}
        with st.lock:
            st.uploads[u["id"]] = u
        return 200, {k: v for k, v in u.items() if not k.startswith("_")}

    def h_upload_part(self, query, azure, uid):
        u = self.server.state.uploads.get(uid)
        if not u:
            self.body_reader().drain()
            raise ApiError(404, f"No such Upload: {uid}")
        fields, files = self.multipart()
        if "data" not in files:
            raise ApiError(400, "Missing part 'data'.", param="data")
        if files["data"]["bytes"] > PART_MAX:
            raise ApiError(400, "Parts are at most 64 MB.", param="data")
        pid = self.server.state.next_id("part")
        u["_parts"][pid] = files["data"]
        return 200, {"object": "upload.part", "id": pid, "upload_id": uid, "created_at": int(time.time())}

    def h_upload_complete(self, query, azure, uid):
        st = self.server.state
        body = self.json_body()
        u = st.uploads.get(uid)
        if not u:
            raise ApiError(404, f"No such Upload: {uid}")
        if u["status"] == "completed":
            return 200, {k: v for k, v in u.items() if not k.startswith("_")}
        ids = body.get("part_ids")
        if not isinstance(ids, list) or not ids or any(i not in u["_parts"] for i in ids):
            raise ApiError(400, "'part_ids' must list this upload's parts.", param="part_ids")
        path = os.path.join(st.dir, uuid.uuid4().hex)
        size = 0
        with open(path, "wb") as out:
            for i in ids:
                with open(u["_parts"][i]["path"], "rb") as p:
                    while True:
                        c = p.read(1 << 20)
                        if not c:
                            break
                        out.write(c)
                        size += len(c)
        if size != u["bytes"]:
            os.unlink(path)
            raise ApiError(400, f"The parts add up to {size} bytes, but the upload was created for {u['bytes']}.")
        f = self.store_file(u["filename"], path, size, u["purpose"])
        u["status"] = "completed"
        u["file"] = self.public_file(f)
        return 200, {k: v for k, v in u.items() if not k.startswith("_")}

    # ---- jobs ----
    def h_create(self, query, azure):
        st = self.server.state
        b = self.json_body()
        if not isinstance(b.get("model"), str) or not b["model"]:
            raise ApiError(400, "Missing required parameter: 'model'.", "missing_required_parameter", "model")
        if not isinstance(b.get("training_file"), str):
            raise ApiError(400, "Missing required parameter: 'training_file'.", "missing_required_parameter", "training_file")
        for k in ("training_file", "validation_file"):
            if b.get(k) is not None and b[k] not in st.files:
                raise ApiError(400, f"invalid {k}: {b[k]}", "invalid_" + k, k)
        suffix = b.get("suffix")
        if suffix is not None:
            limit = 40 if azure else 64
            if not isinstance(suffix, str) or not 1 <= len(suffix) <= limit or (azure and not re.fullmatch(r"[A-Za-z0-9_-]+", suffix)):
                raise ApiError(400, f"suffix must be 1 to {limit} characters" + (" of [a-zA-Z0-9-_]" if azure else ""), "invalid_suffix", "suffix")
        md = b.get("metadata") or {}
        if not isinstance(md, dict) or len(md) > 16 or any(
                not isinstance(k, str) or not isinstance(v, str) or len(k) > 64 or len(v) > 512 for k, v in md.items()):
            raise ApiError(400, "metadata: at most 16 string pairs, keys up to 64 and values up to 512 characters", "invalid_metadata", "metadata")
        method = b.get("method") or {"type": "supervised"}
        mtype = method.get("type") if isinstance(method, dict) else None
        if mtype not in ("supervised", "dpo", "reinforcement"):
            raise ApiError(400, "method.type must be supervised, dpo or reinforcement", "invalid_method", "method")
        if b.get("seed") is not None and not isinstance(b["seed"], int):
            raise ApiError(400, "seed must be an integer", param="seed")
        # Azure's open-weight models train on global standard capacity; "all OSS
        # FT jobs fail without" the (undocumented) trainingType field.
        open_weight = azure and re.match(r"(?i)(meta-)?llama|qwen|ministral|mistral|gpt-oss|phi-", b["model"])
        if open_weight and b.get("trainingType") != "globalStandard":
            raise ApiError(400, f"Fine-tuning {b['model']} requires trainingType 'globalStandard'.",
                           "invalid_training_type", "trainingType")
        if open_weight and mtype != "supervised":
            raise ApiError(400, f"{b['model']} supports supervised fine-tuning only.", "invalid_method", "method")
        hp = (method.get(mtype) or {}).get("hyperparameters") or {}
        epochs = hp.get("n_epochs") if isinstance(hp.get("n_epochs"), int) else 3
        now = time.time()
        job = {"object": "fine_tuning.job", "id": st.next_id("ftjob"), "model": b["model"], "created_at": int(now),
               "finished_at": None, "fine_tuned_model": None, "organization_id": "org-ftsim", "result_files": [],
               "status": "validating_files", "validation_file": b.get("validation_file"),
               "training_file": b["training_file"], "hyperparameters": {"n_epochs": epochs}, "trained_tokens": None,
               "error": {}, "seed": b.get("seed") if b.get("seed") is not None else 42, "suffix": suffix,
               "estimated_finish": int(now + st.args.job_seconds) + 1, "metadata": md, "method": method,
               "integrations": [], "user_provided_suffix": suffix,
               "_t0": now, "_seconds": st.args.job_seconds, "_entered": {}, "_events": [], "_checkpoints": [],
               "_steps": 9, "_step": 0, "_epochs": epochs, "_azure": azure}
        if b.get("trainingType") is not None:
            job["trainingType"] = b["trainingType"]
        st.event(job, "Created fine-tuning job: " + job["id"] + " (simulated by ftsim: no training happens)", now)
        job["_entered"]["validating_files"] = False
        with st.lock:
            st.jobs[job["id"]] = job
            return 200, st.public_job(job)

    def get_job(self, jid):
        j = self.server.state.jobs.get(jid)
        if not j:
            raise ApiError(404, f"Could not find fine-tune: {jid}", "fine_tune_not_found", "fine_tune_id")
        return j

    def h_retrieve(self, query, azure, jid):
        with self.server.state.lock:
            return 200, self.server.state.public_job(self.get_job(jid))

    def h_list_jobs(self, query, azure):
        st = self.server.state
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after") or [None])[0]
        filters = {k[len("metadata["):-1]: v[0] for k, v in query.items() if k.startswith("metadata[") and k.endswith("]")}
        with st.lock:
            js = sorted(st.jobs.values(), key=lambda j: (j["_t0"], j["id"]), reverse=True)
            js = [j for j in js if all(j["metadata"].get(k) == v for k, v in filters.items())]
            if after:
                ids = [j["id"] for j in js]
                js = js[ids.index(after) + 1:] if after in ids else []
            return 200, {"object": "list", "data": [st.public_job(j) for j in js[:limit]], "has_more": len(js) > limit}

    def h_cancel(self, query, azure, jid):
        st = self.server.state
        self.body_reader().drain()
        with st.lock:
            j = self.get_job(jid)
            st.advance(j)
            if j["status"] in ("succeeded", "failed"):
                raise ApiError(400, f"Job {jid} has already completed; it cannot be cancelled.", "invalid_request")
            if j["status"] != "cancelled":
                st.finish(j, "cancelled", time.time())
            return 200, st.public_job(j)

    def h_events(self, query, azure, jid):
        st = self.server.state
        limit = int((query.get("limit") or ["20"])[0])
        after = (query.get("after") or [None])[0]
        with st.lock:
            j = self.get_job(jid)
            st.advance(j)
            evs = list(reversed(j["_events"]))  # newest first
        if after:
            ids = [e["id"] for e in evs]
            evs = evs[ids.index(after) + 1:] if after in ids else []
        return 200, {"object": "list", "data": evs[:limit], "has_more": len(evs) > limit}

    def h_checkpoints(self, query, azure, jid):
        st = self.server.state
        limit = int((query.get("limit") or ["10"])[0])
        with st.lock:
            j = self.get_job(jid)
            st.advance(j)
            cps = list(reversed(j["_checkpoints"]))
        return 200, {"object": "list", "data": cps[:limit], "has_more": len(cps) > limit,
                     "first_id": cps[0]["id"] if cps else None, "last_id": cps[-1]["id"] if cps else None}

    # ---- admin (tests) ----
    def admin(self, method, path):
        st = self.server.state
        if method == "POST" and path == "/_sim/faults":
            body = self.json_body()
            faults = body.get("faults", [])
            try:
                for f in faults:
                    if f.get("endpoint") not in ENDPOINTS or str(f.get("kind")) not in FAULT_KINDS:
                        raise ValueError(f"bad fault {f}")
                    f["kind"] = str(f["kind"])
                    f.setdefault("count", 1)
            except ValueError as e:
                return self.send_json(400, {"error": str(e)})
            with st.lock:
                if body.get("replace", True):
                    st.faults = []
                st.faults.extend(faults)
            return self.send_json(200, {"faults": st.faults})
        if method == "POST" and path == "/_sim/config":
            body = self.json_body()
            with st.lock:
                if "job_seconds" in body:
                    st.args.job_seconds = float(body["job_seconds"])
                tg = together.configure(st, body)
            return self.send_json(200, dict(tg, job_seconds=st.args.job_seconds))
        if method == "GET" and path == "/_sim/state":
            self.body_reader().drain()
            with st.lock:
                jobs = [st.public_job(j) for j in st.jobs.values()]
                # Admin view: also where each file's bytes are, so tests can read them.
                files = [dict(self.public_file(f), path=f["_path"]) for f in st.files.values()]
                return self.send_json(200, {"banner": BANNER, "jobs": jobs, "files": files,
                                            "uploads": len(st.uploads), "requests": st.requests,
                                            "faults": st.faults, "together": together.admin_state(st)})
        if method == "POST" and path == "/_sim/reset":
            self.body_reader().drain()
            with st.lock:
                st.jobs.clear()
                st.files.clear()
                st.uploads.clear()
                st.together.reset()
                st.faults = []
                st.requests = []
            return self.send_json(200, {"ok": True})
        self.body_reader().drain()
        return self.send_json(404, {"error": "unknown admin path"})


def parse_fault(spec):
    parts = spec.split(":")
    if len(parts) < 2 or parts[0] not in ENDPOINTS or parts[1] not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"--fault ENDPOINT:KIND[:COUNT], got {spec}")
    return {"endpoint": parts[0], "kind": parts[1], "count": int(parts[2]) if len(parts) > 2 else 1}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, test fault) is not an error of ours.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=BANNER)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--key", default="", help="the API key to accept (default: any non-empty key)")
    ap.add_argument("--job-seconds", type=float, default=8.0, help="how long a simulated job takes")
    ap.add_argument("--hang-seconds", type=float, default=30.0, help="how long a 'hang' fault holds the request")
    ap.add_argument("--fault", type=parse_fault, action="append", default=[])
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    server.state = State(args)
    server.state.faults = args.fault
    print(f"{BANNER}; listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
