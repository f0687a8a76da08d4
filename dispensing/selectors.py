"""What the pharmacist's screen shows."""

from __future__ import annotations

from dataclasses import dataclass

from dispensing.services import dispenses_for, worklist
from fhirserver import jsonio, medication
from nodes.models import Node


@dataclass(frozen=True)
class WorklistRow:
    prescription_id: str
    medication: str
    nhs_number: str
    prescriber: str
    quantity: str
    dispense: str  # "in-progress" once claimed here, else ""


def worklist_rows(*, node: Node, limit: int = 50) -> list[WorklistRow]:
    """Return the active requests this pharmacy holds and has not declined, oldest first."""
    rows = []
    for record in worklist(node=node)[:limit]:
        content = jsonio.loads(record.text)
        quantity = content.get("dispenseRequest", {}).get("quantity", {})
        claimed = [jsonio.loads(d.text).get("status") for d in dispenses_for(node=node, request=record)]
        codings = content.get("medicationCodeableConcept", {}).get("coding", [])
        rows.append(
            WorklistRow(
                prescription_id=medication.group_id(content),
                medication=next((c["display"] for c in codings if c.get("display")), ""),
                nhs_number=content.get("subject", {}).get("identifier", {}).get("value", ""),
                prescriber=medication.requester_ods(content),
                quantity=f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip(),
                dispense="in-progress" if "in-progress" in claimed else "",
            )
        )
    return rows
