"""The e2e harness: throwaway PostgreSQL 15 clusters (initdb + pg_ctl as an
unprivileged user, no TCP listener, a socket in their own directory) driven
with psql, and the provider simulator (sim/ftsim.py) on loopback."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

PG_USER = os.environ.get("VIBE_FT_PG_USER", "vibeft")
# The server under test: Debian's PostgreSQL 15, or another version's tree
# (scripts/test.sh runs a part of the suite on 16, 17 and 18 this way).
PG_BIN = os.environ.get("VIBE_FT_PG_BIN", "/usr/lib/postgresql/15/bin")
# Clients: Debian's psql talks to every version; pg_dump and pg_restore must be
# at least the server's version.
CLIENT_BIN = "/usr/lib/postgresql/15/bin"
TOOLS_BIN = os.environ.get("VIBE_FT_PG_TOOLS", PG_BIN)
SHAREDIR = os.environ.get("VIBE_FT_PG_SHAREDIR", "/usr/share/postgresql/15/extension")
HERE = os.path.dirname(os.path.abspath(__file__))
SEED_SQL = open(os.path.join(HERE, "..", "fixtures", "seed_dataset.sql")).read()


def as_pg(cmd):
    """Run as the unprivileged Postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--"] + cmd
    return cmd


class SqlError(Exception):
    pass


class Cluster:
    _next_port = 5500

    def __init__(self, workdir, name, preload="vibe_ft,pg_cron", conf=(), env=()):
        self.env = list(env)
        self.dir = os.path.join(workdir, name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        Cluster._next_port += 1
        self.port = str(Cluster._next_port)
        os.makedirs(self.sock, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, PG_USER)
            shutil.chown(self.sock, PG_USER)
        subprocess.run(as_pg([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                              "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        lines = [
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.sock}'",
            f"port = {self.port}",
            f"shared_preload_libraries = '{preload}'",
            "cron.database_name = 'postgres'",
            f"cron.host = '{self.sock}'",
            "fsync = off",
            # Nothing else of vibe_ft: a test configures only what the README
            # tells a user to (a preloaded worker idles where no job exists, and
            # vibe_ft.enabled = off, the documented kill switch, stops it).
            *conf,
        ]
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n".join(lines) + "\n")
        self.start()

    def start(self):
        env = ["env", *self.env] if self.env else []
        subprocess.run(as_pg(env + [f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"),
                                    "-w", "start"]), check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode="fast"):
        subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def conn_args(self, db, user="postgres"):
        return ["-h", self.sock, "-p", self.port, "-U", user, "-d", db]

    def psql_cmd(self, db="postgres", user="postgres"):
        return as_pg([f"{CLIENT_BIN}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"] + self.conn_args(db, user))

    def log(self):
        with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
            return f.read()

    def sql(self, sql, db="postgres", user="postgres"):
        """Run SQL; return the rows of the last statement as lists of strings."""
        p = subprocess.run(self.psql_cmd(db, user), input=sql, capture_output=True, text=True)
        if p.returncode != 0:
            raise SqlError(p.stderr.strip())
        return [line.split("|") for line in p.stdout.splitlines() if line != ""]

    def sql_with_notices(self, sql, db="postgres", user="postgres"):
        """Run SQL; return what the server said besides rows (notices, warnings)."""
        p = subprocess.run(self.psql_cmd(db, user), input=sql, capture_output=True, text=True)
        if p.returncode != 0:
            raise SqlError(p.stderr.strip())
        return p.stderr

    def one(self, sql, db="postgres", user="postgres"):
        rows = self.sql(sql, db, user)
        assert len(rows) == 1 and len(rows[0]) == 1, f"expected one value from {sql!r}, got {rows!r}"
        return rows[0][0]

    def tool(self, name, *args, **kw):
        return subprocess.run(as_pg([f"{TOOLS_BIN}/{name}"] + list(args)), check=True, capture_output=True, **kw)


def install(cluster, db="postgres"):
    cluster.sql("CREATE EXTENSION vibe_ft;", db)
    cluster.sql(SEED_SQL, db)
    return cluster.one("SELECT id FROM vibe_ft.datasets WHERE name = 'Coach Responses from User Feedback'", db)


def expect_error(fn, sqlstate_text):
    try:
        fn()
    except SqlError as e:
        assert sqlstate_text in str(e), f"expected {sqlstate_text!r} in error, got {e}"
        return str(e)
    raise AssertionError(f"expected an error containing {sqlstate_text!r}")


def wait_for(what, fn, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)



ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SIM = os.path.join(ROOT, "sim", "ftsim.py")


class Sim:
    """The provider simulator on a free loopback port."""

    def __init__(self, key="sk-e2e", job_seconds=4.0, hang_seconds=8.0):
        self.key = key
        self.proc = subprocess.Popen([sys.executable, SIM, "--port", "0", "--key", key,
                                      "--job-seconds", str(job_seconds), "--hang-seconds", str(hang_seconds)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def _call(self, method, path, body=None):
        import json
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, *faults):
        return self._call("POST", "/_sim/faults", {"faults": [dict(f) for f in faults]})

    def config(self, **kw):
        return self._call("POST", "/_sim/config", kw)

    def state(self):
        return self._call("GET", "/_sim/state")

    def jobs_for(self, job_id):
        return [j for j in self.state()["jobs"] if j["metadata"].get("vibe_ft_job_id") == job_id]

    def together(self):
        """Together's side: {"files", "jobs", "endpoints", "config"}."""
        return self.state()["together"]

    def together_jobs_for(self, c, job_id):
        """Together keeps no metadata: a vibe_ft job's provider jobs are the ones
        made from the files it uploaded (their names carry its id)."""
        files = {f["id"] for f in self.together()["files"] if job_id in f["filename"]}
        file_id = c.one(f"SELECT coalesce(training_file_id, '-') FROM vibe_ft.jobs WHERE id = '{job_id}'")
        files.add(file_id)
        return [j for j in self.together()["jobs"] if j["training_file"] in files]

    def requests(self, endpoint):
        return [r for r in self.state()["requests"] if r["endpoint"] == endpoint]

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def conf(self, flavor="openai"):
        """postgresql.conf lines pointing vibe_ft at this simulator, polling fast."""
        path = {"openai": "/v1", "azure": "/openai/v1", "together": "/together/v1"}[flavor]
        return [f"vibe_ft.{flavor}_base_url = '{self.base}{path}'", f"vibe_ft.{flavor}_api_key = '{self.key}'",
                "vibe_ft.poll_interval_fast = 1", "vibe_ft.poll_interval = 1", "vibe_ft.retry_delay = 1",
                "vibe_ft.http_timeout = 3"]


class vault_extension:
    """Install the test stand-in of Supabase Vault (tests/fixtures/supabase_vault)
    for the duration of a `with` block."""

    FILES = ["supabase_vault.control", "supabase_vault--0.0.0.sql"]

    def __enter__(self):
        for f in self.FILES:
            shutil.copy(os.path.join(HERE, "..", "fixtures", "supabase_vault", f), os.path.join(SHAREDIR, f))
        return self

    def __exit__(self, *exc):
        for f in self.FILES:
            try:
                os.remove(os.path.join(SHAREDIR, f))
            except FileNotFoundError:
                pass
