"""MedicationRequest and MedicationDispense as the NHS profiles shape them: builders and readers,
so workflow code speaks in services and never in JSON paths."""

from __future__ import annotations

import secrets
from datetime import datetime

from fhirserver.nhs import (
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    PRESCRIPTION_ID_SYSTEM,
    prescription_id_check_character,
)

ITEM_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-item-number"
DISPENSE_SYSTEM = "https://fhir.nhs.uk/Id/prescription-dispense-item-number"
LONG_FORM_ID = "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionId"
LONG_FORM_SYSTEM = "https://fhir.nhs.uk/Id/prescription"
DISPENSE_TYPE = "https://fhir.nhs.uk/CodeSystem/medicationdispense-type"
NOT_DISPENSED_REASON = "https://fhir.nhs.uk/CodeSystem/medicationdispense-status-reason"
CANCELLATION_REASON = "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-reason"
STATUS_HISTORY = "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionStatusHistory"
STATUS_HISTORY_SYSTEM = "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-history"
BUSINESS_STATUS = "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-TaskBusinessStatus"
BUSINESS_STATUS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/EPS-task-business-status"
# Cancellation outcomes as EPS reports them (DOMAIN.md).
CANCELLATION_OUTCOMES = {
    "R-0001": "Prescription/item was cancelled",
    "R-0003": "Prescription item was not cancelled - With dispenser active",
    "R-0004": "Prescription/item was not cancelled - Dispensed to Patient",
    "R-0006": "Prescription/item had already been cancelled",
    "R-0008": "Prescription/item not found",
}
# Why a prescriber cancels (medicationrequest-status-reason, DOMAIN.md).
CANCELLATION_REASONS = {
    "0001": "Prescribing error",
    "0002": "Clinical contra-indication",
    "0003": "Change to medication treatment regime",
    "0004": "Clinical grounds",
    "0005": "At the patient's request",
    "0006": "At the pharmacist's request",
    "0007": "Notification of death",
    "0008": "Patient deducted - other reason",
    "0009": "Patient deducted - registered with new practice",
}
NOT_DISPENSED = "0007"
SNOMED = "http://snomed.info/sct"


def prescription_id(*, ods_code: str, sequence: int) -> str:
    """Return a new short-form Prescription ID: random, the ODS code, a sequence, a check character."""
    data = f"{secrets.token_hex(3).upper()}-{ods_code.upper().rjust(6, '0')}-{sequence % 0x100000:05X}"
    return data + prescription_id_check_character(data)


def request_build(
    *,
    item_id: str,
    group_id: str,
    long_id: str,
    nhs_number: str,
    prescriber_ods: str,
    pharmacy_ods: str | None,
    code: str,
    display: str,
    quantity: float,
    unit: str,
    dosage: str,
    authored_on: datetime,
    unit_code: str = "",
    days_supply: int | None = None,
    course: str = "acute",
    patient_name: str = "",
    prescriber_name: str = "",
) -> dict:
    """Return an active community MedicationRequest for one line item: acute (intent order) or
    repeat (course continuous, intent original-order)."""
    request = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": ITEM_SYSTEM, "value": item_id}],
        "groupIdentifier": {
            "extension": [
                {"url": LONG_FORM_ID, "valueIdentifier": {"system": LONG_FORM_SYSTEM, "value": long_id}}
            ],
            "system": PRESCRIPTION_ID_SYSTEM,
            "value": group_id,
        },
        "status": "active",
        "intent": "order" if course == "acute" else "original-order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                        "code": "community",
                    }
                ]
            }
        ],
        "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number}},
        "authoredOn": authored_on.isoformat(timespec="seconds"),
        "requester": {"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": prescriber_ods}},
        "courseOfTherapyType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    "code": "acute" if course == "acute" else "continuous",
                }
            ]
        },
        "dosageInstruction": [{"text": dosage}],
        "dispenseRequest": {"quantity": {"value": quantity, "unit": unit}},
    }
    if unit_code:
        request["dispenseRequest"]["quantity"] |= {"system": SNOMED, "code": unit_code}
    if days_supply:
        request["dispenseRequest"]["expectedSupplyDuration"] = {
            "value": days_supply,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    if patient_name:
        request["subject"]["display"] = patient_name
    if prescriber_name:  # who prescribed, for the pharmacist; the identifier names the practice
        request["requester"]["display"] = prescriber_name
    if pharmacy_ods:
        request["dispenseRequest"]["performer"] = _organization(pharmacy_ods)
    return request


def dispense_build(
    *,
    request: dict,
    dispense_id: str,
    status: str,
    pharmacy_ods: str,
    when: datetime,
    days_supply: int | None = None,
    reason_code: str | None = None,
) -> dict:
    """Return a MedicationDispense for a request: in-progress (claimed), completed or declined."""
    type_code = {"in-progress": "0008", "completed": "0001", "declined": "0002"}[status]
    dispense = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": DISPENSE_SYSTEM, "value": dispense_id}],
        "status": status,
        "medicationCodeableConcept": request["medicationCodeableConcept"],
        "subject": request["subject"],
        "performer": [{"actor": _organization(pharmacy_ods)}],
        "authorizingPrescription": [{"type": "MedicationRequest", "identifier": request["identifier"][0]}],
        "type": {"coding": [{"system": DISPENSE_TYPE, "code": type_code}]},
    }
    if status == "completed":
        dispense["quantity"] = request["dispenseRequest"]["quantity"]
        if days_supply:
            dispense["daysSupply"] = {
                "value": days_supply,
                "unit": "day",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            }
        dispense["whenHandedOver"] = when.isoformat(timespec="seconds")
    if status == "declined":
        dispense["statusReasonCodeableConcept"] = {
            "coding": [{"system": NOT_DISPENSED_REASON, "code": reason_code or "0002"}]
        }
    return dispense


