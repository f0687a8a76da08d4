"""Soak benchmark: do dmed's web and worker processes keep a flat memory under a long mixed load?

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--every 15] [--database sqlite|postgres]
    .venv/bin/python benchmarks/soak.py --minutes 0.25 --every 3    # the smoke test's run
    make bench-soak BENCH_ARGS="--minutes 5"

dmed runs as `make demo` runs it, on what benchmarks/load.py seeds (a broker node, 200 EPS-shaped
MedicationRequests, a fresh database: SQLite under a temporary DMED_VAR_DIR, or with --database
postgres one created at 127.0.0.1:5432 and dropped afterwards): gunicorn as load.py starts it,
and a Celery worker (prefork, 4 processes) and beat as nodes/management/commands/demo.py starts
them, on a queue of their own (CELERY_QUEUE=dmed-soak-<pid>). So that the worker has work, a
pharmacy's Subscription to the medication-request topic (id-only) notifies a receiver inside this
script: each MedicationRequest written is an event that the worker delivers over HTTP (several
events to one notification when they wait), beside beat's sweeps.

wrk (Debian's `wrk`, one thread, 8 keep-alive clients) drives load.lua's "mixed" phase for
--minutes: each request is, at random by fixed weights, a read by id (35%), a search by
identifier (20%), a search by patient + status (15%), a create (15%), a conditional create (10%,
half of them naming a stored request) or a transaction Bundle of 10 creates (5%). It runs in
stretches of --every seconds; after each, the resident memory (VmRSS in /proc/<pid>/status) of
every process is sampled: the gunicorn master and workers, the Celery worker, its pool processes
and beat.

It prints a Markdown table with a row a sample (the time since the load began, each process's RSS
in MB, the requests and errors so far, the notifications received), then for each process its RSS
at the first sample after the warm-up (a tenth of the run: the first minute of the default 10), at
the end, the growth in MB and in %, and a verdict: "flat" when it grew by less than 10% and less
than 20 MB, "growing" otherwise ("replaced" if its pid changed), and at last the totals: requests,
errors, subscription events, notifications received and deliveries still pending, and the
failures the processes logged (the web's 500s, which wrk misses when a stretch ends before their
answer, and the worker's failed tasks). The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.load import (  # noqa: E402
    DATABASE_NAMES,
    GUNICORN,
    NODE,
    POSTGRES,
    TOKEN,
    Bench,
    free_port,
    fresh_database,
    running,
    seed,
    server_command,
    wait_for_port,
    wrk_path,
)
from dmed.celery import WORKER_PROCESSES, beat_command, worker_command  # noqa: E402

FLAT_PERCENT, FLAT_MB = 10.0, 20.0  # a process is flat when it grew by less than both
WARMUP_SHARE = 0.1  # the baseline is the first sample after this share of the run

# Counted at the end, in the database: the subscription's events and its deliveries not yet made.
FIGURES = """
import json
from exchange.models import Message, SubscriptionEvent
pending = Message.objects.filter(status=Message.Status.PENDING, kind="subscription.event").count()
print("FIGURES " + json.dumps({"events": SubscriptionEvent.objects.count(), "pending": pending}))
"""


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the load began
    rss_mb: dict[str, float]  # by process label
    pids: dict[str, int]
    requests: int
    errors: int
    notified: int


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10, help="the load's length (default 10)")
    parser.add_argument("--every", type=int, default=15, help="seconds between samples (default 15)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--database", default="sqlite", choices=sorted(DATABASE_NAMES))
    parser.add_argument(
        "--keep",
        metavar="FOLDER",
        help="run in this new folder and keep it (the database, the broker's folder and each "
        "process's log) for inspection, instead of a temporary one",
    )
    args = parser.parse_args()
    if args.every < 1 or args.minutes * 60 < args.every:
        parser.error("--every must be at least 1 s and at most the run's length")
    bench = Bench(wrk_path(), seconds=args.every, warmup=0)
    print(
        f"dmed soak: wrk, {args.clients} clients, load.lua's mixed phase for {args.minutes:g} min, "
        f"a sample every {args.every} s; {DATABASE_NAMES[args.database]}; gunicorn {GUNICORN}; "
        f"Celery prefork x {WORKER_PROCESSES} and beat; {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    with _scratch(args.keep) as scratch, fresh_database(args.database, scratch) as env:
        if env is None:
            sys.exit(f"nothing answers at {POSTGRES[0]}:{POSTGRES[1]}: no PostgreSQL to soak")
        env = env | {"CELERY_QUEUE": f"dmed-soak-{os.getpid()}"}
        data = scratch / args.database
        seed(env, data)
        with ExitStack() as stack:
            receiver = stack.enter_context(receiving())
            port = free_port()
            web = stack.enter_context(running(server_command("dmed.wsgi", port), env, scratch))
            worker = stack.enter_context(running(worker_command(), env, scratch))
            beat = stack.enter_context(running(beat_command(), env, scratch))
            wait_for_port(port)
            base = f"http://127.0.0.1:{port}/{NODE}/fhir/"
            subscribe(base, receiver.url)
            wait_for_worker(worker)
            samples, kinds = soak(bench, base, data, args, receiver, web, worker, beat)
            figures = database_figures(env) | logged_failures(web, worker)
    report(samples, kinds, args.minutes * 60, figures)
    print(f"\nLoad average {os.getloadavg()[0]:.1f} at the end (other processes share the cores).")


@contextmanager
def _scratch(keep: str | None) -> Iterator[Path]:
    """A temporary folder for the run, or with --keep a new folder that stays (its path printed)."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="dmed-soak-") as folder:
            yield Path(folder)
        return
    folder = Path(keep).resolve()
    folder.mkdir(parents=True)  # a new one: a kept run is never mixed with another
    try:
        yield folder
    finally:
        print(
            f"\nKept {folder}: the database and broker folder in var-*/, each process's log in server-*.log"
        )


