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

MODULES = (test_extension, test_jobs, test_feedback, test_operations, test_security, test_install)
TESTS = [getattr(m, k) for m in MODULES for k in sorted(vars(m)) if k.startswith("test_")]



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir")
    ap.add_argument("-k", dest="pattern")
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
