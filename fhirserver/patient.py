"""Patient as UK Core shapes it: a builder and readers, so screens never speak in JSON paths."""

from __future__ import annotations

from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM

NOMINATED_PHARMACY = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy"
GENDERS = ("female", "male", "other", "unknown")


def patient_build(
    *, nhs_number: str, given: str, family: str, birth_date: str, gender: str, pharmacy_ods: str = ""
) -> dict:
    """Return a Patient known by NHS number, with an optional nominated pharmacy."""
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number}],
        "name": [{"use": "official", "family": family, "given": given.split()}],
        "gender": gender,
        "birthDate": birth_date,
    }
    return nominated(patient, pharmacy_ods)


def nominated(patient: dict, pharmacy_ods: str, pharmacy_name: str = "") -> dict:
    """Return the patient nominating a pharmacy by ODS code ("" removes the nomination)."""
    kept = [e for e in patient.get("extension", []) if e.get("url") != NOMINATED_PHARMACY]
    if pharmacy_ods:
        reference = {"identifier": {"system": ODS_SYSTEM, "value": pharmacy_ods}}
        if pharmacy_name:
            reference["display"] = pharmacy_name
        kept.append({"url": NOMINATED_PHARMACY, "valueReference": reference})
    changed = {**patient, "extension": kept}
    if not kept:
        del changed["extension"]
    return changed


def nhs_number(patient: dict) -> str:
    return next(
        (i.get("value", "") for i in patient.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM),
        "",
    )


def display_name(patient: dict) -> str:
    """Return "Given FAMILY", as NHS screens show a patient's name."""
    for name in patient.get("name", []):
        given = " ".join(name.get("given", []))
        return f"{given} {name.get('family', '').upper()}".strip()
    return ""


def nominated_ods(patient: dict) -> str:
    for extension in patient.get("extension", []):
        if extension.get("url") == NOMINATED_PHARMACY:
            return extension.get("valueReference", {}).get("identifier", {}).get("value", "")
    return ""


def nhs_number_spaced(value: str) -> str:
    """Return an NHS number as people read it: 3-3-4 digits (943 476 5919)."""
    return f"{value[:3]} {value[3:6]} {value[6:]}" if len(value) == 10 else value
