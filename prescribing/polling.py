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


def _sent(node: Node, pharmacy: Partner, request: dict) -> bool:
    """True when the request has reached the pharmacy (no sending of it there is undelivered)."""
    sending = Message.objects.filter(
        node=node, partner=pharmacy, key=medication.group_id(request), kind__in=SENDING
    )
    return bool(medication.item_id(request)) and not sending.exclude(status=Message.Status.DELIVERED).exists()


SENDING = ("request.create", "request.renominate")


def dispensers_poll() -> int:
    """Ask dispenser-hosted pharmacies about open requests that are due a poll; return how many."""
    now = timezone.now()
    queued = 0
    for pharmacy in Partner.objects.filter(
        topology=Topology.DISPENSER_HOSTED, role=Partner.Role.PHARMACY
    ).select_related("node"):
        node = pharmacy.node
        params = [
            ("status", "active"),
            ("intended-dispenser:identifier", f"{medication.ODS_SYSTEM}|{pharmacy.ods_code}"),
        ]
        for request in matching(node=node, resource_type="MedicationRequest", params=params, strict=True):
            content = jsonio.loads(request.text)
            if medication.returned(content) or not _sent(node, pharmacy, content):
                continue  # declined there, or not (yet) there: nothing to learn by asking
            # Polls are keyed by item: each item is polled on its own, whatever its siblings do.
            item = medication.item_id(content)
            recent = Message.objects.filter(
                node=node,
                key=item,
                kind="dispense.poll",
                created__gt=now - timedelta(seconds=pharmacy.poll_interval),
            )
            waiting = Message.objects.filter(
                node=node, key=item, kind="dispense.poll", status=Message.Status.PENDING
            )
            if recent.exists() or waiting.exists():
                continue
            with transaction.atomic():
                remote_search(
                    node=node,
                    partner=pharmacy,
                    key=item,
                    resource_type="MedicationDispense",
                    params=[("prescription:identifier", f"{ITEM_SYSTEM}|{item}")],
                    kind="dispense.poll",
                    on_success="exchange.copies.copies_store",
                )
            queued += 1
    return queued
