#!/usr/bin/env python3
"""End-to-end tests of vibe_ft against real, throwaway PostgreSQL 15 clusters and
the provider simulator. Needs only the Python standard library and an installed
vibe_ft (scripts/setup.sh).

    python3 tests/e2e/run.py [--workdir DIR] [-k NAME]
"""

import os
import shutil
import sys
import tempfile
import time
import traceback
import argparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PG_USER  # noqa: E402
import test_extension  # noqa: E402
import test_jobs  # noqa: E402
import test_feedback  # noqa: E402
import test_operations  # noqa: E402
import test_security  # noqa: E402
import test_install  # noqa: E402
import test_providers  # noqa: E402
import test_experiments  # noqa: E402
import test_redaction  # noqa: E402

MODULES = (test_extension, test_jobs, test_feedback, test_operations, test_security, test_install, test_providers,
           test_experiments, test_redaction)
TESTS = [getattr(m, k) for m in MODULES for k in sorted(vars(m)) if k.startswith("test_")]

# What runs on PostgreSQL 16, 17 and 18 (--versions-subset): no pg_cron there,
# and only this version's package for the install test.
VERSIONS_SUBSET = {
    "test_works_with_preload", "test_works_without_preload", "test_dump_and_restore_keeps_the_data",
    "test_upgrade_from_0_1_0_matches_a_fresh_install", "test_upgrade_from_0_2_0_matches_a_fresh_install",
    "test_upgrade_from_0_3_0_matches_a_fresh_install", "test_upgrade_from_0_4_0_matches_a_fresh_install",
    "test_upgrade_from_0_5_0_matches_a_fresh_install", "test_upgrade_from_0_6_0_matches_a_fresh_install",
    "test_restart_keeps_jobs_and_rules", "test_together_runs_a_job_to_a_model_and_serves_it_on_request",
    "test_worker_runs_a_job_to_a_model", "test_sql_only_path_runs_a_job_without_the_worker",
    "test_crashes_at_each_step_resume_without_duplicates", "test_worker_survives_errors_and_stops_on_sigterm",
    "test_feedback_rows_become_uploaded_files", "test_fast_shutdown_mid_upload_and_mid_retry_wait",
    "test_every_function_answers_nulls_and_edges_with_a_documented_sqlstate",
}



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir")
    ap.add_argument("-k", dest="pattern")
    ap.add_argument("--versions-subset", action="store_true", help="only the tests that run on PostgreSQL 16-18")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="vibe_ft-e2e.")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    if os.geteuid() == 0:
        shutil.chown(work, PG_USER)
    passed = failed = 0
    for t in TESTS:
        if args.pattern and args.pattern not in t.__name__:
            continue
        if args.versions_subset and t.__name__ not in VERSIONS_SUBSET:
            continue
        start = time.monotonic()
        try:
            t(work)
            passed += 1
            print(f"test {t.__name__} ... ok ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"test {t.__name__} ... FAILED", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
