"""Drive whole prescriptions through one topology against running nodes, with no screen."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Q
from django.utils import timezone

from dispensing import services as dispensing
from engine.models import Relay
from exchange.models import SHARED_RECORDS, Attempt, Message, Subscription, Topology
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.medication import ITEM_SYSTEM, item_id, request_build
from fhirserver.models import Resource, ResourceVersion
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item, request_for_item
from nodes.demo_engine import ENGINE, FORMULARY, FORMULARY_CODES, TRUST
from nodes.models import Node
from prescribing import services as prescribing

ITEM = prescribing.Item(
    "39720311000001101", "Paracetamol 500mg soluble tablets", 32, "tablet", "Two when needed"
)
# Who prescribes, by the route to the broker: the GP directly, or the trust through its engine.
VIA = {"": "gp", "integration-engine": TRUST}


class Command(BaseCommand):
    help = "Issue N prescriptions to a topology's pharmacy, dispense them, and wait for completion."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--topology", required=True, choices=[t.value for t in Topology])
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each phase")
        parser.add_argument(
            "--rate",
            type=float,
            default=0,
            help="issue (and then dispense) at most this many prescriptions a second; 0, the default, "
            "issues them all at once, which measures the queue more than the latency",
        )
        parser.add_argument(
            "--via",
            choices=[v for v in VIA if v],
            default="",
            help="prescribe at the hospital trust, which reaches the broker through its integration engine "
            "(with a local formulary code the engine maps to dm+d)",
        )

    def handle(
        self, *args, topology: str, count: int, timeout: float, via: str, rate: float, **options
    ) -> None:
        gp = Node.objects.filter(slug=VIA[via]).first()
        pharmacy = Node.objects.filter(slug=f"pharmacy-{topology}").first()
        if gp is None or pharmacy is None:
            raise CommandError(
                "Run `make demo` (or `manage.py seed_demo`) first: the demo nodes are missing."
            )
        if via and topology not in SHARED_RECORDS:
            raise CommandError("An integration engine stands before a broker: use a shared-record topology.")
        self.gp, self.pharmacy = gp, pharmacy
        started, since = time.monotonic(), timezone.now()
        if topology == Topology.SHARED_RECORD_EVENTS:
            self._wait_subscribed(started, timeout)
        at_pharmacy, at_gp = Versions(pharmacy), Versions(gp)
        issued: dict[str, datetime] = {}
        for _ in _paced(count, rate):
            request = self._issue(gp, pharmacy, local=bool(via))
            issued[item_id(jsonio.loads(request.text))] = timezone.now()
        self._say(started, f"issued {count} prescription(s) at {gp.slug} for {pharmacy.slug}")

        arrived = self._wait(started, timeout, issued, lambda: at_pharmacy.stored, "at the pharmacy")
        dispensed: dict[str, datetime] = {}
        for item, _ in zip(issued, _paced(count, rate), strict=True):
            copy = request_for_item(node=pharmacy, item=item)
            try:
                dispensing.dispense_start(node=pharmacy, request=copy)
                dispensing.dispense_complete(node=pharmacy, request=copy)
            except FHIRError as exc:
                raise CommandError(f"Dispensing {item} failed: {exc}") from exc
            dispensed[item] = timezone.now()
        self._say(started, f"dispensed {count} at {pharmacy.slug}")
        completed = self._wait(started, timeout, issued, lambda: at_gp.completed, f"completed at {gp.slug}")

        self._check(gp, pharmacy, issued)
        if via:
            self._check_engine(started, since, issued, timeout)
        if topology == Topology.SHARED_RECORD_EVENTS:
            self._check_events(started, since, timeout)
        self._latency("issue → at the pharmacy", [arrived[i] - issued[i] for i in issued])
        self._latency(f"dispensed → completed at {gp.slug}", [completed[i] - dispensed[i] for i in issued])
        self._throughput(min(issued.values()), max(completed.values()), count)
        self._say(started, f"all {count} completed over {topology}; nothing lost, nothing duplicated")

    def _issue(self, gp: Node, pharmacy: Node, *, local: bool) -> Resource:
        if not local:
            (request,) = prescribing.prescription_issue(
                node=gp, nhs_number="9449304130", items=[ITEM], pharmacy_ods=pharmacy.ods_code
            )
            return request
        content = request_build(
            item_id=str(uuid.uuid4()),
            group_id=prescribing.prescription_id_new(gp),
            long_id=str(uuid.uuid4()),
            nhs_number="9449304130",
            prescriber_ods=gp.ods_code,
            pharmacy_ods=pharmacy.ods_code,
            code=ITEM.code,
            display=ITEM.display,
            quantity=ITEM.quantity,
            unit=ITEM.unit,
            dosage=ITEM.dosage,
            authored_on=timezone.now(),
        )
        code, name, _ = FORMULARY_CODES[0]  # as the trust's own system codes it
        content["medicationCodeableConcept"] = {
            "coding": [{"system": FORMULARY, "code": code, "display": name}]
        }
        return prescribing.request_issue(node=gp, content=content).resource

    def _wait(self, started: float, timeout: float, items: dict, reached, what: str) -> dict[str, datetime]:
        """Wait until every item has reached a point; return when each did (reached() reads the
        times the nodes stored, so the figures do not depend on how often this looks)."""
        deadline = time.monotonic() + timeout
        while not items.keys() <= reached().keys():
            if time.monotonic() > deadline:
                dead = Message.objects.filter(status=Message.Status.DEAD).count()
                done = len(items.keys() & reached().keys())
                raise CommandError(
                    f"Only {done} of {len(items)} {what} after {timeout:.0f} s "
                    f"({dead} dead message(s)); is `make demo` (web, worker, beat) running?"
                )
            time.sleep(0.1)
        self._say(started, f"{len(items)} {what}")
        return {item: reached()[item] for item in items}

    def _check(self, gp: Node, pharmacy: Node, issued: dict) -> None:
        for item in issued:
            _one_copy(pharmacy, item)
            dispenses = dispenses_for_item(node=gp, item=item)
            if dispenses.count() > 1:
                raise CommandError(f"{item}: {dispenses.count()} dispenses at {gp.slug}")

    def _check_engine(self, started: float, since, issued: dict, timeout: float) -> None:
        """Through the engine: each prescription reached the broker once, and nothing the engine
        held is left waiting or dead."""
        broker = Node.objects.get(slug="broker")
        for item in issued:
            _one_copy(broker, item)
        held = Message.objects.filter(node__kind=Node.Kind.INTEGRATION_ENGINE, created__gte=since)
        deadline = time.monotonic() + timeout
        while held.filter(status=Message.Status.PENDING).exists():
            if time.monotonic() > deadline:
                raise CommandError("Messages held at the engine are still waiting.")
            time.sleep(0.1)
        if held.filter(status=Message.Status.DEAD).exists():
            raise CommandError("Some messages held at the engine could not be forwarded.")
        relays = Relay.objects.filter(created__gte=since)
        passed = relays.filter(outcome=Relay.Outcome.PASSED).count()
        queued = relays.filter(outcome=Relay.Outcome.QUEUED).count()
        self._say(
            started, f"{relays.count()} requests through the engine: {passed} passed at once, {queued} held"
        )

    def _subscriptions(self):
        """The broker's subscriptions of the prescriber and the shared-record-events pharmacy
        (the trust's endpoint is its engine's)."""
        ends = Q(endpoint__endswith=f"/{self.pharmacy.slug}/notifications") | Q(
            endpoint__endswith=f"/{self.gp.slug}/notifications"
        )
        if self.gp.slug == TRUST:
            ends |= Q(endpoint__endswith=f"/{ENGINE}/notifications/{self.gp.ods_code}")
        return Subscription.objects.filter(ends, node__slug="broker")

    def _wait_subscribed(self, started: float, timeout: float) -> None:
        active = self._subscriptions().filter(status=Subscription.Status.ACTIVE)
        deadline = time.monotonic() + timeout
        while active.count() < 2:
            if time.monotonic() > deadline:
                raise CommandError(f"{self.gp.slug} and the pharmacy are not subscribed at the broker yet.")
            time.sleep(0.2)
        self._say(started, f"{self.gp.slug} and the pharmacy are subscribed at the broker")

    def _check_events(self, started: float, since, timeout: float) -> None:
        """Every event notified to them since the start was delivered, each taken once (a
        notification may carry several)."""
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
        count = sum(context.get("events", 1) for context in events.values_list("context", flat=True))
        self._say(
            started,
            f"{count} events notified by the broker, each delivered once "
            f"(in {events.count()} notifications; {retried} retries)",
        )

    def _latency(self, label: str, delays: list[timedelta]) -> None:
        ms = sorted(delay.total_seconds() * 1000 for delay in delays)
        p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) >= 2 else ms[0]
        self.stdout.write(f"  {label:30} median {statistics.median(ms):8.0f} ms   p95 {p95:8.0f} ms")

    def _throughput(self, first: datetime, last: datetime, count: int) -> None:
        """Whole prescriptions a second, from the first issue to the last completion."""
        seconds = (last - first).total_seconds()
        self.stdout.write(
            f"  throughput                     {count / seconds:8.1f} prescriptions/s "
            f"({count} issued, dispensed and completed in {seconds:.1f} s)"
        )

    def _say(self, started: float, text: str) -> None:
        self.stdout.write(f"{time.monotonic() - started:7.2f} s  {text}")


class Versions:
    """The MedicationRequest versions a node stores from now on, read as they come (one query
    for the new ones each time): when each line item first arrived, and first completed."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.after = ResourceVersion.objects.filter(node=node).aggregate(n=Max("pk"))["n"] or 0
        self._stored: dict[str, datetime] = {}
        self._completed: dict[str, datetime] = {}

    @property
    def stored(self) -> dict[str, datetime]:
        self._read()
        return self._stored

    @property
    def completed(self) -> dict[str, datetime]:
        self._read()
        return self._completed

    def _read(self) -> None:
        new = ResourceVersion.objects.filter(
            node=self.node, resource_type="MedicationRequest", pk__gt=self.after
        ).order_by("pk")
        for pk, text, when in new.values_list("pk", "text", "last_updated"):
            self.after = pk
            content = jsonio.loads(text) if text else {}
            item = item_id(content)
            self._stored.setdefault(item, when)
            if content.get("status") == "completed":
                self._completed.setdefault(item, when)


def _one_copy(node: Node, item: str) -> None:
    copies = matching(
        node=node,
        resource_type="MedicationRequest",
        params=[("identifier", f"{ITEM_SYSTEM}|{item}")],
        strict=True,
    ).count()
    if copies != 1:
        raise CommandError(f"{item}: {copies} copies at {node.slug}")


def _paced(count: int, rate: float):
    """Yield 0..count-1, the n-th not before n / rate seconds from the first (at once for 0)."""
    began = time.monotonic()
    for number in range(count):
        if rate > 0:
            time.sleep(max(0.0, began + number / rate - time.monotonic()))
        yield number
