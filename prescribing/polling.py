"""Dispenser-hosted: the prescriber asks each pharmacy about its open requests (a beat task, at
each route's interval) until they reach a terminal status."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from exchange.models import Message, Partner, Topology
from exchange.remote import remote_search
from fhirserver import jsonio, medication
from fhirserver.medication import ITEM_SYSTEM
from fhirserver.search import matching
from nodes.models import Node

SENDING = ("request.create", "request.renominate")
# Items asked about in one search (`prescription:identifier` takes a list: any of them), and the
# dispenses its page may hold (a partial supply makes several dispenses of one item).
ITEMS_A_POLL = 20
DISPENSES_A_POLL = 200


def dispensers_poll() -> int:
    """Ask each dispenser-hosted pharmacy whose interval has passed about its open requests, in
    searches of ITEMS_A_POLL items each; return how many searches were queued. A route's polls
    are one queue (its key), and a route with a poll still pending is not asked again: however
    many requests are open, a pharmacy gets a few searches an interval, not one a request."""
    now = timezone.now()
    queued = 0
    for pharmacy in Partner.objects.filter(
        topology=Topology.DISPENSER_HOSTED, role=Partner.Role.PHARMACY
    ).select_related("node"):
        node = pharmacy.node
        polls = Message.objects.filter(node=node, partner=pharmacy, kind="dispense.poll")
        recent = polls.filter(created__gt=now - timedelta(seconds=pharmacy.poll_interval))
        if recent.exists() or polls.filter(status=Message.Status.PENDING).exists():
            continue
        items = _owed(node, pharmacy)
        with transaction.atomic():
            for start in range(0, len(items), ITEMS_A_POLL):
                chosen = items[start : start + ITEMS_A_POLL]
                remote_search(
                    node=node,
                    partner=pharmacy,
                    key=f"poll-{pharmacy.ods_code}",
                    resource_type="MedicationDispense",
                    params=[
                        ("prescription:identifier", ",".join(f"{ITEM_SYSTEM}|{item}" for item in chosen)),
                        ("_count", str(DISPENSES_A_POLL)),
                    ],
                    kind="dispense.poll",
                    on_success="exchange.copies.copies_store",
                )
                queued += 1
    return queued


def _owed(node: Node, pharmacy: Partner) -> list[str]:
    """The items of the node's open requests at the pharmacy, but those it declined and those
    not (yet) there (a sending of their prescription undelivered): nothing to learn by asking."""
    params = [
        ("status", "active"),
        ("intended-dispenser:identifier", f"{medication.ODS_SYSTEM}|{pharmacy.ods_code}"),
    ]
    unsent = set(
        Message.objects.filter(node=node, partner=pharmacy, kind__in=SENDING)
        .exclude(status=Message.Status.DELIVERED)
        .values_list("key", flat=True)
    )
    items = []
    for request in matching(node=node, resource_type="MedicationRequest", params=params, strict=True):
        content = jsonio.loads(request.text)
        item = medication.item_id(content)
        if item and not medication.returned(content) and medication.group_id(content) not in unsent:
            items.append(item)
    return items
