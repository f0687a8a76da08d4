"""Load benchmark: dmed's FHIR API under concurrent clients, beside a trivial Django view.

    .venv/bin/python benchmarks/load.py [--seconds 10] [--clients 8,32] [--databases sqlite,postgres]
    .venv/bin/python benchmarks/load.py --quick    # the smoke test's run: 1 s phases, 8 clients, SQLite
    .venv/bin/python benchmarks/load.py --phases read,identifier --clients 8 --databases postgres
    make bench-load BENCH_ARGS="--seconds 5"

The load comes from wrk (Debian's `wrk`) in its own process, one thread, keep-alive connections,
driven by benchmarks/load.lua. dmed runs under gunicorn as `make demo` runs it (dmed.gunicorn_conf,
4 workers x 2 threads unless WEB_WORKERS and WEB_THREADS say otherwise, preloaded), on a node of
kind broker (a plain store) with an API client holding system/*.cruds, AuditEvents and the full
standard search index on; each database is a
fresh one: SQLite under a temporary DMED_VAR_DIR, and PostgreSQL (a database created at
127.0.0.1:5432 and dropped afterwards) when it answers. 200 EPS-shaped MedicationRequests (20
patients, 8 active and 2 completed each) are stored first; reads and searches pick among them.
PostgreSQL is then ANALYZEd, as autovacuum keeps a running server's statistics (without them,
its planner walks every MedicationRequest for a search by identifier).

Each phase runs --seconds after a warm-up, at each client count: create MedicationRequest (a
new business identifier each), read by id, search by identifier, search by patient + status,
conditional create (If-None-Exist: every other one names a stored request, the rest are new and
created), and a transaction Bundle of 10 MedicationRequest creates. The trivial view (the
benchmarks.trivial project: one JSON view, no middleware, no database) runs under the same gunicorn
command and settings throughout, measured just before each database's phases at each client count
(the machine's other load changes); every phase's throughput is printed as a ratio to it, beside
issue 14's targets (met / not met). The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.search import _free_port as free_port  # noqa: E402
from benchmarks.search import _wait as wait_for_port  # noqa: E402
from dmed.gunicorn_conf import THREADS, WORKERS, gunicorn_command  # noqa: E402

SCRIPT = Path(__file__).with_name("load.lua")
POSTGRES = ("127.0.0.1", 5432)
NODE, TOKEN = "bench", "bench-token"  # tests.factories.make_node's token for the slug
PATIENTS, PER_PATIENT = 20, 10
ENTRIES = 10  # a transaction Bundle's creates

# Stores the benchmark's node and its client, and the requests that the reads and searches pick
# among (benchmarks/seeding.py); prints what it stored as JSON.
SEED = f"""
import json
from django.db import connection
from benchmarks.seeding import store_requests
seeded = store_requests({NODE!r}, {PATIENTS}, {PER_PATIENT})
if connection.vendor == "postgresql":  # statistics, as autovacuum keeps them on a running server
    connection.cursor().execute("ANALYZE")
