"""What auditing costs a read: the same reads through gunicorn with AuditEvents on and off.

.venv/bin/python benchmarks/audit.py [-n 1000]

Each run gets a fresh SQLite database under a temporary DMED_VAR_DIR, one node, one client and one
MedicationRequest; it then times n sequential reads of it by id (keep-alive), with auditing on
(the reads' AuditEvents through the buffer, as in production) and off, and prints both and their
ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dmed.gunicorn_conf import gunicorn_command

ROOT = Path(__file__).resolve().parent.parent
SEED = """
from fhirserver.services import resource_create
from nodes.models import Node
from nodes.services import api_client_issue
from tests.factories import make_medication_request
node = Node.objects.create(slug="bench", kind="broker", ods_code="B3NCH", name="Benchmark")
api_client_issue(node=node, name="bench", token="bench-token", scopes="system/*.cruds")
stored = resource_create(node=node, resource_type="MedicationRequest", content=make_medication_request())
print(stored.resource.logical_id)
"""
COUNT = (
    "from fhirserver.models import Resource; "
    "print(Resource.objects.filter(resource_type='AuditEvent').count())"
)


def run(audit: bool, n: int, port: int) -> tuple[list[float], int]:
    with tempfile.TemporaryDirectory() as var:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the embedded SQLite
        env |= {"DMED_VAR_DIR": var, "AUDIT_ENABLED": str(audit).lower()}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        logical_id = subprocess.run(
            [*manage, "shell", "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.split()[-1]
        server = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}"),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/bench/fhir/MedicationRequest/{logical_id}"
            session = requests.Session()
            session.headers["Authorization"] = "Bearer bench-token"
            for _ in range(100):  # until it answers, then warm both workers
                try:
                    session.get(url, timeout=5)
                except requests.ConnectionError:
                    time.sleep(0.1)
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                response = session.get(url, timeout=30)
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
            time.sleep(1.5)  # the buffer's last flush
            count = subprocess.run(
                [*manage, "shell", "-c", COUNT],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            ).stdout.split()[-1]  # fmt: skip
            return samples, int(count)
        finally:
            server.terminate()
            server.wait()


def line(name: str, samples: list[float], baseline: float | None) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    ratio = f"{median / baseline:5.2f}x" if baseline else "baseline"
    return f"{name:28} median {median:6.2f} ms   p95 {p95:6.2f} ms   {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    off, off_events = run(False, args.n, args.port)
    on, on_events = run(True, args.n, args.port)
    baseline = statistics.median(off)
    print(line("read, auditing off", off, None))
    print(line("read, auditing on", on, baseline))
    print(f"AuditEvents written: {off_events} off, {on_events} on (of {args.n} reads and the warm-up)")


if __name__ == "__main__":
    main()
