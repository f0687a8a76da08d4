"""What a node holding requests with their dispenses does when a request is written to it: a
pharmacy that was sent the request (peer-to-peer, dispenser-hosted), or the broker's shared record."""

from __future__ import annotations

from exchange.models import Partner, Topology
from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from nodes.models import Node

# Where the prescriber keeps the record (prescriber-hosted, shared record), a pharmacy's request is
# a copy of it: the holder has decided, and the copy follows.
HELD_BY_THE_PHARMACY = {Topology.PEER_TO_PEER, Topology.DISPENSER_HOSTED}
# What stops a cancellation, as EPS reports it: the item dispensed, or with a dispenser (claimed,
# supplied in part, or owed).
REFUSALS = {
    "R-0004": "the item has already been dispensed to the patient",
    "R-0003": "the item is with a dispenser, being dispensed",
}


def request_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Refuse a cancellation of a request that is dispensed (R-0004) or being dispensed (R-0003)."""
    if content.get("status") != "cancelled" or not _holds(node, content):
        return
    from dispensing.services import dispenses_for

    taken = [jsonio.loads(d.text) for d in dispenses_for(node=node, request=record)]
    taken = [d for d in taken if d.get("status") in ("in-progress", "completed")]
    if not taken:
        return
    code = (
        "R-0004" if medication.item_supply(content, taken).status == medication.FULLY_DISPENSED else "R-0003"
    )
    raise FHIRError(
        422,
        "business-rule",
        f"{code} Not cancelled: {REFUSALS[code]}.",
        ["MedicationRequest.status"],
        details={
            "system": medication.STATUS_HISTORY_SYSTEM,
            "code": code,
            "display": medication.CANCELLATION_OUTCOMES[code],
        },
    )


def _holds(node: Node, request: dict) -> bool:
    if node.kind == Node.Kind.BROKER:
        return True
    if node.kind != Node.Kind.DISPENSING:
        return False
    prescriber = Partner.objects.filter(node=node, ods_code=medication.requester_ods(request)).first()
    return prescriber is None or prescriber.topology in HELD_BY_THE_PHARMACY