print("SEEDED " + json.dumps(seeded))
"""


@dataclass(frozen=True)
class Phase:
    key: str  # load.lua's name for it
    label: str
    target: str  # the target's key in TARGETS, or ""


PHASES = [
    # What dmed's request path costs with no FHIR work: middleware, routing, DRF, the node's row.
    Phase("floor", "floor: SMART configuration (no FHIR work)", ""),
    Phase("create", "create MedicationRequest", "create"),
    Phase("read", "read by id", "read"),
    Phase("identifier", "search by identifier", "identifier"),
    Phase("patient", "search by patient + status", ""),
    Phase("conditional", "conditional create (half exist)", "create"),
    Phase("transaction", f"transaction Bundle of {ENTRIES}", "transaction"),
]
# Issue 14's targets, set at 8 clients: ratios to the trivial view's requests a second, and for a
# transaction its resources a second as a multiple of the create phase's.
TARGETS = {
    "sqlite": {"read": 0.4, "identifier": 0.3, "create": 0.1, "transaction": 1.0},
    "postgres": {"read": 0.4, "identifier": 0.3, "create": 0.12, "transaction": 1.5},
}
DATABASE_NAMES = {"sqlite": "SQLite (embedded)", "postgres": "PostgreSQL"}
GUNICORN = (
    f"{os.environ.get('WEB_WORKERS', WORKERS)} workers x {os.environ.get('WEB_THREADS', THREADS)} threads, "
    "dmed.gunicorn_conf, --preload"
)


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int
    error_kinds: dict

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="each phase's measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="each phase's warm-up, 0 for none (default 1)")
    parser.add_argument("--clients", default="8,32", help="concurrent connections, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--quick", action="store_true", help="1 s phases, no warm-up, 8 clients, SQLite")
    parser.add_argument(
        "--phases",
        default=",".join(phase.key for phase in PHASES),
        help="which phases, comma-separated (default all; a transaction's ratio needs create too)",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.clients, args.databases = 1, 0, "8", "sqlite"
    clients = [int(c) for c in args.clients.split(",")]
    databases = [d.strip() for d in args.databases.split(",")]
    wanted = {p.strip() for p in args.phases.split(",")}
    if unknown := wanted - {phase.key for phase in PHASES}:
        parser.error(f"unknown phase {', '.join(sorted(unknown))}: {', '.join(p.key for p in PHASES)}")
    phases = [phase for phase in PHASES if phase.key in wanted]
    if unknown := set(databases) - set(DATABASE_NAMES):
        parser.error(f"unknown database {', '.join(sorted(unknown))}: sqlite or postgres")
    started = time.monotonic()
    bench = Bench(wrk_path(), args.seconds, args.warmup, phases)
    print(
        f"dmed load benchmark: wrk, {args.seconds} s a phase after {args.warmup} s of warm-up, "
        f"clients {', '.join(map(str, clients))}; gunicorn {GUNICORN}; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="dmed-load-") as folder:
        scratch = Path(folder)
        port = free_port()
        with running(server_command("benchmarks.trivial.wsgi", port), server_env(scratch), scratch):
            wait_for_port(port)
            bench.trivial_url = f"http://127.0.0.1:{port}/"
            for database in databases:
                print(f"\n## {DATABASE_NAMES[database]}\n", flush=True)
                with fresh_database(database, scratch) as env:
                    if env is None:
                        print(f"skipped: nothing answers at {POSTGRES[0]}:{POSTGRES[1]}")
                        continue
                    results = bench.dmed(env, scratch / database, clients)
                report(database, clients, phases, results)
    print(
        f"\nThe run took {time.monotonic() - started:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f} at the end (other processes share the cores)."
    )


def wrk_path() -> str:
    """wrk's path; without it, exit saying how to install it (the load comes from it)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "wrk is not installed: the load comes from it. On Debian or Ubuntu:\n"
            "    sudo apt-get update && sudo apt-get install -y wrk"
        )
    return wrk


def server_command(app: str, port: int) -> list[str]:
    """`make demo`'s gunicorn command (nodes/management/commands/demo.py) for this WSGI app."""
    command = [*gunicorn_command(f"127.0.0.1:{port}"), "--preload"]
    command[command.index("dmed.wsgi")] = app
    return command


