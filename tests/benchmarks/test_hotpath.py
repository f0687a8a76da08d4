"""The in-process profiler's smoke test: `benchmarks/hotpath.py` times every operation, and with
--profile prints where the time went. No figure is asserted, only that each is there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchmarks.hotpath import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]


def test_hotpath_times_every_operation_and_profiles_it(tmp_path):
    dump = tmp_path / "profile.pstats"
    # Even where the suite's own DATABASE_URL names PostgreSQL, the script uses a fresh SQLite.
    run = subprocess.run(
        [
            sys.executable,
            "benchmarks/hotpath.py",
            "all",
            "-n",
            "3",
            "--profile",
            "--top",
            "5",
            "--dump",
            dump,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for operation in OPERATIONS:
        assert re.search(rf"^{operation} +[\d.]+ ms a request \(3 in process, sqlite\)$", run.stdout, re.M), (
            f"no figure for {operation} in:\n{run.stdout}"
        )
    assert run.stdout.count("function calls") == len(OPERATIONS)  # a profile after each
    assert dump.stat().st_size > 0
