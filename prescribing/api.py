"""The guide's trigger at a prescribing node: an outside system issues a prescription by writing
an active MedicationRequest to the node's FHIR API, and cancels it by updating it to cancelled.
Either is carried out by the same services as the screens."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.utils import timezone

from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.nhs import (
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    PRESCRIPTION_ID_SYSTEM,
    nhs_number_is_valid,
    prescription_id_problem,
)
from fhirserver.triggers import Taken, Write
from nodes.models import Node
from prescribing.services import prescription_cancel, prescription_id_new, request_issue


def request_written(write: Write) -> Callable[[], Taken] | None:
    """Issue a request written `active` (created, or updated from draft); cancel one updated from
    active to `cancelled` (a repeat dispensing one also once dispensed: its issues to come). An
    issued request changes only by cancellation."""
    if write.node.kind != Node.Kind.PRESCRIBING:
        return None
    status, before = write.content.get("status"), (write.current or {}).get("status")
    repeats_to_come = before == "completed" and medication.course(write.current) == "erd"
    if before == "active" or repeats_to_come:
        if status == "cancelled":
            return lambda: _cancel(write)
        raise FHIRError(
            409,
            "business-rule",
            "An issued prescription changes only by cancellation (status cancelled, with a statusReason).",
            ["MedicationRequest.status"],
        )
    if status != "active":
        return None
    if before not in (None, "draft"):
        raise FHIRError(
            409,
            "business-rule",
            f"This request is {before}; only a new request or a draft can be issued.",
            ["MedicationRequest.status"],
        )
    return lambda: _issue(write)


def _issue(write: Write) -> Taken:
    content = _identified(write)
    result = request_issue(node=write.node, content=content, logical_id=write.logical_id)
    return Taken(result.resource, 201 if result.created else 200)


def _identified(write: Write) -> dict:
    """Return the request with what the route needs: its line-item identifier and Prescription ID
    (assigned when missing, one ID for the requests of one transaction; refused when invalid),
    the prescribing organisation, a valid NHS number, when it was authored."""
    content = {key: value for key, value in write.content.items() if key not in ("id", "meta")}
    identifiers = content.get("identifier", [])
    if not medication.item_id(content):
        content["identifier"] = [*identifiers, {"system": medication.ITEM_SYSTEM, "value": str(uuid.uuid4())}]
    group = content.get("groupIdentifier")
    if not group or not group.get("value"):
        shared = write.caller.shared
        if "prescription_id" not in shared:
            shared["prescription_id"] = prescription_id_new(write.node)
            shared["long_id"] = str(uuid.uuid4())
        content["groupIdentifier"] = {
            "extension": [
                {
                    "url": medication.LONG_FORM_ID,
                    "valueIdentifier": {"system": medication.LONG_FORM_SYSTEM, "value": shared["long_id"]},
                }
            ],
            "system": PRESCRIPTION_ID_SYSTEM,
            "value": shared["prescription_id"],
        }
    else:
        if group.get("system") != PRESCRIPTION_ID_SYSTEM:
            raise FHIRError(
                422,
                "invalid",
                f"groupIdentifier.system must be {PRESCRIPTION_ID_SYSTEM} (the Prescription ID).",
                ["MedicationRequest.groupIdentifier.system"],
            )
        problem = prescription_id_problem(group["value"])
        if problem is not None:
            raise FHIRError(
                422,
                "invalid",
                f"{group['value']!r} is not a valid Prescription ID: {problem}.",
                ["MedicationRequest.groupIdentifier.value"],
            )
    requester = content.get("requester", {}).get("identifier", {})
    if not requester:
        content["requester"] = {
            **content.get("requester", {}),
            "type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": write.node.ods_code},
        }
    elif requester.get("system") != ODS_SYSTEM or requester.get("value") != write.node.ods_code:
        raise FHIRError(
            422,
            "business-rule",
            f"This node prescribes as ODS code {write.node.ods_code}; requester.identifier names another.",
            ["MedicationRequest.requester.identifier"],
        )
    subject = content.get("subject", {}).get("identifier", {})
    if subject.get("system") != NHS_NUMBER_SYSTEM or not nhs_number_is_valid(str(subject.get("value", ""))):
        raise FHIRError(
            422,
            "invalid",
            "subject.identifier must be the patient's NHS number (system "
            f"{NHS_NUMBER_SYSTEM}), a valid one of 10 digits.",
            ["MedicationRequest.subject.identifier"],
        )
    content.setdefault("authoredOn", timezone.now().isoformat(timespec="seconds"))
    return content


def _cancel(write: Write) -> Taken:
    """Cancel along the route; 202 while the system holding the record has still to accept."""
    record = Resource.objects.get(
        node=write.node, resource_type="MedicationRequest", logical_id=write.logical_id
    )
    reason = medication.cancellation_reason(write.content) or "0001"
    if reason not in medication.CANCELLATION_REASONS:
        raise FHIRError(
            422,
            "code-invalid",
            f"statusReason {reason!r} is not a cancellation reason of {medication.CANCELLATION_REASON}.",
            ["MedicationRequest.statusReason"],
        )
    asked = prescription_cancel(node=write.node, request=record, reason_code=reason)
    record.refresh_from_db()
    # Done here (cancelled, or a dispensed issue's repeats to come), or asked of the holder.
    return Taken(
        record, 202 if asked is not None and jsonio.loads(record.text)["status"] != "cancelled" else 200
    )
