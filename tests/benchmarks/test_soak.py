"""The soak benchmark's smoke test: a few seconds of `benchmarks/soak.py` run and print every figure.

It needs wrk (Debian's package): without it the test is skipped, unless DMED_REQUIRE_BROWSER (as in
CI, which installs it) makes it fail. No figure is asserted (not a time, not a memory, not a
verdict), only that each is there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dmed.celery import WORKER_PROCESSES
from dmed.gunicorn_conf import WORKERS

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(?:\.\d+)?"
SIGNED = r"[+-][\d,]+\.\d"
# gunicorn as `make demo` runs it (WEB_WORKERS, should the environment set it).
WEB = int(os.environ.get("WEB_WORKERS", WORKERS))
PROCESSES = ["web master", *(f"web {n}" for n in range(1, WEB + 1)), "celery"]
PROCESSES += [f"pool {n}" for n in range(1, WORKER_PROCESSES + 1)] + ["beat"]


def test_a_short_soak_prints_every_process_memory_and_verdict(wrk):
    run = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--minutes", "0.1", "--every", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    columns = " | ".join(PROCESSES)
    assert f"| time s | {columns} | requests | errors | notified |" in out, out
    # time | each process's MB | requests | errors | notified: before the load, and after each stretch
    sample = rf"^\| {NUMBER}" + rf" \| {NUMBER}" * (len(PROCESSES) + 3) + r" \|$"
    assert len(re.findall(sample, out, re.MULTILINE)) >= 3, out
    for label in PROCESSES:
        # process | after warm-up MB | at the end MB | growth MB | growth % | verdict
        row = (
            rf"^\| {re.escape(label)} \| {NUMBER} \| {NUMBER} \| {SIGNED} \| {SIGNED}% \| "
            rf"(flat|growing|replaced \(pid \d+ → \d+\)) \|$"
        )
        assert re.search(row, out, re.MULTILINE), f"no verdict for {label!r} in:\n{out}"
    totals = (
        rf"^Totals: {NUMBER} requests in {NUMBER} s \({NUMBER}/s\), {NUMBER} errors[^;]*; "
        rf"{NUMBER} subscription events, {NUMBER} notifications received, {NUMBER} deliveries pending "
        rf"at the end. Logged: {NUMBER} internal server errors by the web, {NUMBER} failed tasks"
    )
    assert re.search(totals, out, re.MULTILINE), out
    assert "SQLite (embedded)" in out
