"""MedicationRequest and MedicationDispense as the NHS profiles shape them: builders and readers,
so workflow code speaks in services and never in JSON paths."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC as UTC_ZONE
from datetime import datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.utils.dateparse import parse_date, parse_datetime

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
# An item's line status (medicationdispense-type, DOMAIN.md), as a dispense states it.
FULLY_DISPENSED, ITEM_NOT_DISPENSED, PART_DISPENSED, OWING = "0001", "0002", "0003", "0004"
TO_BE_DISPENSED, WITH_DISPENSER = "0007", "0008"
LINE_STATUSES = {
    FULLY_DISPENSED: "Item fully dispensed",
    ITEM_NOT_DISPENSED: "Item not dispensed",
    PART_DISPENSED: "Item dispensed - partial",
    OWING: "Item not dispensed - owing",
    "0005": "Item cancelled",
    "0006": "Expired",
    TO_BE_DISPENSED: "To be dispensed",
    WITH_DISPENSER: "Item with dispenser",
}
# A prescription's business status (EPS-task-business-status, DOMAIN.md).
BUSINESS_STATUSES = {
    "0001": "To be Dispensed",
    "0002": "With Dispenser",
    "0003": "With Dispenser - Active",
    "0004": "Expired",
    "0005": "Cancelled",
    "0006": "Dispensed",
    "0007": "Not Dispensed",
}
SNOMED = "http://snomed.info/sct"
COURSES = {
    "acute": {
        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
        "code": "acute",
    },
    "repeat": {
        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
        "code": "continuous",
    },
    "erd": {
        "system": "https://fhir.nhs.uk/CodeSystem/medicationrequest-course-of-therapy",
        "code": "continuous-repeat-dispensing",
    },
}
REPEAT_INFORMATION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-MedicationRepeatInformation"
)
EPS_REPEAT_INFORMATION = "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-RepeatInformation"
CONTROLLED_DRUG = "https://fhir.nhs.uk/StructureDefinition/Extension-DM-ControlledDrug"
CONTROLLED_DRUG_SYSTEM = "https://fhir.nhs.uk/CodeSystem/medicationrequest-controlled-drug"
EXPIRED = "0004"  # EPS business status Expired; its line items become 0006
ITEM_EXPIRED = "0006"
EXPIRED_REASON = "0008"  # not-dispensed reason: item or prescription expired


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
    """Return an active community MedicationRequest for one line item: acute (intent order),
    repeat (course continuous, intent original-order) or the first issue of a repeat dispensing
    (course continuous-repeat-dispensing, intent original-order; see with_repeat_dispensing)."""
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
        "courseOfTherapyType": {"coding": [COURSES[course]]},
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
    """Return a MedicationDispense for a request: in-progress (claimed), completed (all that was
    prescribed supplied; the caller states a part supply) or declined."""
    type_code = {"in-progress": WITH_DISPENSER, "completed": FULLY_DISPENSED, "declined": ITEM_NOT_DISPENSED}[
        status
    ]
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
        dispense["whenHandedOver"] = when.isoformat(timespec="milliseconds")
    if course(request) == "erd" and issue_number(request):  # EPS checks the issue dispensed
        dispense["extension"] = [
            {
                "url": EPS_REPEAT_INFORMATION,
                "extension": [
                    {"url": "numberOfRepeatsAllowed", "valueInteger": (issues_allowed(request) or 1) - 1},
                    {"url": "numberOfRepeatsIssued", "valueInteger": issue_number(request)},
                ],
            }
        ]
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
    return _item_referenced(dispense.get("authorizingPrescription", []))


def _item_referenced(references: list) -> str:
    """Return the line item the first reference by line-item identifier names ("" for none)."""
    for reference in references:
        identifier = reference.get("identifier") or {}
        if identifier.get("system") == ITEM_SYSTEM:
            return identifier.get("value", "")
    return ""


def performer_ods(dispense: dict) -> str:
    for performer in dispense.get("performer", []):
        return performer.get("actor", {}).get("identifier", {}).get("value", "")
    return ""


def with_status_history(request: dict, *, code: str, when: datetime) -> dict:
    """Return the request recording a cancellation outcome (EPS R-codes), or its expiry (EPS
    business status 0004), newest last."""
    if code in BUSINESS_STATUSES:
        coding = {"system": BUSINESS_STATUS_SYSTEM, "code": code, "display": BUSINESS_STATUSES[code]}
    else:
        coding = {
            "system": STATUS_HISTORY_SYSTEM,
            "code": code,
            "display": CANCELLATION_OUTCOMES.get(code, code),
        }
    entry = {
        "url": STATUS_HISTORY,
        "extension": [
            {
                "url": "status",
                "valueCoding": coding,
            },
            {"url": "statusDate", "valueDateTime": when.isoformat(timespec="seconds")},
        ],
    }
    return {**request, "extension": [*request.get("extension", []), entry]}


def status_history(request: dict) -> list[str]:
    """Return the outcome codes recorded on a request (R-codes, 0004 Expired), oldest first."""
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


# Supply: what the dispenses made for an item add up to (EPS partial dispensing, DOMAIN.md).


def line_status(dispense: dict) -> str:
    """Return the line-item status a dispense states (its type), "" when it states none."""
    codings = dispense.get("type", {}).get("coding", [])
    return next((c.get("code", "") for c in codings if c.get("system") == DISPENSE_TYPE), "")


def with_line_status(dispense: dict, code: str) -> dict:
    coding = {"system": DISPENSE_TYPE, "code": code, "display": LINE_STATUSES[code]}
    return {**dispense, "type": {"coding": [coding]}}


def with_business_status(dispense: dict, code: str) -> dict:
    """Return the dispense carrying its prescription's EPS business status (a dispense notification)."""
    kept = [e for e in dispense.get("extension", []) if e.get("url") != BUSINESS_STATUS]
    coding = {"system": BUSINESS_STATUS_SYSTEM, "code": code, "display": BUSINESS_STATUSES[code]}
    return {**dispense, "extension": [*kept, {"url": BUSINESS_STATUS, "valueCoding": coding}]}


