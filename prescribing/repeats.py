"""Electronic repeat dispensing at the prescriber: each later issue is released to the nominated
pharmacy when due, by a beat task. An issue is due the supply interval after the previous one was
dispensed, and is released 7 days before that (DOMAIN.md); none after the authorisation ends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fhirserver import jsonio, medication
from fhirserver.models import Resource
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item, requests_for_prescription
from nodes.models import Node
from prescribing.services import request_issue

RELEASED_AHEAD = timedelta(days=7)


@dataclass(frozen=True)
class Chain:
    """One line item's issues, the original (issue 1) first."""

    original: Resource
    issues: list[Resource]

    @property
    def latest(self) -> dict:
        return jsonio.loads(self.issues[-1].text)

    @property
    def authorisation(self) -> dict:
        return jsonio.loads(self.original.text)


def chains(*, node: Node) -> list[Chain]:
    """Return the node's repeat dispensing chains."""
    originals = matching(
        node=node, resource_type="MedicationRequest", params=[("intent", "original-order")], strict=True
    )
    return [
        chain_of(node=node, original=r) for r in originals if medication.course(jsonio.loads(r.text)) == "erd"
    ]


def chain_of(*, node: Node, original: Resource) -> Chain:
    content = jsonio.loads(original.text)
    item = medication.item_id(content)
    issues = [
        record
        for record in requests_for_prescription(node=node, prescription_id=medication.group_id(content))
        if medication.original_item(jsonio.loads(record.text)) == item
    ]
    issues.sort(key=lambda r: medication.issue_number(jsonio.loads(r.text)) or 0)
    return Chain(original=original, issues=issues)


def next_due(*, node: Node, chain: Chain) -> datetime | None:
    """Return when the chain's next issue is due: the supply interval after its latest issue was
    dispensed. None when no more will come (all issued, authorisation ended, the latest issue
    cancelled or expired) or the latest is not dispensed yet."""
    latest, authorisation = chain.latest, chain.authorisation
    number, allowed = medication.issue_number(latest) or 1, medication.issues_allowed(authorisation) or 1
    interval = medication.supply_interval(authorisation)
    if number >= allowed or latest["status"] != "completed" or interval is None:
        return None
    handed = [
        parse_datetime(jsonio.loads(d.text).get("whenHandedOver", ""))
        for d in dispenses_for_item(
            node=node, item=medication.item_id(latest), params=[("status", "completed")]
        )
    ]
    dispensed = max(
        (moment for moment in handed if moment is not None), default=chain.issues[-1].last_updated
    )
    due = dispensed + interval
    ends = medication.authorisation_ends(authorisation)
    return None if ends is not None and due > ends else due


def repeats_release(*, node: Node, now: datetime | None = None) -> int:
    """Release every issue due within 7 days, along its route; return how many."""
    now = now or timezone.now()
    released = 0
    for chain in chains(node=node):
        due = next_due(node=node, chain=chain)
        if due is None or now < due - RELEASED_AHEAD:
            continue
        with transaction.atomic():
            original = Resource.objects.select_for_update().get(pk=chain.original.pk)
            chain = chain_of(node=node, original=original)  # as it is now the chain is locked
            if next_due(node=node, chain=chain) != due:
                continue  # released, or changed, meanwhile
            latest = chain.latest
            issue = medication.next_issue(
                chain.authorisation,
                number=(medication.issue_number(latest) or 1) + 1,
                item_id=str(uuid.uuid4()),
                when=now,
            )
            # To the pharmacy the latest issue went to (it may have been re-nominated).
            issue["dispenseRequest"] = {**issue["dispenseRequest"], **_performer(latest)}
            request_issue(node=node, content=issue)
        released += 1
    return released


def _performer(request: dict) -> dict:
    performer = request.get("dispenseRequest", {}).get("performer")
    return {"performer": performer} if performer else {}
