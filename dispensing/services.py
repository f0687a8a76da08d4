"""The dispensing workflow: the worklist, claim, complete and decline."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from exchange.models import Partner, Topology
from exchange.remote import partner_for, remote_create
from fhirserver import jsonio, medication, services
from fhirserver.errors import FHIRError
from fhirserver.medication import DISPENSE_SYSTEM, ITEM_SYSTEM
from fhirserver.models import Resource
from fhirserver.search import matching
from nodes.models import Node

# Topologies in which the pharmacy sends its dispense to the prescriber.
PUSHED_TO_PRESCRIBER = {Topology.PEER_TO_PEER, Topology.PRESCRIBER_HOSTED}


def worklist(*, node: Node) -> QuerySet[Resource]:
    """Return the active requests this pharmacy holds, oldest first."""
    return matching(
        node=node, resource_type="MedicationRequest", params=[("status", "active")], strict=True
    ).order_by("pk")


def dispenses_for(*, node: Node, request: Resource) -> QuerySet[Resource]:
    """Return this pharmacy's dispenses for a request."""
    item = medication.item_id(jsonio.loads(request.text))
    params = [("prescription:identifier", f"{ITEM_SYSTEM}|{item}")]
    return matching(node=node, resource_type="MedicationDispense", params=params, strict=True)


@transaction.atomic
def dispense_claim(*, node: Node, request: Resource) -> Resource:
    """Take the request on: a MedicationDispense in progress, which a polling prescriber sees."""
    return _record(node, request, status="in-progress")


@transaction.atomic
def dispense_complete(*, node: Node, request: Resource, days_supply: int | None = None) -> Resource:
    """Hand the medicine over: the dispense is completed and shared along the route."""
    return _record(node, request, status="completed", days_supply=days_supply)


@transaction.atomic
def dispense_decline(*, node: Node, request: Resource, reason_code: str = "0002") -> Resource:
    """Decline the request (returned to the prescriber, who may send it elsewhere)."""
    return _record(node, request, status="declined", reason_code=reason_code)


def _record(node: Node, request: Resource, *, status: str, days_supply=None, reason_code=None) -> Resource:
    request = Resource.objects.select_for_update().get(pk=request.pk)
    content = jsonio.loads(request.text)
    if content["status"] != "active":
        raise FHIRError(
            409, "business-rule", f"This prescription is {content['status']}; it cannot be dispensed."
        )
    existing = [
        r for r in dispenses_for(node=node, request=request) if jsonio.loads(r.text)["status"] != "declined"
    ]
    if existing and jsonio.loads(existing[0].text)["status"] == "completed":
        raise FHIRError(409, "business-rule", "This prescription item has been dispensed already.")
    dispense = medication.dispense_build(
        request=content,
        dispense_id=str(uuid.uuid4()),
        status=status,
        pharmacy_ods=node.ods_code,
        when=timezone.now(),
        days_supply=days_supply,
        reason_code=reason_code,
    )
    if existing:  # a claim becomes the completed dispense, keeping its identifier
        previous = jsonio.loads(existing[0].text)
        dispense = {**dispense, "id": previous["id"], "identifier": previous["identifier"]}
        record = services.resource_update(
            node=node, resource_type="MedicationDispense", logical_id=previous["id"], content=dispense
        ).resource
    else:
        record = services.resource_create(
            node=node, resource_type="MedicationDispense", content=dispense
        ).resource
    if status in ("completed", "declined"):
        _share(node, content, dispense)
    return record


def _share(node: Node, request: dict, dispense: dict) -> None:
    prescriber = partner_for(node=node, ods_code=medication.requester_ods(request))
    if prescriber.role != Partner.Role.PRESCRIBER:
        raise FHIRError(422, "business-rule", f"{prescriber.name} is not a prescriber.")
    if prescriber.topology == Topology.DISPENSER_HOSTED:
        return  # the prescriber polls this pharmacy
    if prescriber.topology not in PUSHED_TO_PRESCRIBER:
        raise FHIRError(501, "not-supported", f"The {prescriber.topology} topology is not built yet.")
    clean = {k: v for k, v in dispense.items() if k not in ("id", "meta")}
    remote_create(
        node=node,
        partner=prescriber,
        key=medication.group_id(request),
        content=clean,
        identifier=(DISPENSE_SYSTEM, dispense["identifier"][0]["value"]),
        kind=f"dispense.{dispense['status']}",
    )