class Receiver(ThreadingHTTPServer):
    """The subscriber's endpoint: answers every notification 200 and counts them."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Notified)
        self.count = 0
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Notified(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, format: str, *args) -> None:
        """Quiet: a line a notification would bury the table."""


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()


def subscribe(base: str, endpoint: str) -> None:
    """Subscribe the receiver to the medication-request topic for the pharmacy that every seeded
    and created request names (tests.factories' FA565), as a pharmacy subscribes (id-only
    notifications, several events to one when they wait), so that each write during the soak is
    an event for the worker to deliver, after its handshake."""
    backport = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    ods = "https://fhir.nhs.uk/Id/ods-organization-code"
    dispenser = f"MedicationRequest?intended-dispenser:identifier={ods}|FA565"
    content = {"url": backport + "backport-payload-content", "valueCode": "id-only"}
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "benchmarks/soak.py: deliveries for the worker",
        "criteria": "https://dmed.example/fhir/SubscriptionTopic/medication-request",
        "_criteria": {
            "extension": [{"url": backport + "backport-filter-criteria", "valueString": dispenser}]
        },
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [content]},
        },
    }
    request = urllib.request.Request(
        base + "Subscription",
        data=json.dumps(subscription).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        if answer.status != 201:
            raise SystemExit(f"the Subscription was not created: {answer.status} {answer.read()!r}")


def wait_for_worker(worker: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the Celery worker says it is ready (its pool processes are then started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in worker.log_path.read_text():
            return
        if worker.poll() is not None:
            raise SystemExit(f"the Celery worker stopped (exit {worker.returncode})")
        time.sleep(0.2)
    raise SystemExit("the Celery worker was not ready in time")


def soak(
    bench: Bench,
    base: str,
    data: Path,
    args: argparse.Namespace,
    receiver: Receiver,
    web: subprocess.Popen,
    worker: subprocess.Popen,
    beat: subprocess.Popen,
) -> tuple[list[Sample], dict[str, int]]:
    """Run wrk's mixed load in stretches of --every seconds, sampling every process after each
    one (and once before the load), printing each sample as a row of the table; return the
    samples and the errors by kind."""
    total = math.ceil(args.minutes * 60)
    print()
    header = None
    samples: list[Sample] = []
    kinds: dict[str, int] = {}
    requests = errors = planned = 0
    began = time.monotonic()
    while True:
        pids = process_pids(web, worker, beat)
        rss = {label: mb for label, pid in pids.items() if (mb := rss_mb(pid)) is not None}
        sample = Sample(time.monotonic() - began, rss, pids, requests, errors, receiver.count)
        samples.append(sample)
        if header is None:
            header = list(rss)
            print("| time s | " + " | ".join(header) + " | requests | errors | notified |")
            print("| --- " * (len(header) + 4) + "|")
        print(_row(sample, header), flush=True)
        if planned >= total:
            return samples, kinds
        stretch = min(args.every, total - planned)
        result = bench.wrk_run(base, "mixed", args.clients, data, stretch)
        planned += stretch
        requests += result.requests
        errors += result.errors
        for kind, count in result.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count


def _row(sample: Sample, header: list[str]) -> str:
    memory = " | ".join(f"{sample.rss_mb[k]:.1f}" if k in sample.rss_mb else "gone" for k in header)
    return (
        f"| {sample.seconds:.0f} | {memory} | {sample.requests:,} | {sample.errors:,} | {sample.notified:,} |"
    )


def process_pids(web: subprocess.Popen, worker: subprocess.Popen, beat: subprocess.Popen) -> dict[str, int]:
    """Every process to watch, by a label for the table: gunicorn's master and its workers, the
    Celery worker and its pool processes, and beat."""
    pids = {"web master": web.pid}
    pids |= {f"web {n}": pid for n, pid in enumerate(children(web.pid), 1)}
    pids["celery"] = worker.pid
    pids |= {f"pool {n}": pid for n, pid in enumerate(children(worker.pid), 1)}
    pids["beat"] = beat.pid
    return pids


def children(parent: int) -> list[int]:
    """The pids of a process's children, oldest first (by pid), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float | None:
    """A process's resident memory in MB (VmRSS, which counts pages shared with its parent), or
    None if it has ended since it was listed."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None  # a zombie: it has no memory left


def database_figures(env: dict[str, str]) -> dict[str, int]:
    """The subscription's events and its deliveries still pending, counted in the database."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", FIGURES],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.split("FIGURES ", 1)[1])