def amount(quantity: dict) -> Decimal:
    """Return a Quantity's value as a Decimal (0 when it has none)."""
    value = quantity.get("value")
    return (
        Decimal(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else Decimal(0)
    )


def json_number(value: Decimal) -> int | float:
    return int(value) if value == int(value) else float(value)


@dataclass(frozen=True)
class Supply:
    """An item's supply by one pharmacy: its line-item status and the quantities."""

    status: str  # a LINE_STATUSES code
    supplied: Decimal
    prescribed: Decimal | None  # None when the request gives no quantity
    unit: str = ""

    @property
    def done(self) -> bool:
        """Nothing more will be supplied: fully dispensed, (finally) not dispensed, or expired."""
        return self.status in (FULLY_DISPENSED, ITEM_NOT_DISPENSED, ITEM_EXPIRED)

    @property
    def owing(self) -> Decimal | None:
        if self.prescribed is None or self.done:
            return None
        return max(self.prescribed - self.supplied, Decimal(0))

    @property
    def owed(self) -> bool:
        """Part supplied, or owed with none supplied: the pharmacy has more to supply."""
        return self.status in (PART_DISPENSED, OWING)

    def text(self, value: Decimal | None) -> str:
        return quantity_text({"value": json_number(value), "unit": self.unit}) if value is not None else ""


def item_supply(request: dict, dispenses: list[dict]) -> Supply:
    """Return what one pharmacy's dispenses for an item add up to. Each completed dispense is one
    supply, its quantity what was handed over that time; the item is fully dispensed when the
    supplies reach the prescribed quantity or a dispense says so, part dispensed (0003) or owed
    with none supplied (0004) before, not dispensed when declined."""
    prescribed_quantity_ = prescribed_quantity(request)
    prescribed = amount(prescribed_quantity_) if "value" in prescribed_quantity_ else None
    unit = prescribed_quantity_.get("unit", "")
    completed = [d for d in dispenses if d.get("status") == "completed"]
    supplied = sum((amount(d.get("quantity", {})) for d in completed), Decimal(0))
    said = {line_status(d) for d in completed}
    if any(line_status(d) == ITEM_EXPIRED for d in dispenses):
        status = ITEM_EXPIRED
    elif any(d.get("status") == "declined" for d in dispenses) or (
        not supplied and ITEM_NOT_DISPENSED in said
    ):
        status = ITEM_NOT_DISPENSED
    elif completed:
        reached = supplied >= prescribed if prescribed is not None else supplied > 0
        if reached or FULLY_DISPENSED in said:  # a pharmacy may finish an item short (say, by pack)
            status = FULLY_DISPENSED
        else:
            status = PART_DISPENSED if supplied else OWING
    elif any(d.get("status") == "in-progress" for d in dispenses):
        status = WITH_DISPENSER
    else:
        status = TO_BE_DISPENSED
    return Supply(status=status, supplied=supplied, prescribed=prescribed, unit=unit)


def supply_words(dispense: dict) -> str:
    """Return a completed dispense as people read it: "Dispensed 28 tablet", "Supplied 14 tablet
    in part", "Owing: none supplied"."""
    supplied = quantity_text(dispense.get("quantity", {}))
    status = line_status(dispense)
    if status == PART_DISPENSED:
        return f"Supplied {supplied} in part, the rest owed"
    if status == OWING:
        return "Owing: none supplied yet"
    if status == ITEM_NOT_DISPENSED:
        return "Not dispensed"
    return f"Dispensed {supplied}"


def prescription_business_status(supplies: list[Supply]) -> str:
    """Return a prescription's EPS business status from its items' supply at one pharmacy: 0006
    Dispensed when every item is done and something was supplied, 0007 Not Dispensed when
    nothing was, 0003 With Dispenser - Active while anything is owed, else 0002 With Dispenser."""
    if supplies and all(s.done for s in supplies):
        if any(s.supplied > 0 for s in supplies):
            return "0006"
        return EXPIRED if all(s.status == ITEM_EXPIRED for s in supplies) else "0007"
    if any(s.supplied > 0 or s.owed or s.done for s in supplies):
        return "0003"
    return "0002"


# Controlled drugs and expiry (DOMAIN.md: 6 months from issue, 28 days for schedules 2 to 4).


def controlled_drug_schedule(request: dict) -> str:
    """Return the Misuse of Drugs schedule a request states ("2", "4", ...; "" for none)."""
    for extension in request.get("extension", []):
        if extension.get("url") != CONTROLLED_DRUG:
            continue
        for part in extension.get("extension", []):
            code = part.get("valueCoding", {}).get("code", "") if part.get("url") == "schedule" else ""
            if code.upper().startswith("CD"):
                return code[2:].split("-")[0]
    return ""


def with_controlled_drug(request: dict, schedule: str) -> dict:
    """Return the request stating its controlled-drug schedule (Extension-DM-ControlledDrug)."""
    code = f"CD{schedule}" if schedule != "4" else "CD4-1"
    part = {"url": "schedule", "valueCoding": {"system": CONTROLLED_DRUG_SYSTEM, "code": code}}
    kept = [e for e in request.get("extension", []) if e.get("url") != CONTROLLED_DRUG]
    return {**request, "extension": [*kept, {"url": CONTROLLED_DRUG, "extension": [part]}]}


def expires_at(request: dict) -> datetime | None:
    """Return when a request not dispensed by then expires: the end of its validity period, else
    6 months from issue, 28 days for a schedule 2, 3 or 4 controlled drug; None when it says
    neither."""
    end = request.get("dispenseRequest", {}).get("validityPeriod", {}).get("end")
    if end:
        moment = _instant(end, end_of_day=True)
        if moment is not None:
            return moment
    authored = _instant(request.get("authoredOn", ""))
    if authored is None:
        return None
    if controlled_drug_schedule(request) in ("2", "3", "4"):
        return authored + timedelta(days=28)
    return authored + relativedelta(months=6)


def _instant(value: str, *, end_of_day: bool = False) -> datetime | None:
    """Return a FHIR dateTime as an aware instant (a date alone: its start, or its end)."""
    moment = parse_datetime(value)
    if moment is not None:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC_ZONE)
    day = parse_date(value)
    if day is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC_ZONE)
    return start + timedelta(days=1) if end_of_day else start


