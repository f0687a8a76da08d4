"""Drive whole prescriptions through one topology against running nodes, with no screen."""

from __future__ import annotations

import statistics
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone

from dispensing import services as dispensing
from exchange.models import Attempt, Message, Subscription, Topology
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.medication import ITEM_SYSTEM, item_id
from fhirserver.models import Resource
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item, request_for_item
from nodes.models import Node
from prescribing import services as prescribing

ITEM = prescribing.Item(
    "39720311000001101", "Paracetamol 500mg soluble tablets", 32, "tablet", "Two when needed"
)


class Command(BaseCommand):
    help = "Issue N prescriptions to a topology's pharmacy, dispense them, and wait for completion."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--topology", required=True, choices=[t.value for t in Topology])
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each phase")

    def handle(self, *args, topology: str, count: int, timeout: float, **options) -> None:
        gp = Node.objects.filter(slug="gp").first()
        pharmacy = Node.objects.filter(slug=f"pharmacy-{topology}").first()
        if gp is None or pharmacy is None:
            raise CommandError(
                "Run `make demo` (or `manage.py seed_demo`) first: the demo nodes are missing."
            )
        started, since = time.monotonic(), timezone.now()
        if topology == Topology.SHARED_RECORD_EVENTS:
            self._wait_subscribed(started, timeout)
        issued: dict[str, float] = {}
        for _ in range(count):
            (request,) = prescribing.prescription_issue(
                node=gp, nhs_number="9449304130", items=[ITEM], pharmacy_ods=pharmacy.ods_code
            )
            issued[item_id(jsonio.loads(request.text))] = time.monotonic()
        self._say(started, f"issued {count} prescription(s) at gp for {pharmacy.slug}")

        arrived = self._wait(
            started,
            timeout,
            issued,
            lambda item: request_for_item(node=pharmacy, item=item),
            "at the pharmacy",
        )
        dispensed: dict[str, float] = {}
        for item in issued:
            copy = request_for_item(node=pharmacy, item=item)
            try:
                dispensing.dispense_start(node=pharmacy, request=copy)
                dispensing.dispense_complete(node=pharmacy, request=copy)
            except FHIRError as exc:
                raise CommandError(f"Dispensing {item} failed: {exc}") from exc
            dispensed[item] = time.monotonic()
        self._say(started, f"dispensed {count} at {pharmacy.slug}")
        completed = self._wait(
            started,
            timeout,
            issued,
            lambda item: _status(request_for_item(node=gp, item=item)) == "completed",
            "completed at gp",
        )

        self._check(gp, pharmacy, issued)
        if topology == Topology.SHARED_RECORD_EVENTS:
            self._check_events(started, since, timeout)
        self._latency("issue → at the pharmacy", [arrived[i] - issued[i] for i in issued])
        self._latency("dispensed → completed at gp", [completed[i] - dispensed[i] for i in issued])
        self._say(started, f"all {count} completed over {topology}; nothing lost, nothing duplicated")

    def _wait(self, started: float, timeout: float, items: dict, done, what: str) -> dict[str, float]:
        reached: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(reached) < len(items):
            for item in items:
                if item not in reached and done(item):
                    reached[item] = time.monotonic()
            if time.monotonic() > deadline:
                dead = Message.objects.filter(status=Message.Status.DEAD).count()
                raise CommandError(
                    f"Only {len(reached)} of {len(items)} {what} after {timeout:.0f} s "
                    f"({dead} dead message(s)); is `make demo` (web, worker, beat) running?"
                )
            time.sleep(0.1)
        self._say(started, f"{len(items)} {what}")
        return reached

    def _check(self, gp: Node, pharmacy: Node, issued: dict) -> None:
        for item in issued:
            copies = matching(
                node=pharmacy,
                resource_type="MedicationRequest",
                params=[("identifier", f"{ITEM_SYSTEM}|{item}")],
                strict=True,
            ).count()
            dispenses = dispenses_for_item(node=gp, item=item)
            if copies != 1:
                raise CommandError(f"{item}: {copies} copies at the pharmacy")
            if dispenses.count() > 1:
                raise CommandError(f"{item}: {dispenses.count()} dispenses at gp")

    def _subscriptions(self):
        """The broker's subscriptions of the gp and the shared-record-events pharmacy."""
        ends = [
            Q(endpoint__endswith=f"/{slug}/notifications") for slug in ("gp", "pharmacy-shared-record-events")
        ]
        return Subscription.objects.filter(ends[0] | ends[1], node__slug="broker")

    def _wait_subscribed(self, started: float, timeout: float) -> None:
        active = self._subscriptions().filter(status=Subscription.Status.ACTIVE)
        deadline = time.monotonic() + timeout
        while active.count() < 2:
            if time.monotonic() > deadline:
                raise CommandError("The gp and the pharmacy are not subscribed at the broker yet.")
            time.sleep(0.2)
        self._say(started, "the gp and the pharmacy are subscribed at the broker")

    def _check_events(self, started: float, since, timeout: float) -> None:
        """Every event notified to them since the start was delivered, each taken once."""
        keys = [subscription.key for subscription in self._subscriptions()]
        events = Message.objects.filter(
            node__slug="broker", kind="subscription.event", key__in=keys, created__gte=since
        )
        deadline = time.monotonic() + timeout
        while events.exclude(status=Message.Status.DELIVERED).exists():  # the last ones in flight
            if time.monotonic() > deadline or events.filter(status=Message.Status.DEAD).exists():
                raise CommandError("Some of the broker's notifications were not delivered.")
            time.sleep(0.1)
        taken = Attempt.objects.filter(message__in=events, status_code__gte=200, status_code__lt=300)
        repeated = taken.values("message").annotate(n=Count("pk")).filter(n__gt=1).count()
        if repeated:
            raise CommandError(f"{repeated} notification(s) were taken more than once.")
        retried = Attempt.objects.filter(message__in=events).count() - taken.count()
        count = events.count()
        self._say(started, f"{count} events notified by the broker, each delivered once ({retried} retries)")

    def _latency(self, label: str, seconds: list[float]) -> None:
        ms = sorted(s * 1000 for s in seconds)
        p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 2 else ms[0]
        self.stdout.write(f"  {label:30} median {statistics.median(ms):8.0f} ms   p95 {p95:8.0f} ms")

    def _say(self, started: float, text: str) -> None:
        self.stdout.write(f"{time.monotonic() - started:7.2f} s  {text}")


def _status(record: Resource | None) -> str:
    return jsonio.loads(record.text)["status"] if record else ""
