"""Time the FHIR API through HTTP against a running dmed (e.g. `make demo`); print figures and ratios.

.venv/bin/python benchmarks/fhir_api.py [--base URL] [--token TOKEN] [-n 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import django
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")
django.setup()

from exchange.notifications import TOPIC_BASE  # noqa: E402
from exchange.subscriptions import FILTER_CRITERIA, PAYLOAD_CONTENT  # noqa: E402
from fhirserver.nhs import ODS_SYSTEM  # noqa: E402
from tests.factories import identifier_query, make_medication_request  # noqa: E402


def timed(session: requests.Session, method: str, url: str, **kwargs) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    response = session.request(method, url, timeout=30, **kwargs)
    return (time.perf_counter() - start) * 1000, response


def summary(name: str, samples: list[float], baseline: float | None) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)
    ratio = f"{median / baseline:5.2f}x read" if baseline else "   baseline"
    return f"{name:34} median {median:7.2f} ms   p95 {p95:7.2f} ms   {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # The broker's shared record: a store with no prescribing workflow, so an active request is
    # stored as sent (at a GP it would be issued, and only by a client allowed to prescribe).
    parser.add_argument("--base", default="http://127.0.0.1:8000/broker/fhir")
    parser.add_argument("--token", default="broker.dmed-demo")
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {args.token}", "Content-Type": "application/fhir+json"})
    created, reads, conditional, searches = [], [], [], []
    bodies, ids = [], []
    run = uuid.uuid4().hex[:8]
    for _ in range(args.n):
        body = make_medication_request(note=[{"text": f"benchmark {run}"}])
        ms, response = timed(session, "POST", f"{args.base}/MedicationRequest", json=body)
        response.raise_for_status()
        created.append(ms)
        bodies.append(body)
        ids.append(response.json()["id"])
    for logical_id in ids:
        ms, response = timed(session, "GET", f"{args.base}/MedicationRequest/{logical_id}")
        response.raise_for_status()
        reads.append(ms)
    for body in bodies:
        ms, response = timed(
            session,
            "POST",
            f"{args.base}/MedicationRequest",
            json=body,
            headers={"If-None-Exist": identifier_query(body)},
        )
        assert response.status_code == 200, response.text
        conditional.append(ms)
        ms, response = timed(session, "GET", f"{args.base}/MedicationRequest?{identifier_query(body)}")
        assert response.json()["total"] == 1
        searches.append(ms)

    notified = creates_notified(session, args.base, args.n)

    baseline = statistics.median(reads)
    print(f"dmed FHIR API, {args.n} MedicationRequests, {args.base}")
    print(summary("read by id", reads, None))
    print(summary("create", created, baseline))
    print(summary("create, matched by a subscription", notified, baseline))
    print(summary("conditional create (exists)", conditional, baseline))
    print(summary("search by identifier", searches, baseline))


def creates_notified(session: requests.Session, base: str, n: int) -> list[float]:
    """Time creates that a topic subscription (full resource) matches: the event and its outbox
    row are written in the create's transaction. The notifications go to a sink here."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    ods = f"B{uuid.uuid4().hex[:5].upper()}"  # a pharmacy of the benchmark's own
    criterion = f"MedicationRequest?intended-dispenser:identifier={ODS_SYSTEM}|{ods}"
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "benchmark",
        "criteria": TOPIC_BASE + "medication-request",
        "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": criterion}]},
        "channel": {
            "type": "rest-hook",
            "endpoint": f"http://127.0.0.1:{sink.server_address[1]}/",
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": "full-resource"}]},
        },
    }
    response = session.post(f"{base}/Subscription", json=subscription, timeout=30)
    response.raise_for_status()
    created = response.json()
    samples = []
    for _ in range(n):
        body = make_medication_request()
        body["dispenseRequest"]["performer"]["identifier"]["value"] = ods
        ms, response = timed(session, "POST", f"{base}/MedicationRequest", json=body)
        response.raise_for_status()
        samples.append(ms)
    started = time.perf_counter()
    while Sink.taken < n and time.perf_counter() - started < 300:  # let the worker deliver them all
        time.sleep(0.1)
    waited = time.perf_counter() - started
    print(f"{Sink.taken} of {n} notifications delivered in order, the last {waited:.1f} s after the creates")
    current = session.get(f"{base}/Subscription/{created['id']}", timeout=30).json()
    session.put(f"{base}/Subscription/{created['id']}", json={**current, "status": "off"}, timeout=30)
    sink.shutdown()
    return samples


class Sink(BaseHTTPRequestHandler):
    taken = 0  # event notifications received

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"event-notification" in body:
            Sink.taken += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    main()
