"""Rules of a broker node's shared record."""

from __future__ import annotations

from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.selectors import dispenses_for_item, request_for_item
from nodes.models import Node

CLAIMING = {"in-progress", "completed"}


def dispense_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Refuse a claim on a cancelled or withdrawn item (422), and a second pharmacy's claim on an
    item another pharmacy holds (409)."""
    if node.kind != Node.Kind.BROKER or content.get("status") not in CLAIMING:
        return
    item = medication.prescribed_item(content)
    if not item:
        return
    request = request_for_item(node=node, item=item)
    if request is not None:  # locked: a cancellation of it waits for this claim, or this claim for it
        request = Resource.objects.select_for_update().get(pk=request.pk)
    status = jsonio.loads(request.text).get("status") if request is not None else "active"
    if status not in ("active", "completed"):  # cancelled, expired, or withdrawn from the shared record
        said = "expired" if medication.is_expired(jsonio.loads(request.text)) else status
        raise FHIRError(
            422,
            "business-rule",
            f"This prescription item is {said} in the shared record; it cannot be dispensed here.",
            ["MedicationDispense.authorizingPrescription"],
        )
    claims = dispenses_for_item(node=node, item=item, params=[("status", ",".join(sorted(CLAIMING)))])
    others = claims.exclude(pk=record.pk)
    mine = medication.performer_ods(content)
    for other in others:
        holder = medication.performer_ods(jsonio.loads(other.text))
        if holder != mine:
            raise FHIRError(
                409,
                "conflict",
                f"This prescription item is with another pharmacy ({holder}).",
                ["MedicationDispense.authorizingPrescription"],
            )