def expired(request: dict, when: datetime) -> dict:
    """Return the request expired: stopped, with EPS status 0004 Expired in its status history."""
    return with_status_history({**request, "status": "stopped"}, code=EXPIRED, when=when)


def is_expired(request: dict) -> bool:
    return request.get("status") == "stopped" and EXPIRED in status_history(request)


# Electronic repeat dispensing (DOMAIN.md): the first issue is the original (intent original-order)
# with the number of issues allowed; each later issue is a request of its own, basedOn it.


def course(request: dict) -> str:
    """Return "acute", "repeat" or "erd" (electronic repeat dispensing)."""
    codes = {c.get("code") for c in request.get("courseOfTherapyType", {}).get("coding", [])}
    return next((name for name, coding in COURSES.items() if coding["code"] in codes), "acute")


def with_repeat_dispensing(
    request: dict, *, issues: int, interval_days: int, start: datetime, end: datetime
) -> dict:
    """Return the first issue of a repeat dispensing prescription of `issues` issues, one every
    `interval_days`, valid from start to end."""
    dispense_request = {
        **request["dispenseRequest"],
        "numberOfRepeatsAllowed": issues - 1,
        "validityPeriod": {
            "start": start.isoformat(timespec="seconds"),
            "end": end.isoformat(timespec="seconds"),
        },
        "expectedSupplyDuration": {
            "value": interval_days,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
    }
    return {
        **request,
        "courseOfTherapyType": {"coding": [COURSES["erd"]]},
        "intent": "original-order",
        "dispenseRequest": dispense_request,
        "extension": [
            *request.get("extension", []),
            _repeat_information(1, end.isoformat(timespec="seconds")),
        ],
    }


def _repeat_part(request: dict, name: str) -> dict:
    for extension in request.get("extension", []):
        if extension.get("url") == REPEAT_INFORMATION:
            return next((p for p in extension.get("extension", []) if p.get("url") == name), {})
    return {}


def issue_number(request: dict) -> int | None:
    """Return which issue of a repeat dispensing prescription this request is (1 for the original)."""
    value = _repeat_part(request, "numberOfPrescriptionsIssued").get("valueUnsignedInt")
    return value if isinstance(value, int) else None


def issues_allowed(request: dict) -> int | None:
    repeats = request.get("dispenseRequest", {}).get("numberOfRepeatsAllowed")
    return repeats + 1 if isinstance(repeats, int) else None


def issue_text(request: dict) -> str:
    """Return "Issue 2 of 6" for an issue of a repeat dispensing prescription, "" otherwise."""
    number, allowed = issue_number(request), issues_allowed(request)
    return f"Issue {number} of {allowed}" if course(request) == "erd" and number and allowed else ""


def authorisation_ends(request: dict) -> datetime | None:
    """Return when the repeat authorisation ends (no issue is released after it): its expiry
    date, else the end of the original's validity period."""
    value = _repeat_part(request, "authorisationExpiryDate").get("valueDateTime", "")
    value = value or request.get("dispenseRequest", {}).get("validityPeriod", {}).get("end", "")
    return _instant(value, end_of_day=True) if value else None


def with_issue_stated(request: dict) -> dict:
    """Return a repeat dispensing original stating that it is issue 1 (as an outside system may
    leave it unsaid), with when its authorisation ends."""
    if issue_number(request) is not None:
        return request
    ends = request.get("dispenseRequest", {}).get("validityPeriod", {}).get("end", "")
    kept = [e for e in request.get("extension", []) if e.get("url") != REPEAT_INFORMATION]
    return {**request, "extension": [*kept, _repeat_information(1, ends)]}


def with_authorisation_ended(request: dict, when: datetime) -> dict:
    """Return the original with its authorisation ending now: no issue is released after it."""
    kept = [e for e in request.get("extension", []) if e.get("url") != REPEAT_INFORMATION]
    repeat = _repeat_information(issue_number(request) or 1, when.isoformat(timespec="seconds"))
    return {**request, "extension": [*kept, repeat]}


def _repeat_information(number: int, ends: str) -> dict:
    """Extension-UKCore-MedicationRepeatInformation: the issue number, when the authorisation ends."""
    parts = [{"url": "numberOfPrescriptionsIssued", "valueUnsignedInt": number}]
    if ends:
        parts.append({"url": "authorisationExpiryDate", "valueDateTime": ends})
    return {"url": REPEAT_INFORMATION, "extension": parts}


def supply_interval(request: dict) -> timedelta | None:
    value = request.get("dispenseRequest", {}).get("expectedSupplyDuration", {}).get("value")
    return timedelta(days=value) if isinstance(value, int | float) and value > 0 else None


def based_on_item(request: dict) -> str:
    """Return the line item a later issue is basedOn (its original), "" for none."""
    return _item_referenced(request.get("basedOn", []))


def next_issue(original: dict, *, number: int, item_id: str, when: datetime) -> dict:
    """Return issue `number` of a repeat dispensing original: a new line item, basedOn it."""
    content = {k: v for k, v in original.items() if k not in ("id", "meta", "statusReason")}
    kept = [
        e
        for e in original.get("extension", [])
        if e.get("url") not in (REPEAT_INFORMATION, STATUS_HISTORY, BUSINESS_STATUS)
    ]
    repeat = _repeat_information(
        number, _repeat_part(original, "authorisationExpiryDate").get("valueDateTime", "")
    )
    validity = {
        **content["dispenseRequest"].get("validityPeriod", {}),
        "start": when.isoformat(timespec="seconds"),
    }
    return {
        **content,
        "identifier": [{"system": ITEM_SYSTEM, "value": item_id}],
        "status": "active",
        "intent": "instance-order",
        "dispenseRequest": {**content["dispenseRequest"], "validityPeriod": validity},
        "authoredOn": when.isoformat(timespec="seconds"),
        "basedOn": [
            {
                "type": "MedicationRequest",
                "identifier": {"system": ITEM_SYSTEM, "value": original_item(original)},
            }
        ],
        "extension": [*kept, repeat],
    }


def original_item(request: dict) -> str:
    """Return the line item of a repeat dispensing chain's original: this one's, or the one it is based on."""
    return based_on_item(request) or item_id(request)
