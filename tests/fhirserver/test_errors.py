"""Every kind of bad request gets its status and an OperationOutcome saying what and where."""

from __future__ import annotations

import json

import pytest

from fhirserver.models import Resource
from tests.factories import make_medication_request, stored

FHIR_JSON = "application/fhir+json"


def outcome(response) -> dict:
    assert response["Content-Type"].startswith(FHIR_JSON)
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"]
    assert all(issue["diagnostics"] for issue in body["issue"])
    return body


def post(client, path: str, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type=headers.pop("content_type", FHIR_JSON), headers=headers)


@pytest.fixture
def node(store):
    return store


def test_malformed_json_is_400_invalid(client, node):
    response = post(client, "/store/fhir/MedicationRequest", '{"resourceType": "MedicationRequest",')
    assert response.status_code == 400
    issue = outcome(response)["issue"][0]
    assert issue["code"] == "invalid"
    assert "line 1 column" in issue["diagnostics"]
    assert not stored().exists()


def test_missing_resource_type_is_400(client, node):
    body = make_medication_request()
    del body["resourceType"]
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 400
    assert outcome(response)["issue"][0]["expression"] == ["resourceType"]


def test_resource_type_not_matching_the_url_is_400(client, node):
    response = post(client, "/store/fhir/MedicationDispense", make_medication_request())
    assert response.status_code == 400
    issue = outcome(response)["issue"][0]
    assert issue["expression"] == ["resourceType"]
    assert "MedicationDispense" in issue["diagnostics"]


def test_structurally_invalid_resource_is_400_with_each_path(client, node):
    body = make_medication_request(colour="blue")
    body["dispenseRequest"]["quantity"]["value"] = "sixty"
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 400
    expressions = {e for issue in outcome(response)["issue"] for e in issue["expression"]}
    assert "MedicationRequest.colour" in expressions
    assert "MedicationRequest.dispenseRequest.quantity.value" in expressions
    assert not stored().exists()


def test_missing_required_element_is_400_required(client, node):
    body = make_medication_request()
    del body["intent"]
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 400
    issue = outcome(response)["issue"][0]
    assert (issue["code"], issue["expression"]) == ("required", ["MedicationRequest.intent"])


def test_code_outside_a_required_binding_is_400_code_invalid(client, node):
    response = post(client, "/store/fhir/MedicationRequest", make_medication_request(status="bogus"))
    assert response.status_code == 400
    issue = outcome(response)["issue"][0]
    assert (issue["code"], issue["expression"]) == ("code-invalid", ["MedicationRequest.status"])


def test_binding_inside_a_data_type_is_checked_too(client, node):
    body = make_medication_request()
    body["identifier"][0]["use"] = "sometimes"
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 400
    assert outcome(response)["issue"][0]["expression"] == ["MedicationRequest.identifier[0].use"]


def test_invalid_nhs_number_is_422_business_rule(client, node):
    body = make_medication_request()
    body["subject"]["identifier"]["value"] = "9449304131"
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 422
    issue = outcome(response)["issue"][0]
    assert issue["code"] == "business-rule"
    assert issue["expression"] == ["MedicationRequest.subject.identifier.value"]


def test_prescription_id_with_a_wrong_check_character_is_422(client, node):
    body = make_medication_request()
    body["groupIdentifier"]["value"] = "269CA9-A99968-4577BP"
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 422
    issue = outcome(response)["issue"][0]
    assert "invalid checksum" in issue["diagnostics"]
    assert issue["expression"] == ["MedicationRequest.groupIdentifier.value"]


def test_unknown_resource_type_is_404(client, node):
    response = client.get("/store/fhir/Prescription/1")
    assert response.status_code == 404
    assert "Prescription" in outcome(response)["issue"][0]["diagnostics"]


def test_unknown_node_is_404(client, node):
    response = client.get("/nowhere/fhir/Patient/1")
    assert response.status_code == 404
    outcome(response)


def test_unknown_id_is_404_not_found(client, node):
    response = client.get("/store/fhir/MedicationRequest/does-not-exist")
    assert response.status_code == 404
    assert outcome(response)["issue"][0]["code"] == "not-found"


def test_unknown_path_under_fhir_is_an_outcome_not_html(client, node):
    response = client.get("/store/fhir/MedicationRequest/1/_history/1/extra")
    assert response.status_code == 404
    outcome(response)


