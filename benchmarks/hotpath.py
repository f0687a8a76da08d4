"""Where one request's time goes: dmed's WSGI application called in process, no server, no client.

    .venv/bin/python benchmarks/hotpath.py read            # mean time of 2,000 reads by id
    .venv/bin/python benchmarks/hotpath.py create --profile --sort tottime  # and cProfile's costliest calls
    .venv/bin/python benchmarks/hotpath.py all -n 500 [--database-url postgres://…/dmed_profile]

Operations: read, identifier (search by identifier), patient (search by patient + status), create,
conditional (conditional create of an existing identifier), transaction (a Bundle of 10 creates),
or all. A fresh SQLite database under a temporary DMED_VAR_DIR (or the PostgreSQL database named,
created and dropped) holds a broker node with 200 MedicationRequests, as benchmarks/load.py seeds
it; AuditEvents and the full search index are on. The figures are wall-clock means per request in
this one thread (so without gunicorn's parsing and the load generator), printed, never asserted.
On PostgreSQL on this machine it adds the CPU the server's backend for this thread's connection
used a request (a read's AuditEvent is written later by the audit buffer's thread, on another
connection, and is not in that figure; a write's is).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OPERATIONS = ["read", "identifier", "patient", "create", "conditional", "transaction"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("operation", choices=[*OPERATIONS, "all"])
    parser.add_argument("-n", type=int, default=2000, help="requests timed (default 2,000)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's costliest calls")
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime…")
    parser.add_argument("--top", type=int, default=30, help="how many calls the profile prints")
    parser.add_argument("--dump", default="", help="also write the profile to this file (pstats)")
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to create and drop")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="dmed-profile-")
    os.environ.update(
        DMED_VAR_DIR=folder,
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "dmed.settings"),
        FHIR_AUTH_CACHE_SECONDS=os.environ.get("FHIR_AUTH_CACHE_SECONDS", "5"),
    )
    os.environ.pop("DATABASE_URL", None)  # not the caller's database: a fresh one
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
        _create_database(args.database_url)
    try:
        run(args)
    finally:
        if args.database_url:
            from django.db import connections

            from fhirserver import audit

            audit.BUFFER.flush()  # the reads' AuditEvents, before their database goes
            connections.close_all()
            _drop_database(args.database_url)


def run(args) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from benchmarks.load import NODE, PATIENTS, PER_PATIENT, TOKEN
    from benchmarks.seeding import store_requests

    call_command("migrate", verbosity=0)
    seeded = store_requests(NODE, PATIENTS, PER_PATIENT)
    if connection.vendor == "postgresql":
        connection.cursor().execute("ANALYZE")
    app = get_wsgi_application()
    requests = Requests(seeded, f"/{NODE}/fhir", TOKEN)
    for operation in OPERATIONS if args.operation == "all" else [args.operation]:
        for _ in range(min(200, args.n)):  # warm-up: caches, connections, imports
            _call(app, requests.make(operation))
        profiler = cProfile.Profile() if args.profile else None
        made = [requests.make(operation) for _ in range(args.n)]
        backend = _backend_cpu(connection)
        begun = time.perf_counter()
        if profiler:
            profiler.enable()
        for environ in made:
            _call(app, environ)
        if profiler:
            profiler.disable()
        took = (time.perf_counter() - begun) / args.n * 1000
        server = ""
        if backend:
            server = (
                f", the database server's CPU {(_backend_cpu(connection) - backend) / args.n * 1000:.3f} ms"
            )
        print(f"{operation:12} {took:7.3f} ms a request ({args.n} in process, {connection.vendor}{server})")
        if profiler:
            if args.dump:
                profiler.dump_stats(args.dump)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())


def _backend_cpu(connection) -> float:
    """Seconds of CPU the PostgreSQL backend serving this connection has used (0 on SQLite)."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a server on another machine
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Requests:
    """WSGI environs for each operation, as benchmarks/load.lua sends them."""

    def __init__(self, seeded: dict, base: str, token: str) -> None:
        self.seeded, self.base, self.token, self.k = seeded, base, token, 0

    def make(self, operation: str) -> dict:
        self.k += 1
        s, k = self.seeded, self.k
        system = s["template"]["identifier"][0]["system"]
        if operation == "read":
            return self._environ("GET", f"/MedicationRequest/{s['ids'][k % len(s['ids'])]}")
        if operation == "identifier":
            return self._environ(
                "GET", "/MedicationRequest", f"identifier={system}|{s['items'][k % len(s['items'])]}"
            )
        if operation == "patient":
            return self._environ(
                "GET", "/MedicationRequest", f"patient={s['patients'][k % len(s['patients'])]}&status=active"
            )
        if operation == "create":
            return self._environ("POST", "/MedicationRequest", body=self._new())
        if operation == "conditional":
            item = s["items"][k % len(s["items"])]
            return self._environ(
                "POST", "/MedicationRequest", body=self._new(), none_exist=f"identifier={system}|{item}"
            )
        entries = [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": self._new(),
                "request": {"method": "POST", "url": "MedicationRequest"},
            }
            for _ in range(10)
        ]
        return self._environ(
            "POST", "", body={"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )

    def _new(self) -> dict:
        content = json.loads(json.dumps(self.seeded["template"]))
        content["identifier"][0]["value"] = str(uuid.uuid4()).upper()
        return content

    def _environ(
        self, method: str, path: str, query: str = "", body: dict | None = None, none_exist: str = ""
    ) -> dict:
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": self.base + path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": "application/fhir+json",
            "HTTP_AUTHORIZATION": f"Bearer {self.token}",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(data)),
        }
        if body is not None:
            environ["CONTENT_TYPE"] = "application/fhir+json"
        if none_exist:
            environ["HTTP_IF_NONE_EXIST"] = none_exist
        return environ


def _call(app, environ: dict) -> None:
    answered = []
    chunks = app(environ, lambda status, headers, exc_info=None: answered.append(status))
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    if not answered[0].startswith(("200", "201")):
        raise SystemExit(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} answered {answered[0]}")


def _admin_url(database_url: str) -> tuple[str, str]:
    base, name = database_url.rsplit("/", 1)
    return f"{base}/postgres", name


def _create_database(database_url: str) -> None:
    import psycopg

    admin, name = _admin_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(database_url: str) -> None:
    import psycopg

    admin, name = _admin_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