class Bench:
    def __init__(self, wrk: str, seconds: int, warmup: int, phases: list | None = None) -> None:
        self.wrk, self.seconds, self.warmup = wrk, seconds, warmup
        self.phases = PHASES if phases is None else phases
        self.trivial_url = ""

    def dmed(self, env: dict[str, str], scratch: Path, clients: list[int]) -> dict[tuple[str, int], Result]:
        """Store the benchmark's node and requests, serve them, and return each phase's figures
        and, measured just before them, the trivial view's (the machine's load changes)."""
        seed(env, scratch)
        port = free_port()
        with running(server_command("dmed.wsgi", port), env, scratch):
            wait_for_port(port)
            base = f"http://127.0.0.1:{port}/{NODE}/fhir/"
            found = {}
            for count in clients:
                found["trivial", count] = result = self.load(self.trivial_url, "trivial", count, scratch)
                print(f"  trivial JSON view, {count} clients: {result.rate:,.0f} requests/s", flush=True)
                for phase in self.phases:
                    found[phase.key, count] = result = self.load(base, phase.key, count, scratch)
                    print(
                        f"  {phase.label}, {count} clients: {result.rate:,.1f} requests/s, "
                        f"{result.errors} errors",
                        flush=True,
                    )
            return found

    def load(self, url: str, phase: str, clients: int, data: Path) -> Result:
        """Run wrk's warm-up, then the measured run, and return the latter's figures."""
        if self.warmup:
            self.wrk_run(url, phase, clients, data, self.warmup)
        return self.wrk_run(url, phase, clients, data, self.seconds)

    def wrk_run(self, url: str, phase: str, clients: int, data: Path, seconds: int) -> Result:
        command = [
            self.wrk,
            "--threads",
            "1",  # 2 cores: wrk takes as little of them as it can
            "--connections",
            str(clients),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "60s",
            "--latency",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--header",
            "Content-Type: application/fhir+json",
            "--script",
            str(SCRIPT),
            url,
            "--",
            phase,
            str(data),
            str(random.SystemRandom().randrange(1, 2**31)),
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
        line = next((x for x in run.stdout.splitlines() if x.startswith("LOAD ")), None)
        if run.returncode or line is None:
            raise SystemExit(f"wrk failed ({phase}):\n{run.stdout}\n{run.stderr}")
        figures = json.loads(line[5:])
        return Result(
            requests=figures["requests"],
            seconds=figures["duration_us"] / 1e6,
            p50_ms=figures["p50_us"] / 1000,
            p95_ms=figures["p95_us"] / 1000,
            errors=figures["errors"],
            error_kinds=figures["error_kinds"],
        )


def seed(env: dict[str, str], scratch: Path) -> None:
    """Migrate the fresh database and store the benchmark's node and requests (SEED), and write
    what load.lua reads into scratch."""
    scratch.mkdir(exist_ok=True)
    manage = [sys.executable, "manage.py"]
    begun = time.monotonic()
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [*manage, "shell", "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    seeded = json.loads(out.split("SEEDED ", 1)[1])
    write_data(scratch, seeded)
    print(f"migrated and seeded in {time.monotonic() - begun:.0f} s", flush=True)


def write_data(folder: Path, seeded: dict) -> None:
    """Write what load.lua reads: the stored ids and identifiers, and the bodies to post."""
    for name in ("ids", "items", "patients"):
        (folder / f"{name}.txt").write_text("\n".join(seeded[name]) + "\n")
    create = seeded["template"]
    (folder / "create.json").write_text(json.dumps(create))
    entry = {
        "fullUrl": "urn:uuid:@UUID@",
        "resource": create,
        "request": {"method": "POST", "url": "MedicationRequest"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * ENTRIES}
    (folder / "transaction.json").write_text(json.dumps(bundle))


def server_env(var_dir: Path) -> dict[str, str]:
    """The environment of a server on the embedded defaults, its files under var_dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    return env | {"DMED_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "dmed.settings"}


@contextlib.contextmanager
def fresh_database(database: str, scratch: Path) -> Iterator[dict[str, str] | None]:
    """Yield the environment of a server on a fresh database (None when PostgreSQL is not there)."""
    var_dir = scratch / f"var-{database}"
    var_dir.mkdir()
    env = server_env(var_dir)
    if database == "sqlite":
        yield env
        return
    with socket.socket() as sock:
        sock.settimeout(2)
        if sock.connect_ex(POSTGRES) != 0:
            yield None
            return
    import psycopg

    name = f"dmed_load_{uuid.uuid4().hex[:8]}"
    server = f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield env | {"DATABASE_URL": f"{server}/{name}"}
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], scratch: Path) -> Iterator[subprocess.Popen]:
    """Run a server, its output in a log under scratch (shown if it fails, and named by the process's
    log_path), until the block ends."""
    log_path = scratch / f"server-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        server.log_path = log_path
        try:
            yield server
        except BaseException:
            print(f"server log ({' '.join(command[3:6])}):\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def report(database: str, clients: list[int], phases: list, results: dict[tuple[str, int], Result]) -> None:
    """Print the phases' figures as a Markdown table, with the issue's targets met or not."""
    targets = TARGETS[database]
    print(
        f"\n{DATABASE_NAMES[database]}: ratio = requests/s over the trivial view's just before, at "
        f"the same client count; the issue sets its targets at 8 clients.\n"
    )
    print("| clients | phase | requests/s | resources/s | p50 ms | p95 ms | errors | ratio | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for count in clients:
        t = results["trivial", count]
        print(
            f"| {count} | trivial JSON view | {t.rate:,.0f} | | {t.p50_ms:.1f} | {t.p95_ms:.1f} | "
            f"{t.errors} | 1 | |"
        )
        create = results["create", count].rate if ("create", count) in results else 0.0
        for phase in phases:
            r = results[phase.key, count]
            ratio = r.rate / t.rate if t.rate else 0.0
            resources = f"{r.rate * ENTRIES:,.1f}" if phase.key == "transaction" else ""
            target = ""
            if phase.target == "transaction" and not create:
                target = "against create: run the create phase too"
            elif phase.target == "transaction":
                times = r.rate * ENTRIES / create
                goal = targets["transaction"]
                target = f"{times:.2f}x create, ≥ {goal}x: {'met' if times >= goal else 'not met'}"
            elif phase.target:
                goal = targets[phase.target]
                target = f"≥ {goal}: {'met' if ratio >= goal else 'not met'}"
            errors = f"{r.errors}" + (f" {_kinds(r.error_kinds)}" if r.errors else "")
            print(
                f"| {count} | {phase.label} | {r.rate:,.1f} | {resources} | {r.p50_ms:.1f} | "
                f"{r.p95_ms:.1f} | {errors} | {ratio:.3f} | {target} |"
            )


def _kinds(kinds: dict) -> str:
    return "(" + ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n) + ")"


if __name__ == "__main__":
    main()
