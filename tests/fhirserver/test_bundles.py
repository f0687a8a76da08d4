"""Batch and transaction Bundles posted to a node's base."""

from __future__ import annotations

import json
import uuid

import pytest

from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM
from tests.factories import bearer, identifier_query, make_medication_request, stored, stored_versions

FHIR_JSON = "application/fhir+json"


def make_patient(**overrides) -> dict:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9449304130"}],
        "name": [{"family": "Smith", "given": ["Jane"]}],
    }
    patient.update(overrides)
    return patient


def make_dispense(prescription_reference: str) -> dict:
    return {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": "39720311000001101"}]
        },
        "authorizingPrescription": [{"reference": prescription_reference}],
    }


def entry(
    method: str, url: str, resource: dict | None = None, full_url: str | None = None, **request
) -> dict:
    """Return a Bundle entry; request holds ifMatch, ifNoneExist and the like."""
    item: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_bundle(client, body: object, path: str = "/store/fhir", **headers):
    return client.post(path, json.dumps(body), content_type=FHIR_JSON, headers=headers)


def create(client, body: dict) -> dict:
    response = client.post(f"/store/fhir/{body['resourceType']}", json.dumps(body), content_type=FHIR_JSON)
    assert response.status_code == 201
    return response.json()


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@pytest.mark.parametrize("patient_url", [urn(), "http://elsewhere.example/fhir/Patient/temporary-1"])
def test_transaction_stores_a_patient_and_a_request_whose_references_to_its_full_url_become_its_id(
    client, store, patient_url
):
    request = make_medication_request(
        subject={"reference": patient_url}, supportingInformation=[{"reference": patient_url}]
    )
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", make_patient(), patient_url),
            entry("POST", "MedicationRequest", request, urn()),
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "transaction-response"
    patient_entry, request_entry = body["entry"]
    patient_id = patient_entry["resource"]["id"]
    request_id = request_entry["resource"]["id"]
    assert patient_entry["response"]["status"] == "201 Created"
    assert request_entry["response"]["status"] == "201 Created"
    assert patient_entry["response"]["location"] == f"Patient/{patient_id}/_history/1"
    assert request_entry["response"]["location"] == f"MedicationRequest/{request_id}/_history/1"
    assert request_entry["response"]["etag"] == 'W/"1"'
    assert request_entry["response"]["lastModified"]
    stored = client.get(f"/store/fhir/MedicationRequest/{request_id}").json()
    assert stored["subject"] == {"reference": f"Patient/{patient_id}"}
    assert stored["supportingInformation"] == [{"reference": f"Patient/{patient_id}"}]
    assert client.get(f"/store/fhir/Patient/{patient_id}").json()["name"][0]["family"] == "Smith"
    found = client.get(f"/store/fhir/MedicationRequest?subject=Patient/{patient_id}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [request_id]


def test_transaction_whose_last_entry_is_invalid_leaves_nothing_behind(client, store):
    create(client, make_medication_request())
    resources, versions = stored().count(), stored_versions().count()
    patient_url = urn()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", make_patient(), patient_url),
            entry("POST", "MedicationRequest", make_medication_request(subject={"reference": patient_url})),
            entry("POST", "MedicationRequest", make_medication_request(status="bogus")),
        ),
    )
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "code-invalid"
    assert outcome["issue"][0]["diagnostics"].startswith("Bundle.entry[2]")
    assert (stored().count(), stored_versions().count()) == (resources, versions)


def test_transaction_entry_whose_resource_is_not_the_type_of_its_url_fails_the_transaction(client, store):
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", make_patient()),
            entry("POST", "Patient", make_medication_request()),
        ),
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.resourceType"]
    assert not stored().exists()


def test_conditional_create_in_a_transaction_answers_the_existing_resource_and_references_point_to_it(
    client, store
):
    sent = make_medication_request()
    existing = create(client, sent)
    request_url = urn()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "MedicationRequest", sent, request_url, ifNoneExist=identifier_query(sent)),
            entry("POST", "MedicationDispense", make_dispense(request_url)),
        ),
    )
    assert response.status_code == 200
    request_entry, dispense_entry = response.json()["entry"]
    assert request_entry["response"]["status"] == "200 OK"
    assert request_entry["resource"]["id"] == existing["id"]
    assert request_entry["response"]["location"] == f"MedicationRequest/{existing['id']}/_history/1"
    assert dispense_entry["response"]["status"] == "201 Created"
    dispense = client.get(f"/store/fhir/MedicationDispense/{dispense_entry['resource']['id']}").json()
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{existing['id']}"}]
    assert Resource.objects.filter(resource_type="MedicationRequest").count() == 1


def test_conditional_create_in_a_transaction_that_matches_several_fails_it_with_412(client, store):
    create(client, make_patient())
    create(client, make_patient())
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "MedicationRequest", make_medication_request()),
            entry(
                "POST", "Patient", make_patient(), ifNoneExist=f"identifier={NHS_NUMBER_SYSTEM}|9449304130"
            ),
        ),
    )
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "multiple-matches"
    assert not Resource.objects.filter(resource_type="MedicationRequest").exists()


