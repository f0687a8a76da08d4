"""Expiry between nodes. The node holding a prescription's record decides by its own clock that it
has expired (DOMAIN.md: the validity period, else 6 months, 28 days for schedule 2 to 4 controlled
drugs) and stops it; a node keeping a copy of a record held elsewhere asks the holder once its own
clock says the prescription is due to expire, and again until the holder says what became of it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from exchange.models import Message, Partner
from exchange.remote import remote_search
from fhirserver import jsonio, medication, services
from fhirserver.medication import ITEM_SYSTEM
from fhirserver.models import Resource
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item
from nodes.models import Node

ASK = "request.expiry.ask"


def overdue(*, node: Node, now: datetime) -> list[tuple[Resource, dict]]:
    """Return the node's active requests past their expiry, with their content."""
    found = []
    for record in matching(
        node=node, resource_type="MedicationRequest", params=[("status", "active")], strict=True
    ):
        content = jsonio.loads(record.text)
        due = medication.expires_at(content)
        if due is not None and due <= now:
            found.append((record, content))
    return found


def holder_ask(
    *, node: Node, holder: Partner, request: dict, on_success: str, now: datetime
) -> Message | None:
    """Ask the holder of a request's record what became of it (GET by identifier), at most once
    in EXPIRY_ASK_SECONDS and never while an ask is on its way."""
    item = medication.item_id(request)
    since = now - timedelta(seconds=settings.EXPIRY_ASK_SECONDS)
    asked = Message.objects.filter(node=node, key=item, kind=ASK).filter(
        Q(status=Message.Status.PENDING) | Q(created__gt=since)
    )
    if not item or asked.exists():
        return None
    with transaction.atomic():
        return remote_search(
            node=node,
            partner=holder,
            key=item,
            resource_type="MedicationRequest",
            params=[("identifier", f"{ITEM_SYSTEM}|{item}")],
            kind=ASK,
            on_success=on_success,
        )


def broker_expire(*, node: Node, now: datetime) -> int:
    """At a broker: expire the shared record's requests not dispensed in time; return how many.
    A pharmacy's claim on one is refused from then on (exchange.broker)."""
    done = 0
    for record, content in overdue(node=node, now=now):
        with transaction.atomic():  # a claim locks the request too: one of the two goes first
            record = Resource.objects.select_for_update().get(pk=record.pk)
            content = jsonio.loads(record.text)
            if content["status"] != "active" or _dispensed(node, content):
                continue
            services.resource_update(
                node=node,
                resource_type="MedicationRequest",
                logical_id=record.logical_id,
                content=medication.expired(content, now),
            )
        done += 1
    return done


def _dispensed(node: Node, request: dict) -> bool:
    """True when a pharmacy has dispensed the item in full (each pharmacy's supplies apart)."""
    by_pharmacy: dict[str, list[dict]] = {}
    for record in dispenses_for_item(node=node, item=medication.item_id(request)):
        dispense = jsonio.loads(record.text)
        by_pharmacy.setdefault(medication.performer_ods(dispense), []).append(dispense)
    return any(
        medication.item_supply(request, theirs).status == medication.FULLY_DISPENSED
        for theirs in by_pharmacy.values()
    )
