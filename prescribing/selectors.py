"""What the prescriber's screen shows: its prescriptions as the exchange has left them."""

from __future__ import annotations

from dataclasses import dataclass

from exchange.models import Partner
from fhirserver import jsonio, medication
from fhirserver.models import Resource
from nodes.models import Node


@dataclass(frozen=True)
class PrescriptionRow:
    prescription_id: str
    medication: str
    nhs_number: str
    pharmacy: str
    status: str
    returned: bool
    dispense: str  # the latest dispense status this node knows of ("" for none)
    outcomes: list[str]  # cancellation outcomes, e.g. "R-0004 Prescription/item was not cancelled ..."


def prescriptions(*, node: Node, limit: int = 50) -> list[PrescriptionRow]:
    """Return the node's newest MedicationRequests, with what it knows of their dispenses."""
    requests = Resource.objects.filter(node=node, resource_type="MedicationRequest", deleted=False)
    dispenses = Resource.objects.filter(node=node, resource_type="MedicationDispense", deleted=False)
    latest: dict[str, str] = {}
    for dispense in dispenses.order_by("last_updated").values_list("text", flat=True):
        content = jsonio.loads(dispense)
        latest[medication.prescribed_item(content)] = content.get("status", "")
    names = dict(Partner.objects.filter(node=node).values_list("ods_code", "name"))
    rows = []
    for text in requests.order_by("-pk").values_list("text", flat=True)[:limit]:
        content = jsonio.loads(text)
        nominated = medication.nominated_ods(content)
        rows.append(
            PrescriptionRow(
                prescription_id=medication.group_id(content),
                medication=_display(content),
                nhs_number=content.get("subject", {}).get("identifier", {}).get("value", ""),
                pharmacy=f"{names.get(nominated, nominated)} ({nominated})" if nominated else "",
                status=content.get("status", ""),
                returned=medication.returned(content),
                dispense=latest.get(medication.item_id(content), ""),
                outcomes=[
                    f"{code} {medication.CANCELLATION_OUTCOMES.get(code, '')}".strip()
                    for code in medication.status_history(content)
                ],
            )
        )
    return rows


def _display(request: dict) -> str:
    codings = request.get("medicationCodeableConcept", {}).get("coding", [])
    return next((c["display"] for c in codings if c.get("display")), "")