def test_transaction_runs_get_after_put_but_answers_in_request_order(client, store):
    existing = create(client, make_medication_request())
    path = f"MedicationRequest/{existing['id']}"
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("GET", path),
            entry("PUT", path, existing | {"status": "on-hold"}),
            entry("POST", "Patient", make_patient()),
        ),
    )
    assert response.status_code == 200
    read, updated, created = response.json()["entry"]
    assert read["response"] == {
        "status": "200 OK",
        "etag": 'W/"2"',
        "lastModified": updated["response"]["lastModified"],
    }
    assert read["resource"]["status"] == "on-hold"
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["location"] == f"{path}/_history/2"
    assert created["resource"]["resourceType"] == "Patient"


def test_transaction_deletes_before_it_creates(client, store):
    sent = make_medication_request()
    existing = create(client, sent)
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "MedicationRequest", sent, ifNoneExist=identifier_query(sent)),
            entry("DELETE", f"MedicationRequest/{existing['id']}"),
        ),
    )
    assert response.status_code == 200
    created, deleted = response.json()["entry"]
    # Had the POST run first, its ifNoneExist would have found the resource being deleted.
    assert created["response"]["status"] == "201 Created"
    assert created["resource"]["id"] != existing["id"]
    assert deleted["response"]["status"] == "204 No Content"
    assert deleted["response"]["etag"] == 'W/"2"'
    assert client.get(f"/store/fhir/MedicationRequest/{existing['id']}").status_code == 410


def test_transaction_get_of_a_resource_it_deletes_fails_it_with_410(client, store):
    existing = create(client, make_medication_request())
    path = f"MedicationRequest/{existing['id']}"
    response = post_bundle(client, bundle("transaction", entry("GET", path), entry("DELETE", path)))
    assert response.status_code == 410
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/store/fhir/{path}").status_code == 200


def test_transaction_search_sees_the_transactions_own_writes(client, store):
    sent = make_medication_request()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("GET", f"MedicationRequest?{identifier_query(sent)}"),
            entry("POST", "MedicationRequest", sent),
        ),
    )
    searched, created = response.json()["entry"]
    assert searched["response"]["status"] == "200 OK"
    assert searched["resource"]["type"] == "searchset"
    assert [e["resource"]["id"] for e in searched["resource"]["entry"]] == [created["resource"]["id"]]


def test_put_with_a_stale_if_match_fails_the_transaction_and_changes_nothing(client, store):
    existing = create(client, make_medication_request())
    path = f"/store/fhir/MedicationRequest/{existing['id']}"
    client.put(path, json.dumps(existing | {"status": "on-hold"}), content_type=FHIR_JSON)
    resources = stored().count()
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Patient", make_patient()),
            entry(
                "PUT",
                f"MedicationRequest/{existing['id']}",
                existing | {"status": "cancelled"},
                ifMatch='W/"1"',
            ),
        ),
    )
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "conflict"
    assert stored().count() == resources
    current = client.get(path).json()
    assert (current["meta"]["versionId"], current["status"]) == ("2", "on-hold")


def test_batch_answers_each_entry_on_its_own(client, store):
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "MedicationRequest", make_medication_request()),
            entry("POST", "MedicationRequest", make_medication_request(status="bogus")),
            entry("GET", "MedicationRequest/not-here"),
        ),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    created, invalid, missing = body["entry"]
    assert created["response"]["status"] == "201 Created"
    assert client.get(f"/store/fhir/{created['response']['location']}").status_code == 200
    assert invalid["response"]["status"] == "400 Bad Request"
    assert invalid["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert invalid["response"]["outcome"]["issue"][0]["expression"] == ["MedicationRequest.status"]
    assert "resource" not in invalid
    assert missing["response"]["status"] == "404 Not Found"
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert stored().count() == 1


def test_batch_refuses_an_entry_without_a_method_or_with_one_not_implemented_in_that_entry(client, store):
    response = post_bundle(
        client,
        bundle(
            "batch",
            {"request": {"url": "Patient"}, "resource": make_patient()},
            entry("PATCH", "Patient/p1"),
            entry("FETCH", "Patient/p1"),
            {"resource": make_patient()},
            entry("PUT", "Patient/p2", make_patient(id="p2")),
        ),
    )
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == [
        "400 Bad Request",
        "405 Method Not Allowed",
        "400 Bad Request",
        "400 Bad Request",
        "201 Created",
    ]


def test_batch_leaves_references_to_other_entries_as_they_were_sent(client, store):
    patient_url = urn()
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("POST", "Patient", make_patient(), patient_url),
            entry("POST", "MedicationRequest", make_medication_request(subject={"reference": patient_url})),
        ),
    )
    assert response.status_code == 200
    created = response.json()["entry"][1]
    assert created["response"]["status"] == "201 Created"
    assert created["resource"]["subject"] == {"reference": patient_url}


