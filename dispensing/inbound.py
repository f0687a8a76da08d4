"""What a dispensing node does when a resource is written to its FHIR store."""

from __future__ import annotations

from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from nodes.models import Node


def request_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Refuse a cancellation of a request this pharmacy has dispensed (EPS R-0004)."""
    if node.kind != Node.Kind.DISPENSING or content.get("status") != "cancelled":
        return
    from dispensing.services import dispenses_for

    if any(
        jsonio.loads(d.text).get("status") == "completed" for d in dispenses_for(node=node, request=record)
    ):
        raise FHIRError(
            422,
            "business-rule",
            "R-0004 Not cancelled: the prescription item has already been dispensed.",
            ["MedicationRequest.status"],
        )
