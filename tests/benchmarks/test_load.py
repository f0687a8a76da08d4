"""The load benchmark's smoke test: `benchmarks/load.py --quick` runs and prints every figure.

It needs wrk (Debian's package): without it the test is skipped, unless DMED_REQUIRE_BROWSER (as in
CI, which installs it) makes it fail. No figure is asserted, only that each is there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchmarks.load import PHASES

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(?:\.\d+)?"


def test_quick_load_benchmark_prints_every_phase_figures(wrk):
    run = subprocess.run(
        [sys.executable, "benchmarks/load.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {"trivial JSON view": None} | {phase.label: phase.key for phase in PHASES}
    for label, key in rows.items():
        resources = NUMBER if key == "transaction" else ""
        # clients | phase | requests/s | resources/s | p50 ms | p95 ms | errors | ratio | target
        row = (
            rf"^\| 8 \| {re.escape(label)} \| {NUMBER} \| {resources} ?\| {NUMBER} \| {NUMBER} \| "
            rf"(\d+)[^|]* \| {NUMBER} \|"
        )
        found = re.search(row, run.stdout, re.MULTILINE)
        assert found, f"no figures for {label!r} in:\n{run.stdout}"
        assert found.group(1) == "0", f"{label!r} had failed requests:\n{run.stdout}"
    assert "SQLite (embedded)" in run.stdout