def test_batch_reads_a_version_and_takes_urls_on_this_base(client, store):
    existing = create(client, make_medication_request())
    response = post_bundle(
        client,
        bundle(
            "batch",
            entry("GET", f"http://testserver/store/fhir/MedicationRequest/{existing['id']}/_history/1"),
            entry("GET", f"http://elsewhere.example/fhir/MedicationRequest/{existing['id']}"),
        ),
    )
    here, elsewhere = response.json()["entry"]
    assert here["resource"]["id"] == existing["id"]
    assert here["response"]["etag"] == 'W/"1"'
    assert elsewhere["response"]["status"] == "400 Bad Request"


@pytest.mark.parametrize(
    "body",
    [
        make_patient(),
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": {"request": {}}},
        [bundle("batch")],
    ],
    ids=["not-a-bundle", "collection", "entry-not-an-array", "json-array"],
)
def test_a_body_that_is_not_a_batch_or_transaction_bundle_is_refused_with_400(client, store, body):
    response = post_bundle(client, body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "bad_entry",
    [
        "not an object",
        {"resource": make_patient()},
        {"request": {"method": "POST"}, "resource": make_patient()},
        {"request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "POST", "url": "Patient", "ifNoneExist": 7}, "resource": make_patient()},
        {"request": {"method": "PUT", "url": "Patient?identifier=x"}, "resource": make_patient()},
        {"request": {"method": "GET", "url": "Nonsense/1"}},
    ],
)
def test_a_malformed_transaction_entry_fails_the_transaction_with_an_outcome_not_a_500(
    client, store, bad_entry
):
    response = post_bundle(client, bundle("transaction", entry("POST", "Patient", make_patient()), bad_entry))
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert not stored().exists()


@pytest.mark.parametrize("path", ["/store/fhir", "/store/fhir/"])
def test_the_base_takes_a_bundle_with_or_without_a_trailing_slash(client, store, path):
    response = post_bundle(client, bundle("batch", entry("POST", "Patient", make_patient())), path)
    assert response.status_code == 200
    assert response.json()["entry"][0]["response"]["status"] == "201 Created"


def test_an_empty_transaction_answers_an_empty_response(client, store):
    response = post_bundle(client, {"resourceType": "Bundle", "type": "transaction"})
    assert response.status_code == 200
    assert response.json()["type"] == "transaction-response"
    assert "entry" not in response.json()


def test_the_base_needs_a_token_for_this_node(client, store, broker):
    body = json.dumps(bundle("batch", entry("POST", "Patient", make_patient())))
    assert client.post("/broker/fhir", body, content_type=FHIR_JSON).status_code == 403
    anonymous = client.post("/store/fhir", body, content_type=FHIR_JSON, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert (
        client.post("/store/fhir", body, content_type=FHIR_JSON, headers=bearer("store")).status_code == 200
    )
    assert not stored().exclude(node=store).exists()


def test_capability_statement_lists_batch_and_transaction(client, store):
    rest = client.get("/store/fhir/metadata").json()["rest"][0]
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}


CONDITIONAL = f"Patient?identifier={NHS_NUMBER_SYSTEM}|9449304130"


def test_a_conditional_reference_in_a_transaction_becomes_the_one_resource_it_matches(client, store):
    patient = create(client, make_patient())
    create(client, make_patient(identifier=[{"system": NHS_NUMBER_SYSTEM, "value": "9449305552"}]))
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "MedicationRequest", make_medication_request(subject={"reference": CONDITIONAL})),
            entry("PUT", "Practitioner/p1", {"resourceType": "Practitioner", "id": "p1"}),
        ),
    )
    assert response.status_code == 200, response.content
    request = stored().get(resource_type="MedicationRequest")
    assert json.loads(request.text)["subject"] == {"reference": f"Patient/{patient['id']}"}


@pytest.mark.parametrize(
    ("patients", "status", "code"), [(0, 404, "not-found"), (2, 412, "multiple-matches")]
)
def test_a_conditional_reference_matching_none_or_several_fails_the_whole_transaction(
    client, store, patients, status, code
):
    for _ in range(patients):
        create(client, make_patient())
    response = post_bundle(
        client,
        bundle(
            "transaction",
            entry("POST", "Practitioner", {"resourceType": "Practitioner"}),
            entry("POST", "MedicationRequest", make_medication_request(subject={"reference": CONDITIONAL})),
        ),
    )
    assert response.status_code == status
    issue = response.json()["issue"][0]
    assert issue["code"] == code
    assert issue["diagnostics"].startswith("Bundle.entry[1]")
    assert CONDITIONAL in issue["diagnostics"]
    assert not stored().filter(resource_type__in=["Practitioner", "MedicationRequest"]).exists()
