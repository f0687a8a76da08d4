"""Searches a clinical system makes, beyond medicines, through fhirpy against a live server:
the standard parameters of Observation, Encounter and Patient, with modifiers, reverse chaining,
quantities and includes. Each has a resource that must not be found beside the one that must."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from tests.factories import bearer

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture
def fhir(store_base):
    return SyncFHIRClient(store_base, authorization=bearer("store")["Authorization"])


def made(fhir, resource_type: str, **content):
    resource = fhir.resource(resource_type, **content)
    resource.save()
    return resource


def ids(search) -> set[str]:
    return {r.id for r in search.fetch_all()}


@pytest.fixture
def clinic(fhir) -> dict:
    """Two patients, each with a glucose Observation and an Encounter; one with an active
    MedicationRequest."""
    ann = made(
        fhir,
        "Patient",
        identifier=[{"system": NHS_NUMBER, "value": "9449304130"}],
        name=[{"family": "Jones"}],
        telecom=[{"system": "email", "value": "ann@example.org"}],
    )
    bob = made(
        fhir, "Patient", identifier=[{"system": NHS_NUMBER, "value": "9449305552"}], name=[{"family": "Hill"}]
    )
    glucose = {"coding": [{"system": LOINC, "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]}

    def observation(patient, value, when):
        return made(
            fhir,
            "Observation",
            status="final",
            code=glucose,
            subject={"reference": f"Patient/{patient.id}"},
            effectiveDateTime=when,
            valueQuantity={"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
        )

    high = observation(ann, 6.3, "2026-11-20T09:30:00Z")
    low = observation(bob, 4.1, "2026-11-21T09:30:00Z")
    visit = made(
        fhir,
        "Encounter",
        status="finished",
        **{"class": {"code": "AMB"}},
        subject={"reference": f"Patient/{ann.id}"},
    )
    made(
        fhir,
        "Encounter",
        status="finished",
        **{"class": {"code": "AMB"}},
        subject={"reference": f"Patient/{bob.id}"},
    )
    made(
        fhir,
        "MedicationRequest",
        status="active",
        intent="order",
        medicationCodeableConcept={"text": "Metformin 500mg tablets"},
        subject={"reference": f"Patient/{ann.id}"},
    )
    return {"ann": ann, "bob": bob, "high": high, "low": low, "visit": visit}


def test_observations_of_a_patient_by_code_and_date_with_the_patient_included(fhir, clinic):
    bundle = fhir.execute(
        "Observation",
        method="get",
        params={
            "patient": clinic["ann"].id,
            "code": f"{LOINC}|15074-8",
            "date": "ge2026-11-01",
            "_include": "Observation:patient",
        },
    )
    found = {
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    }
    assert found == {("match", "Observation", clinic["high"].id), ("include", "Patient", clinic["ann"].id)}


def test_encounters_by_the_patients_identifier(fhir, clinic):
    search = fhir.resources("Encounter").search(**{"subject:Patient.identifier": f"{NHS_NUMBER}|9449304130"})
    assert ids(search) == {clinic["visit"].id}


def test_patients_with_an_active_medication_request(fhir, clinic):
    search = fhir.resources("Patient").search(**{"_has:MedicationRequest:subject:status": "active"})
    assert ids(search) == {clinic["ann"].id}


def test_observations_over_a_quantity_in_its_units(fhir, clinic):
    over = fhir.resources("Observation").search(**{"value-quantity": f"gt5.4|{UCUM}|mmol/L"})
    assert ids(over) == {clinic["high"].id}
    assert ids(fhir.resources("Observation").search(**{"value-quantity": f"gt5.4|{UCUM}|mg/dL"})) == set()
    assert ids(fhir.resources("Observation").search(**{"value-quantity": "4.1"})) == {clinic["low"].id}


def test_missing_text_and_an_email(fhir, clinic):
    assert ids(fhir.resources("Patient").search(**{"email:missing": "true"})) == {clinic["bob"].id}
    assert ids(fhir.resources("Patient").search(**{"email:missing": "false"})) == {clinic["ann"].id}
    assert ids(fhir.resources("Patient").search(email="ann@example.org")) == {clinic["ann"].id}
    both = {clinic["high"].id, clinic["low"].id}
    assert ids(fhir.resources("Observation").search(**{"code:text": "glucose"})) == both
    assert ids(fhir.resources("Observation").search(**{"code:text": "sodium"})) == set()


def test_include_every_reference_and_iterate(fhir, clinic):
    bundle = fhir.execute(
        "Encounter",
        method="get",
        params={
            "_id": clinic["visit"].id,
            "_include": "Encounter:*",
            "_revinclude:iterate": "Observation:patient",
        },
    )
    found = {
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    }
    assert found == {
        ("match", "Encounter", clinic["visit"].id),
        ("include", "Patient", clinic["ann"].id),  # by Encounter:* (subject, patient)
        ("include", "Observation", clinic["high"].id),  # the patient's observation, iterated
    }


def test_uri_above_and_below(fhir):
    system = made(
        fhir, "CodeSystem", status="active", content="complete", url="http://example.org/fhir/CodeSystem/a"
    )
    made(fhir, "CodeSystem", status="active", content="complete", url="http://example.org/other/CodeSystem/b")
    below = fhir.resources("CodeSystem").search(**{"url:below": "http://example.org/fhir"})
    assert ids(below) == {system.id}
    above = fhir.resources("CodeSystem").search(**{"url:above": "http://example.org/fhir/CodeSystem/a/v2"})
    assert ids(above) == {system.id}


def test_composite_code_and_value_of_one_element(fhir, clinic):
    """A blood pressure's components: systolic 140 and diastolic 90. A composite matches the code
    and the value of one component, never the code of one and the value of the other."""
    systolic, diastolic = f"{LOINC}|8480-6", f"{LOINC}|8462-4"
    pressure = made(
        fhir,
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        subject={"reference": f"Patient/{clinic['ann'].id}"},
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 140, "system": UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 90, "system": UCUM, "code": "mm[Hg]"},
            },
        ],
    )

    def search(**params) -> set[str]:
        return ids(fhir.resources("Observation").search(**params))

    assert search(**{"component-code-value-quantity": f"{systolic}$gt130"}) == {pressure.id}
    assert search(**{"component-code-value-quantity": f"{diastolic}$gt130"}) == set()  # 140 is systolic's
    assert search(**{"component-code-value-quantity": f"{diastolic}$90|{UCUM}|mm[Hg]"}) == {pressure.id}
    glucose = f"{LOINC}|15074-8"
    assert search(**{"code-value-quantity": f"{glucose}$gt5.4"}) == {clinic["high"].id}
    assert search(**{"combo-code-value-quantity": f"{systolic}$140"}) == {pressure.id}
    with pytest.raises(OperationOutcome, match=r"takes 2 values joined by \$"):
        search(**{"code-value-quantity": "only-one-part"})


def test_sorted_by_a_quantity_and_by_a_parameter_every_resource_has(fhir, clinic):
    by_value = (
        fhir.resources("Observation").search(code=f"{LOINC}|15074-8").sort("value-quantity").fetch_all()
    )
    assert [r.id for r in by_value] == [clinic["low"].id, clinic["high"].id]  # 4.1, then 6.3
    highest_first = fhir.resources("Observation").search(code=f"{LOINC}|15074-8").sort("-value-quantity")
    assert [r.id for r in highest_first.fetch_all()] == [clinic["high"].id, clinic["low"].id]
    assert len(fhir.resources("Patient").sort("_tag").fetch_all()) == 2  # an underscore in the code
    by_family = [r.id for r in fhir.resources("Patient").sort("family").fetch_all()]  # a string
    assert by_family == [clinic["bob"].id, clinic["ann"].id]  # Hill, then Jones
    by_email = [r.id for r in fhir.resources("Patient").sort("-email").fetch_all()]  # a token, one missing
    assert by_email == [clinic["ann"].id, clinic["bob"].id]
