"""End-to-end: installing the next version the documented way under running
clusters. The previous release (PREVIOUS, built from its release commit) runs with
the worker busy and clients calling functions; this version's Debian package is
installed with dpkg under it. No process may die (installing with `cargo pgrx
install`, which rewrote vibe_ft.so in place, killed every process that had it
mapped). Then the README's procedure: a restart where the library is preloaded,
ALTER EXTENSION vibe_ft UPDATE, and the worker carries on with the new version."""

import threading

from harness import *  # noqa: F401,F403
from harness import ROOT
from test_jobs import FINAL, job_row, wait_final

# Release commits: the source each released version was built from.
RELEASES = {"0.3.0": "802ae59c54aa7617f055ef23fa6cd656ef2bd52b",
            "0.4.0": "8580f76ec63d427e421ace4ff0b714db35caf846",
            "0.5.0": "cceb19ea90d85ada5c3bf3e1c3cac2637938f7d6",
            "0.6.0": "b2ad2036a026dc07363776aabb67147411079223"}
# The release installed first, and this version.
PREVIOUS, CURRENT = "0.6.0", "0.7.0"


def build_release_package(work, version):
    """The Debian package of a released version, built from its release commit
    with this tree's scripts/package.sh (cached in target/ between runs)."""
    commit = RELEASES[version]
    cached = os.path.join(ROOT, "target", "releases", f"postgresql-15-vibe-ft_{version}.deb")
    if os.path.exists(cached):
        return cached
    src = os.path.join(work, f"src-{version}")
    os.makedirs(src, exist_ok=True)
    have = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    assert have.returncode == 0, f"release commit {commit} of {version} is not in this clone (a shallow clone?)"
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
    # A target directory of its own: the old build must never stand where this
    # version's library is picked up from.
    env = dict(os.environ, VIBE_FT_SRC=src, CARGO_TARGET_DIR=os.path.join(ROOT, "target", "releases", "target"))
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh")], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    deb = p.stdout.strip().splitlines()[-1]
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    shutil.copy(os.path.join(src, deb), cached)
    return cached


def this_package():
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return os.path.join(ROOT, p.stdout.strip().splitlines()[-1])


def dpkg_install(deb):
    p = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


class Clients:
    """Sessions calling vibe_ft's functions in a loop until stopped."""

    def __init__(self, c, ds, n=3):
        self.errors, self.calls, self.stop_flag = [], 0, threading.Event()
        statements = [f"SELECT should_finetune FROM should_create_finetuning_job('{ds}', 1, 0)",
                      f"SELECT count(*) FROM export_training_dataset_openai_jsonl('{ds}', 'train', 6)",
                      "SELECT count(*) FROM get_latest_finetuned_model()",
                      "SELECT jobs_running FROM vibe_ft.status"]

        def loop(i):
            while not self.stop_flag.is_set():
                try:
                    c.sql(statements[i % len(statements)])
                    self.calls += 1
                except SqlError as e:
                    self.errors.append(str(e))
                i += 1

        self.threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


def test_installing_the_next_version_under_running_clusters(work):
    old_deb = build_release_package(work, PREVIOUS)
    new_deb = this_package()
    sim = Sim(job_seconds=40)
    preloaded = unloaded = None
    try:
        dpkg_install(old_deb)
        # One cluster with the worker (preloaded), one without (SQL only).
        preloaded = Cluster(work, "live_preloaded", preload="vibe_ft", conf=sim.conf())
        unloaded = Cluster(work, "live_unloaded", preload="")
        ds = install(preloaded)
        ds2 = install(unloaded)
        assert preloaded.one("SELECT extversion FROM pg_extension WHERE extname = 'vibe_ft'") == PREVIOUS
        job = preloaded.one(f"SELECT create_finetuning_job('{ds}')")
        wait_for("the worker to have the job at the provider", lambda: preloaded.one(
            f"SELECT status FROM vibe_ft.jobs WHERE id = '{job}'") in ("validating_files", "queued", "running"))
        worker = preloaded.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'")
        clients = [Clients(preloaded, ds), Clients(unloaded, ds2)]
        time.sleep(1)
        before = [cl.calls for cl in clients]

        dpkg_install(new_deb)  # the README's install: files renamed into place
        time.sleep(3)
        for cl in clients:
            cl.stop()
        for cl, n in zip(clients, before):
            assert cl.errors == [], cl.errors[:3]
            assert cl.calls > n, "the clients kept calling through the install"
        for c in (preloaded, unloaded):
            log = c.log()
            assert "terminated by signal" not in log and "was terminated" not in log, log[-3000:]
        assert preloaded.one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'vibe_ft worker'") == worker

        # Without preloading, new sessions load the new library: update at once.
        unloaded.sql("ALTER EXTENSION vibe_ft UPDATE")
        assert unloaded.one("SELECT extversion FROM pg_extension WHERE extname = 'vibe_ft'") == CURRENT
        assert unloaded.one(f"SELECT count(*) FROM export_training_dataset_openai_jsonl('{ds2}', 'train', 6)") == "58"

        # Preloaded: the postmaster has the old library mapped until it restarts.
        preloaded.stop("fast")
        preloaded.start()
        wait_for("the new worker to wait for the update", lambda: "waiting (ALTER EXTENSION vibe_ft UPDATE)" in preloaded.log())
        preloaded.sql("ALTER EXTENSION vibe_ft UPDATE")
        assert preloaded.one("SELECT extversion FROM pg_extension WHERE extname = 'vibe_ft'") == CURRENT
        # The worker picks the job up where the previous release left it: one provider job, a model.
        assert wait_final(preloaded, job, timeout=120) == "succeeded", job_row(preloaded, job)
        assert len(sim.jobs_for(job)) == 1
        assert "terminated by signal" not in preloaded.log()
    finally:
        for c in (preloaded, unloaded):
            if c:
                c.stop()
        sim.stop()
        # Leave this version installed, whatever happened.
        subprocess.run(["dpkg", "-i", new_deb], capture_output=True)