def logged_failures(web: subprocess.Popen, worker: subprocess.Popen) -> dict[str, int]:
    """The failures the processes logged: the web's 500s (Django's "Internal Server Error"), which
    wrk misses when a stretch ends before their answer comes, and the worker's failed tasks."""
    return {
        "web_500s": web.log_path.read_text(errors="replace").count("Internal Server Error:"),
        "failed_tasks": worker.log_path.read_text(errors="replace").count("raised unexpected:"),
    }


def report(samples: list[Sample], kinds: dict[str, int], seconds: float, figures: dict[str, int]) -> None:
    """Print each process's growth after the warm-up, with its verdict, and the totals."""
    baseline = next(s for s in samples if s.seconds >= seconds * WARMUP_SHARE)
    end = samples[-1]
    print(
        f"\nMemory after the warm-up (the sample at {baseline.seconds:.0f} s) and at the end "
        f"({end.seconds:.0f} s); flat = grew by less than {FLAT_PERCENT:g}% and {FLAT_MB:g} MB.\n"
    )
    print("| process | after warm-up MB | at the end MB | growth MB | growth % | verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, first in baseline.rss_mb.items():
        last = end.rss_mb.get(label)
        if last is None:
            print(f"| {label} | {first:.1f} | gone | | | gone |")
            continue
        growth = last - first
        percent = 100 * growth / first
        if end.pids[label] != baseline.pids[label]:
            verdict = f"replaced (pid {baseline.pids[label]} → {end.pids[label]})"
        else:
            verdict = "flat" if percent < FLAT_PERCENT and growth < FLAT_MB else "growing"
        print(f"| {label} | {first:.1f} | {last:.1f} | {growth:+.1f} | {percent:+.1f}% | {verdict} |")
    rate = end.requests / end.seconds if end.seconds else 0.0
    by_kind = ", ".join(f"{n:,} {kind}" for kind, n in kinds.items() if n)
    errors = f"{end.errors:,} errors" + (f" ({by_kind})" if by_kind else "")
    print(
        f"\nTotals: {end.requests:,} requests in {end.seconds:.0f} s ({rate:,.1f}/s), "
        f"{errors}; {figures['events']:,} subscription events, {end.notified:,} notifications "
        f"received, {figures['pending']:,} deliveries pending at the end. Logged: "
        f"{figures['web_500s']:,} internal server errors by the web, {figures['failed_tasks']:,} "
        f"failed tasks by the worker."
    )


if __name__ == "__main__":
    main()