def _organization(ods_code: str) -> dict:
    return {"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": ods_code}}


def medicine_name(resource: dict) -> str:
    """Return the medicine's name in a MedicationRequest or MedicationDispense."""
    codings = resource.get("medicationCodeableConcept", {}).get("coding", [])
    return next((c["display"] for c in codings if c.get("display")), "")


def quantity_text(quantity: dict) -> str:
    """Return a Quantity as people read it ("28 tablet")."""
    value = quantity.get("value", "")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value} {quantity.get('unit', '')}".strip()


def prescribed_quantity(request: dict) -> dict:
    return request.get("dispenseRequest", {}).get("quantity", {})


def dosage_text(request: dict) -> str:
    return "; ".join(d["text"] for d in request.get("dosageInstruction", []) if d.get("text"))


def cancellation_reason(request: dict) -> str:
    """Return the code of why a request was cancelled ("" when it says not)."""
    codings = request.get("statusReason", {}).get("coding", [])
    return next((c.get("code", "") for c in codings if c.get("system") == CANCELLATION_REASON), "")


def item_id(request: dict) -> str:
    """Return a MedicationRequest's line-item identifier value ("" when it has none)."""
    return next((i["value"] for i in request.get("identifier", []) if i.get("system") == ITEM_SYSTEM), "")


def group_id(request: dict) -> str:
    """Return the Prescription ID shared by a prescription's line items."""
    return request.get("groupIdentifier", {}).get("value", "") or item_id(request)


def requester_ods(request: dict) -> str:
    return request.get("requester", {}).get("identifier", {}).get("value", "")


def nominated_ods(request: dict) -> str:
    return request.get("dispenseRequest", {}).get("performer", {}).get("identifier", {}).get("value", "")


def renominated(request: dict, pharmacy_ods: str) -> dict:
    """Return the request nominating another pharmacy (no longer marked returned)."""
    dispense_request = {**request["dispenseRequest"], "performer": _organization(pharmacy_ods)}
    return {**marked_returned(request, False), "dispenseRequest": dispense_request}


def cancelled(request: dict, reason_code: str) -> dict:
    """Return the request cancelled for a reason (medicationrequest-status-reason)."""
    reason = {"coding": [{"system": CANCELLATION_REASON, "code": reason_code}]}
    return {**request, "status": "cancelled", "statusReason": reason}


def prescribed_item(dispense: dict) -> str:
    """Return the line-item identifier a MedicationDispense was made for."""
    for reference in dispense.get("authorizingPrescription", []):
        identifier = reference.get("identifier") or {}
        if identifier.get("system") == ITEM_SYSTEM:
            return identifier.get("value", "")
    return ""


def performer_ods(dispense: dict) -> str:
    for performer in dispense.get("performer", []):
        return performer.get("actor", {}).get("identifier", {}).get("value", "")
    return ""


def with_status_history(request: dict, *, code: str, when: datetime) -> dict:
    """Return the request recording a cancellation outcome (EPS R-codes), newest last."""
    entry = {
        "url": STATUS_HISTORY,
        "extension": [
            {
                "url": "status",
                "valueCoding": {
                    "system": STATUS_HISTORY_SYSTEM,
                    "code": code,
                    "display": CANCELLATION_OUTCOMES.get(code, code),
                },
            },
            {"url": "statusDate", "valueDateTime": when.isoformat(timespec="seconds")},
        ],
    }
    return {**request, "extension": [*request.get("extension", []), entry]}


def status_history(request: dict) -> list[str]:
    """Return the cancellation outcome codes recorded on a request, oldest first."""
    return [
        part["valueCoding"]["code"]
        for extension in request.get("extension", [])
        if extension.get("url") == STATUS_HISTORY
        for part in extension.get("extension", [])
        if part.get("url") == "status" and "valueCoding" in part
    ]


def returned(request: dict) -> bool:
    """True when the nominated pharmacy declined the request (EPS business status Not Dispensed)."""
    return any(
        extension.get("url") == BUSINESS_STATUS
        and extension.get("valueCoding", {}).get("code") == NOT_DISPENSED
        for extension in request.get("extension", [])
    )


def marked_returned(request: dict, returned_now: bool) -> dict:
    """Return the request marked returned (declined by its pharmacy), or with the mark removed."""
    kept = [e for e in request.get("extension", []) if e.get("url") != BUSINESS_STATUS]
    if returned_now:
        coding = {"system": BUSINESS_STATUS_SYSTEM, "code": NOT_DISPENSED, "display": "Not Dispensed"}
        kept.append({"url": BUSINESS_STATUS, "valueCoding": coding})
    changed = {**request, "extension": kept}
    if not kept:
        del changed["extension"]
    return changed
