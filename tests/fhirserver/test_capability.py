from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhirserver.registry import RESOURCE_TYPES


def test_metadata_is_a_valid_capability_statement_of_what_is_implemented(client, store):
    response = client.get("/store/fhir/metadata")
    assert response.status_code == 200
    body = response.json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    assert set(body["format"]) == {
        "application/fhir+json",
        "application/json",
        "application/fhir+xml",
        "application/xml",
    }
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(resources) == set(RESOURCE_TYPES)
    assert {"MedicationRequest", "MedicationDispense", "Patient", "Subscription"} <= set(resources)
    request = resources["MedicationRequest"]
    assert {i["code"] for i in request["interaction"]} == {
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
    assert request["conditionalCreate"] is True
    params = {p["name"]: p for p in request["searchParam"]}
    # Every R4 core parameter of MedicationRequest (hl7.org/fhir/R4/medicationrequest.html#search),
    # the ones every resource has, and dmed's own.
    assert set(params) == {
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
        "identifier",
        "status",
        "intent",
        "category",
        "code",
        "medication",
        "subject",
        "patient",
        "requester",
        "authoredon",
        "intended-dispenser",
        "intended-performer",
        "intended-performertype",
        "encounter",
        "date",
        "priority",
        "group-identifier",
    }
    assert params["patient"]["definition"] == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert params["patient"]["documentation"] == "Returns prescriptions for a specific patient"
    assert params["group-identifier"]["definition"].startswith("https://")
    assert "MedicationRequest:patient" in request["searchInclude"]
    assert "MedicationDispense:prescription" in request["searchRevInclude"]
    dispense = {p["name"] for p in resources["MedicationDispense"]["searchParam"]}
    assert {"prescription", "performer", "whenhandedover", "whenprepared"} <= dispense
    patient = {p["name"] for p in resources["Patient"]["searchParam"]}
    assert {"name", "family", "given", "birthdate", "gender", "identifier"} <= patient
    assert {"status", "criteria", "url"} <= {p["name"] for p in resources["Subscription"]["searchParam"]}
    system = {i["code"] for i in body["rest"][0]["interaction"]}
    assert "history-system" in system


def test_every_declared_parameter_is_accepted_strictly(client, store):
    """Nothing is declared that the server would refuse."""
    body = client.get("/store/fhir/metadata").json()
    samples = {"token": "x", "uri": "x", "string": "x", "date": "2024", "reference": "Patient/x"}
    for resource in body["rest"][0]["resource"]:
        if resource["type"] not in ("MedicationRequest", "MedicationDispense", "Patient", "Subscription"):
            continue
        for param in resource["searchParam"]:
            url = f"/store/fhir/{resource['type']}?{param['name']}={samples[param['type']]}"
            assert client.get(url, headers={"Prefer": "handling=strict"}).status_code == 200, url


def test_every_listed_type_can_be_searched(client, store):
    for resource_type in ("Patient", "Organization", "Task", "Bundle", "Subscription"):
        assert client.get(f"/store/fhir/{resource_type}").status_code == 200
