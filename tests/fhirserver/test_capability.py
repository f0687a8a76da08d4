from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhirserver.registry import RESOURCE_TYPES


def test_metadata_is_a_valid_capability_statement_of_what_is_implemented(client, gp):
    response = client.get("/gp/fhir/metadata")
    assert response.status_code == 200
    body = response.json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1"
    assert set(body["format"]) == {"application/fhir+json", "application/json"}
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
        "create",
        "search-type",
    }
    assert request["conditionalCreate"] is True
    assert {p["name"] for p in request["searchParam"]} == {"_id", "identifier"}


def test_every_listed_type_can_be_searched(client, gp):
    for resource_type in ("Patient", "Organization", "Task", "Bundle", "Subscription"):
        assert client.get(f"/gp/fhir/{resource_type}").status_code == 200
