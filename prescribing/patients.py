"""The prescriber's patients: FHIR Patients at the node, known by NHS number."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from exchange.models import Partner
from fhirserver import jsonio, patient, services
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM, nhs_number_is_valid
from fhirserver.search import matching
from nodes.models import Node


def patient_find(*, node: Node, nhs_number: str) -> Resource | None:
    """Return the node's Patient with this NHS number, or None."""
    found = matching(
        node=node,
        resource_type="Patient",
        params=[("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")],
        strict=True,
    )
    return found.order_by("pk").first()


def patients_search(*, node: Node, family: str, birth_date: str) -> QuerySet[Resource]:
    """Return the node's Patients whose family name starts so and who were born that day."""
    params = [("family", family), ("birthdate", birth_date)]
    return matching(node=node, resource_type="Patient", params=params, strict=True).order_by("pk")


@transaction.atomic
def patient_register(
    *,
    node: Node,
    nhs_number: str,
    given: str,
    family: str,
    birth_date: str,
    gender: str,
    pharmacy_ods: str = "",
) -> Resource:
    """Register a patient at the node; an NHS number already registered is refused (409)."""
    if not nhs_number_is_valid(nhs_number):
        raise FHIRError(422, "value", "Enter a valid NHS number.", ["Patient.identifier"])
    if patient_find(node=node, nhs_number=nhs_number) is not None:
        raise FHIRError(409, "duplicate", "A patient with this NHS number is registered already.")
    name = _pharmacy_name(node, pharmacy_ods)
    content = patient.nominated(
        patient.patient_build(
            nhs_number=nhs_number, given=given, family=family, birth_date=birth_date, gender=gender
        ),
        pharmacy_ods,
        name,
    )
    return services.resource_create(
        node=node,
        resource_type="Patient",
        content=content,
        if_none_exist=f"identifier={NHS_NUMBER_SYSTEM}|{nhs_number}",
    ).resource


@transaction.atomic
def patient_nominate(*, node: Node, record: Resource, pharmacy_ods: str) -> Resource:
    """Set (or with "" remove) the patient's nominated pharmacy, one from the directory."""
    content = patient.nominated(jsonio.loads(record.text), pharmacy_ods, _pharmacy_name(node, pharmacy_ods))
    return services.resource_update(
        node=node, resource_type="Patient", logical_id=record.logical_id, content=content
    ).resource


def _pharmacy_name(node: Node, pharmacy_ods: str) -> str:
    if not pharmacy_ods:
        return ""
    pharmacy = Partner.objects.filter(node=node, ods_code=pharmacy_ods, role=Partner.Role.PHARMACY).first()
    if pharmacy is None:
        raise FHIRError(422, "business-rule", f"{pharmacy_ods} is not a pharmacy in this system's directory.")
    return pharmacy.name