def test_deleted_resource_is_410(client, node):
    created = post(client, "/store/fhir/MedicationRequest", make_medication_request())
    location = f"/store/fhir/MedicationRequest/{created.json()['id']}"
    assert client.delete(location).status_code == 204
    response = client.get(location)
    assert response.status_code == 410
    assert outcome(response)["issue"][0]["code"] == "deleted"


def test_stale_if_match_is_412_and_changes_nothing(client, node):
    created = post(client, "/store/fhir/MedicationRequest", make_medication_request()).json()
    path = f"/store/fhir/MedicationRequest/{created['id']}"
    client.put(path, json.dumps(created | {"status": "on-hold"}), content_type=FHIR_JSON)
    response = client.put(
        path,
        json.dumps(created | {"status": "cancelled"}),
        content_type=FHIR_JSON,
        headers={"If-Match": 'W/"1"'},
    )
    assert response.status_code == 412
    assert "version 2" in outcome(response)["issue"][0]["diagnostics"]
    assert client.get(path).json()["status"] == "on-hold"


def test_second_resource_with_the_same_business_identifier_is_409(client, node):
    body = make_medication_request()
    assert post(client, "/store/fhir/MedicationRequest", body).status_code == 201
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 409
    issue = outcome(response)["issue"][0]
    assert (issue["code"], issue["expression"]) == ("duplicate", ["MedicationRequest.identifier"])
    assert stored().count() == 1


def test_wrong_content_type_is_415(client, node):
    response = post(
        client,
        "/store/fhir/MedicationRequest",
        "status=active",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert outcome(response)["issue"][0]["code"] == "not-supported"


def test_missing_content_type_is_415(client, node):
    response = client.generic(
        "POST", "/store/fhir/MedicationRequest", json.dumps(make_medication_request()), content_type=""
    )
    assert response.status_code == 415
    outcome(response)


def test_accept_that_cannot_be_met_is_406(client, node):
    response = client.get("/store/fhir/metadata", headers={"Accept": "text/turtle"})
    assert response.status_code == 406
    outcome(response)


def test_format_that_cannot_be_met_is_406(client, node):
    response = client.get("/store/fhir/metadata?_format=ttl")
    assert response.status_code == 406
    outcome(response)


def test_body_over_the_limit_is_413(client, node, settings):
    settings.FHIR_MAX_BODY_BYTES = 2000
    body = make_medication_request(note=[{"text": "x" * 3000}])
    response = post(client, "/store/fhir/MedicationRequest", body)
    assert response.status_code == 413
    assert outcome(response)["issue"][0]["code"] == "too-long"
    assert not stored().exists()


def test_identifier_too_long_to_index_is_400_and_nothing_is_written(client, node):
    fits = make_medication_request(identifier=[{"system": "https://trust.example/id", "value": "x" * 255}])
    assert post(client, "/store/fhir/MedicationRequest", fits).status_code == 201
    too_long = make_medication_request(
        identifier=[{"system": "https://trust.example/id", "value": "y" * 256}]
    )
    response = post(client, "/store/fhir/MedicationRequest", too_long)
    assert response.status_code == 400
    issue = outcome(response)["issue"][0]
    assert issue["code"] == "too-long"
    assert issue["expression"] == ["MedicationRequest.identifier"]
    assert stored().count() == 1


def test_update_with_an_id_not_matching_the_url_is_400(client, node):
    body = make_medication_request(id="other")
    response = client.put("/store/fhir/MedicationRequest/mine", json.dumps(body), content_type=FHIR_JSON)
    assert response.status_code == 400
    assert outcome(response)["issue"][0]["expression"] == ["MedicationRequest.id"]


def test_method_not_allowed_is_405_outcome(client, node):
    response = client.patch("/store/fhir/MedicationRequest/x", "{}", content_type=FHIR_JSON)
    assert response.status_code == 405
    outcome(response)


def test_if_none_exist_matching_several_is_412(client, node):
    for _ in range(2):
        assert (
            post(
                client,
                "/store/fhir/Patient",
                {"resourceType": "Patient", "identifier": [{"system": "urn:local", "value": "same"}]},
            ).status_code
            == 201
        )
    response = post(
        client,
        "/store/fhir/Patient",
        {"resourceType": "Patient"},
        **{"If-None-Exist": "identifier=urn:local|same"},
    )
    assert response.status_code == 412
    assert outcome(response)["issue"][0]["code"] == "multiple-matches"
    assert Resource.objects.filter(resource_type="Patient").count() == 2
