"""Search at scale: N MedicationRequests and N MedicationDispenses on PostgreSQL, timed over HTTP.

    .venv/bin/python benchmarks/search.py [--n 100000] [--database-url postgres://...] [--samples 300]
    .venv/bin/python benchmarks/search.py --n 500000 --database-url postgres://postgres@127.0.0.1:5432/dmed_bench_1m

Seeds the data once (bulk inserts of the same rows the API writes, index rows included; it first
checks the disk has room for them, and says how long seeding took), starts gunicorn against that
database, and prints the median and p95 of each search next to a read by id.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ITEM_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-item-number"
DISPENSE_SYSTEM = "https://fhir.nhs.uk/Id/prescription-dispense-item-number"
TOKEN = "bench-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dmed_bench")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")
    _create_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command

    _check_disk(args.n)

    call_command("migrate", verbosity=0)
    node = _seed(args.n)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "dmed.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
            "--preload",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        _wait(port)
        _measure(f"http://127.0.0.1:{port}/{node.slug}/fhir", node, args)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


# What one seeded resource takes on disk at most, with its version and index rows (100,000 of
# each type took about 1.2 GB).
BYTES_PER_RESOURCE = 12_000


def _check_disk(n: int) -> None:
    """Refuse to seed what the disk (of PostgreSQL's data, when it is local) has no room for."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("show data_directory")
        folder = Path(cursor.fetchone()[0])
    where = folder if folder.exists() else Path("/")
    free = shutil.disk_usage(where).free
    needed = 2 * n * BYTES_PER_RESOURCE
    print(f"disk: {free / 1e9:.1f} GB free at {where}; {2 * n} resources take up to {needed / 1e9:.1f} GB")
    if free < needed:
        raise SystemExit("not enough free disk space: seed fewer (--n) or free some")


def _create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            conn.execute(f'create database "{name}"')


def _seed(n: int):
    """Insert n requests (5 per patient, most active) and a dispense for each, unless present."""
    from django.db import transaction
    from django.utils import timezone

    from fhirserver import jsonio
    from fhirserver.indexing import index_rows, save_index_rows
    from fhirserver.models import Resource, ResourceVersion
    from nodes.models import Node
    from nodes.services import api_client_issue

    node, _ = Node.objects.get_or_create(
        slug="bench", defaults={"kind": "broker", "ods_code": "B0001", "name": "Bench"}
    )
    api_client_issue(node=node, name="bench", token=TOKEN, scopes="system/*.rs")
    have = Resource.objects.filter(node=node, resource_type="MedicationRequest").count()
    if have >= n:
        return node
    print(f"seeding {n - have} MedicationRequests and as many MedicationDispenses ...", flush=True)
    started = time.perf_counter()
    batch = 2000
    for offset in range(have, n, batch):
        records, versions, rows = [], [], []
        now = timezone.now()
        for i in range(offset, min(offset + batch, n)):
            item = str(uuid.uuid4())
            request = {
                "resourceType": "MedicationRequest",
                "identifier": [{"system": ITEM_SYSTEM, "value": item}],
                "status": "active" if i % 10 else "completed",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "39720311000001101"}]
                },
                "subject": {"reference": f"Patient/p{i // 5}"},
                "authoredOn": "2026-11-01",
            }
            dispense = {
                "resourceType": "MedicationDispense",
                "identifier": [{"system": DISPENSE_SYSTEM, "value": str(uuid.uuid4())}],
                "status": "completed",
                "medicationCodeableConcept": request["medicationCodeableConcept"],
                "subject": request["subject"],
                "authorizingPrescription": [{"identifier": {"system": ITEM_SYSTEM, "value": item}}],
                "whenHandedOver": "2026-11-02T10:00:00Z",
            }
            for content in (request, dispense):
                logical_id = str(uuid.uuid4())
                body = {
                    "resourceType": content["resourceType"],
                    "id": logical_id,
                    "meta": {"versionId": "1", "lastUpdated": now.isoformat(timespec="milliseconds")},
                }
                body.update(content)
                records.append(
                    (
                        Resource(
                            node=node,
                            resource_type=content["resourceType"],
                            logical_id=logical_id,
                            version_id=1,
                            last_updated=now,
                            text=jsonio.dumps(body),
                        ),
                        content,
                    )
                )
        with transaction.atomic():
            Resource.objects.bulk_create([record for record, _ in records], batch_size=1000)
            for record, content in records:
                versions.append(
                    ResourceVersion(
                        resource=record,
                        node=node,
                        resource_type=record.resource_type,
                        version_id=1,
                        last_updated=now,
                        method="POST",
                        text=record.text,
                    )
                )
                rows += index_rows(record, content)
            ResourceVersion.objects.bulk_create(versions, batch_size=1000)
            save_index_rows(rows)
        print(f"  {min(offset + batch, n)}/{n}", end="\r", flush=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("analyze")
    print(f"\nseeded in {time.perf_counter() - started:.0f} s")
    return node


def _measure(base: str, node, args) -> None:
    import requests

    from fhirserver.models import ReferenceIndex, Resource, TokenIndex

    rng = random.Random(1)
    requests_ids = list(
        Resource.objects.filter(node=node, resource_type="MedicationRequest").values_list(
            "logical_id", flat=True
        )[: args.n]
    )
    picks = [rng.choice(requests_ids) for _ in range(args.samples)]
    items = dict(
        TokenIndex.objects.filter(
            node=node, resource_type="MedicationRequest", param="identifier", resource__logical_id__in=picks
        ).values_list("resource__logical_id", "code")
    )
    patients = dict(
        ReferenceIndex.objects.filter(
            node=node, resource_type="MedicationRequest", param="patient", resource__logical_id__in=picks
        ).values_list("resource__logical_id", "target_id")
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def timed(url: str, expect_total: int | None = None) -> float:
        start = time.perf_counter()
        response = session.get(url, timeout=30)
        elapsed = (time.perf_counter() - start) * 1000
        response.raise_for_status()
        if expect_total is not None:
            assert response.json()["total"] >= expect_total, url
        return elapsed

    for logical_id in picks[:20]:  # warm up both workers
        timed(f"{base}/MedicationRequest/{logical_id}")
    cases = {
        "read by id": [timed(f"{base}/MedicationRequest/{i}") for i in picks],
        "search identifier": [
            timed(f"{base}/MedicationRequest?identifier={ITEM_SYSTEM}|{items[i]}", 1) for i in picks
        ],
        "search prescription:identifier": [
            timed(f"{base}/MedicationDispense?prescription:identifier={ITEM_SYSTEM}|{items[i]}", 1)
            for i in picks
        ],
        "search patient&status=active": [
            timed(f"{base}/MedicationRequest?patient=Patient/{patients[i]}&status=active") for i in picks
        ],
    }
    baseline = statistics.median(cases["read by id"])
    total = Resource.objects.filter(node=node).count()
    print(
        f"dmed search benchmark: {total} resources at one node, PostgreSQL, "
        f"{args.samples} samples each, HTTP via gunicorn"
    )
    for name, samples in cases.items():
        median = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{name:34} median {median:7.2f} ms   p95 {p95:7.2f} ms   {median / baseline:5.2f}x read")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
