"""Expiry at a pharmacy. Where the pharmacy holds the record (peer-to-peer, dispenser-hosted) it
decides by its clock and tells the prescriber as it tells a return; where the prescriber or the
shared record holds it, the pharmacy asks the holder once its copy is due to expire, and keeps
what the holder answers."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from dispensing import services
from dispensing.inbound import HELD_BY_THE_PHARMACY
from exchange.expiry import holder_ask, overdue
from exchange.models import Partner, Topology
from exchange.remote import broker_for
from fhirserver import medication
from nodes.models import Node


def expiries_apply(*, node: Node, now: datetime | None = None) -> int:
    """Expire, or ask about, this pharmacy's active requests past their expiry; return how many."""
    now = now or timezone.now()
    count = 0
    for record, content in overdue(node=node, now=now):
        prescriber = Partner.objects.filter(
            node=node, ods_code=medication.requester_ods(content), role=Partner.Role.PRESCRIBER
        ).first()
        if prescriber is None:
            continue
        if prescriber.topology in HELD_BY_THE_PHARMACY:
            count += services.dispense_expire(node=node, request=record, now=now) is not None
            continue
        holder = prescriber if prescriber.topology == Topology.PRESCRIBER_HOSTED else broker_for(node=node)
        asked = holder_ask(
            node=node, holder=holder, request=content, on_success="exchange.copies.copies_store", now=now
        )
        count += asked is not None
    return count
