"""Writing a prescription on the screens: a draft of items and route, then one issue."""

from __future__ import annotations

import uuid

from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from fhirserver import jsonio, medication, patient
from fhirserver.errors import FHIRError
from medicines.selectors import medicine_get
from nodes.models import Node
from prescribing.models import PrescriptionDraft
from prescribing.patients import patient_find
from prescribing.services import Item, Repeat, prescription_issue


def draft_start(*, node: Node, author: AbstractBaseUser, nhs_number: str) -> PrescriptionDraft:
    """Start a prescription for a registered patient, to the nominated pharmacy if there is one."""
    record = patient_find(node=node, nhs_number=nhs_number)
    if record is None:
        raise FHIRError(404, "not-found", "There is no patient with this NHS number here.")
    nominated = patient.nominated_ods(jsonio.loads(record.text))
    return PrescriptionDraft.objects.create(
        token=uuid.uuid4(),
        node=node,
        author=author,
        nhs_number=nhs_number,
        route=PrescriptionDraft.Route.NOMINATED if nominated else PrescriptionDraft.Route.NONE,
        pharmacy_ods=nominated,
    )


def draft_item_add(
    *, draft: PrescriptionDraft, code: str, dosage: str, quantity: float, days_supply: int | None
) -> PrescriptionDraft:
    """Add a medicine from the catalogue, in its unit, with how to take it and how much."""
    _open(draft)
    medicine = medicine_get(code=code)
    if medicine is None:
        raise FHIRError(422, "value", "Choose a medicine from the catalogue.", ["medicine"])
    item = {
        "key": uuid.uuid4().hex,  # removing names the item, so a repeated remove takes no other
        "code": medicine.code,
        "display": medicine.name,
        "unit": medicine.unit,
        "unit_code": medicine.unit_code,
        "dosage": dosage,
        "quantity": int(quantity) if float(quantity).is_integer() else quantity,  # 60, not 60.0
        "days_supply": days_supply,
    }
    draft.items = [*draft.items, item]
    draft.save(update_fields=["items"])
    return draft


def draft_item_remove(*, draft: PrescriptionDraft, key: str) -> PrescriptionDraft:
    _open(draft)
    draft.items = [item for item in draft.items if item.get("key") != key]
    draft.save(update_fields=["items"])
    return draft


def draft_route_set(
    *,
    draft: PrescriptionDraft,
    course: str,
    route: str,
    pharmacy_ods: str,
    issues: int | None = None,
    interval_days: int | None = None,
    validity_months: int | None = None,
) -> PrescriptionDraft:
    """Say whether it is acute, repeat or repeat dispensing (how many issues, how far apart, valid
    how long), and where it goes: the nominated pharmacy, another, or none."""
    _open(draft)
    erd = course == PrescriptionDraft.Course.ERD
    if erd:
        for item in draft.items:
            medicine = medicine_get(code=item["code"])
            schedule = medicine.controlled_drug_schedule if medicine else ""
            if schedule in ("2", "3"):
                raise FHIRError(
                    422,
                    "business-rule",
                    f"{item['display']} is a schedule {schedule} controlled drug: it cannot be prescribed "
                    "for repeat dispensing",
                    ["course"],
                )
    if route == PrescriptionDraft.Route.NOMINATED:
        record = patient_find(node=draft.node, nhs_number=draft.nhs_number)
        pharmacy_ods = patient.nominated_ods(jsonio.loads(record.text)) if record else ""
        if not pharmacy_ods:
            raise FHIRError(422, "required", "This patient has no nominated pharmacy: choose one.", ["route"])
    elif route == PrescriptionDraft.Route.NONE:
        pharmacy_ods = ""
    elif not pharmacy_ods:
        raise FHIRError(422, "required", "Choose the pharmacy.", ["pharmacy"])
    draft.course, draft.route, draft.pharmacy_ods = course, route, pharmacy_ods
    draft.issues, draft.interval_days = (issues, interval_days) if erd else (None, None)
    draft.validity_months = (validity_months or 12) if erd else None
    draft.save(
        update_fields=["course", "route", "pharmacy_ods", "issues", "interval_days", "validity_months"]
    )
    return draft


@transaction.atomic
def draft_issue(*, node: Node, token: uuid.UUID, prescriber_name: str) -> str:
    """Issue the draft once: a second (or concurrent) issue of the same draft returns the
    Prescription ID the first one made, and issues nothing."""
    draft = PrescriptionDraft.objects.select_for_update().get(node=node, token=token)
    if draft.prescription_id:
        return draft.prescription_id
    if not draft.items:
        raise FHIRError(422, "required", "Add at least one item.", ["medicine"])
    record = patient_find(node=node, nhs_number=draft.nhs_number)
    content = jsonio.loads(record.text) if record else {}
    pharmacy_ods = draft.pharmacy_ods
    if draft.route == PrescriptionDraft.Route.NOMINATED:  # the nomination as it is now, not when drafted
        pharmacy_ods = patient.nominated_ods(content)
        if not pharmacy_ods:
            raise FHIRError(
                422, "required", "This patient has no nominated pharmacy now: choose one.", ["route"]
            )
    requests = prescription_issue(
        node=node,
        nhs_number=draft.nhs_number,
        items=[
            Item(**{k: v for k, v in item.items() if k in Item.__dataclass_fields__}) for item in draft.items
        ],
        pharmacy_ods=pharmacy_ods or None,
        course=draft.course,
        patient_name=patient.display_name(content),
        prescriber_name=prescriber_name,
        repeat=Repeat(
            issues=draft.issues,
            interval_days=draft.interval_days,
            validity_end=timezone.now() + relativedelta(months=draft.validity_months or 12),
        )
        if draft.course == PrescriptionDraft.Course.ERD
        else None,
    )
    draft.prescription_id = medication.group_id(jsonio.loads(requests[0].text))
    draft.issued_at = timezone.now()
    draft.save(update_fields=["prescription_id", "issued_at"])
    return draft.prescription_id


def _open(draft: PrescriptionDraft) -> None:
    if draft.prescription_id:
        raise FHIRError(
            409, "business-rule", f"This prescription was issued already ({draft.prescription_id})."
        )
