"""The guide's trigger at a dispensing node: an outside system starts, completes or declines
dispensing by writing a MedicationDispense to the node's FHIR API (in-progress, completed,
declined), and amends its last supply by updating that dispense's quantity. Each is carried out by
the same services as the screens, and sent the way the topology sends it."""

from __future__ import annotations

from collections.abc import Callable

from dispensing import services
from fhirserver import medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.selectors import request_for_item
from fhirserver.triggers import Taken, Write
from nodes.models import Node

TRIGGERS = ("in-progress", "completed", "declined")


def dispense_written(write: Write) -> Callable[[], Taken] | None:
    if write.node.kind != Node.Kind.DISPENSING or write.content.get("status") not in TRIGGERS:
        return None
    status, before = write.content["status"], (write.current or {}).get("status")
    if write.caller.in_bundle:
        raise FHIRError(
            422,
            "not-supported",
            "A dispense that starts, completes or declines dispensing is sent on its own "
            "(POST or PUT MedicationDispense), not in a Bundle.",
            ["MedicationDispense.status"],
        )
    if write.logical_id is not None and write.current is None:
        raise FHIRError(
            422,
            "not-supported",
            "Create a dispense with POST MedicationDispense; this server assigns its id.",
            ["MedicationDispense.id"],
        )
    if (before in ("completed", "declined") and status != "completed") or before == "declined":
        raise FHIRError(
            409,
            "business-rule",
            f"This dispense is {before}; a supply can only be amended (status completed, a corrected "
            "quantity).",
            ["MedicationDispense.status"],
        )
    return lambda: _carry_out(write, before)


def _carry_out(write: Write, before: str | None) -> Taken:
    content, node = write.content, write.node
    request = _request(node, content)
    if medication.performer_ods(content) not in ("", node.ods_code):
        raise FHIRError(
            422,
            "business-rule",
            f"This node dispenses as ODS code {node.ods_code}; performer names another.",
            ["MedicationDispense.performer"],
        )
    dispense_id = next(
        (
            i.get("value")
            for i in content.get("identifier", [])
            if i.get("system") == medication.DISPENSE_SYSTEM
        ),
        None,
    )
    quantity = content.get("quantity", {}).get("value")
    note = "; ".join(n["text"] for n in content.get("note", []) if n.get("text"))
    status = content["status"]
    if before == "completed":
        last = services.last_supply(node=node, request=request)
        if last is None or last.logical_id != write.logical_id:
            raise FHIRError(
                409,
                "business-rule",
                "Only the last supply of an item can be amended.",
                ["MedicationDispense.id"],
            )
        if quantity is None:
            raise FHIRError(
                422, "required", "An amendment gives the corrected quantity.", ["MedicationDispense.quantity"]
            )
        record = services.dispense_amend(node=node, request=request, quantity=quantity, note=note)
    elif status == "in-progress":
        record = services.dispense_start(node=node, request=request, dispense_id=dispense_id)
    elif status == "completed" and (medication.line_status(content) == medication.OWING or quantity == 0):
        record = services.dispense_owing(node=node, request=request, note=note, dispense_id=dispense_id)
    elif status == "completed":
        days = content.get("daysSupply", {}).get("value")
        record = services.dispense_complete(
            node=node,
            request=request,
            quantity=quantity,
            note=note,
            days_supply=int(days) if isinstance(days, int | float) else None,
            dispense_id=dispense_id,
        )
    else:
        codings = content.get("statusReasonCodeableConcept", {}).get("coding", [])
        reason = next(
            (c.get("code") for c in codings if c.get("system") == medication.NOT_DISPENSED_REASON), ""
        )
        if not reason:
            raise FHIRError(
                422,
                "required",
                "A declined dispense says why in statusReasonCodeableConcept "
                f"({medication.NOT_DISPENSED_REASON}).",
                ["MedicationDispense.statusReasonCodeableConcept"],
            )
        record = services.dispense_decline(
            node=node, request=request, reason_code=reason, dispense_id=dispense_id
        )
    return Taken(record, 201 if record.version_id == 1 else 200)  # a claim completed is an update of it


def _request(node: Node, dispense: dict) -> Resource:
    """Return the request held here that the dispense is for (authorizingPrescription)."""
    item = medication.prescribed_item(dispense)
    request = request_for_item(node=node, item=item) if item else None
    if request is None:
        raise FHIRError(
            422,
            "business-rule",
            "authorizingPrescription must identify a prescription item this pharmacy holds "
            f"(identifier system {medication.ITEM_SYSTEM})"
            + (f"; it holds no item {item}." if item else "."),
            ["MedicationDispense.authorizingPrescription"],
        )
    return request
