"""The REST interactions as a client sees them: headers, versions, history, isolation."""

from __future__ import annotations

import json

import pytest

from tests.factories import bearer, identifier_query, make_medication_request, stored

FHIR_JSON = "application/fhir+json"


def create(client, body: dict, node: str = "store", **headers):
    headers = bearer(node) | headers
    return client.post(
        f"/{node}/fhir/{body['resourceType']}", json.dumps(body), content_type=FHIR_JSON, headers=headers
    )


def test_create_assigns_an_id_and_answers_201_with_location_and_version(client, store):
    sent = make_medication_request(id="client-chosen")
    response = create(client, sent)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "client-chosen"
    assert response["Location"] == f"http://testserver/store/fhir/MedicationRequest/{body['id']}/_history/1"
    assert response["ETag"] == 'W/"1"'
    assert response["Last-Modified"].endswith("GMT")
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"]


def test_prefer_return_minimal_answers_no_body(client, store):
    response = create(client, make_medication_request(), Prefer="return=minimal")
    assert response.status_code == 201
    assert response.content == b""
    assert "/_history/1" in response["Location"]


def test_prefer_return_operation_outcome(client, store):
    response = create(client, make_medication_request(), Prefer="return=OperationOutcome")
    assert response.status_code == 201
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["severity"] == "information"


def test_resource_is_stored_losslessly_including_decimal_precision_and_extensions(client, store):
    sent = make_medication_request(
        extension=[
            {
                "url": "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionType",
                "valueCoding": {"system": "https://fhir.nhs.uk/CodeSystem/prescription-type", "code": "0101"},
            }
        ]
    )
    raw = json.dumps(sent).replace('"value": 60', '"value": 60.50')
    response = client.post("/store/fhir/MedicationRequest", raw, content_type=FHIR_JSON)
    read = client.get(f"/store/fhir/MedicationRequest/{response.json()['id']}")
    assert b'"value":60.50' in read.content
    assert read.json()["extension"] == sent["extension"]


def test_read_vread_and_history_keep_every_version(client, store):
    created = create(client, make_medication_request()).json()
    path = f"/store/fhir/MedicationRequest/{created['id']}"
    updated = client.put(
        path,
        json.dumps(created | {"status": "on-hold"}),
        content_type=FHIR_JSON,
        headers={"If-Match": 'W/"1"'},
    )
    assert updated.status_code == 200
    assert updated["ETag"] == 'W/"2"'
    assert client.get(path).json()["status"] == "on-hold"
    assert client.get(f"{path}/_history/1").json()["status"] == "active"
    assert client.get(f"{path}/_history/2")["ETag"] == 'W/"2"'
    assert client.get(f"{path}/_history/3").status_code == 404
    history = client.get(f"{path}/_history").json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]


def test_update_as_create_uses_the_clients_id(client, store):
    body = make_medication_request(id="rx-from-elsewhere")
    response = client.put(
        "/store/fhir/MedicationRequest/rx-from-elsewhere", json.dumps(body), content_type=FHIR_JSON
    )
    assert response.status_code == 201
    assert response["Location"].endswith("/MedicationRequest/rx-from-elsewhere/_history/1")
    assert client.get("/store/fhir/MedicationRequest/rx-from-elsewhere").status_code == 200


def test_delete_then_history_shows_the_deletion_and_vread_of_it_is_410(client, store):
    created = create(client, make_medication_request()).json()
    path = f"/store/fhir/MedicationRequest/{created['id']}"
    assert client.delete(path).status_code == 204
    assert client.delete(path).status_code == 204
    history = client.get(f"{path}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    assert client.get(f"{path}/_history/2").status_code == 410
    assert client.get(f"{path}/_history/1").status_code == 200


def test_deleted_resource_frees_its_identifier_and_leaves_search(client, store):
    body = make_medication_request()
    created = create(client, body).json()
    client.delete(f"/store/fhir/MedicationRequest/{created['id']}")
    assert client.get(f"/store/fhir/MedicationRequest?{identifier_query(body)}").json()["total"] == 0
    assert create(client, body).status_code == 201


def test_conditional_create_returns_the_existing_resource(client, store):
    body = make_medication_request()
    first = create(client, body, **{"If-None-Exist": identifier_query(body)})
    second = create(client, body, **{"If-None-Exist": identifier_query(body)})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert stored().count() == 1


def test_conditional_create_with_an_unsupported_parameter_is_refused(client, store):
    response = create(client, make_medication_request(), **{"If-None-Exist": "colour=blue"})
    assert response.status_code == 400
    assert not stored().exists()


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("identifier={system}|{value}", True),
        ("identifier={value}", True),
        ("identifier={system}|", True),
        ("identifier=|{value}", False),
        ("identifier=other|{value}", False),
        ("identifier=nope,{value}", True),
        ("identifier={system}|{value}&identifier=nope", False),
    ],
)
def test_search_by_identifier_token_forms(client, store, query, found):
    body = make_medication_request()
    create(client, body)
    identifier = body["identifier"][0]
    url = "/store/fhir/MedicationRequest?" + query.format(**identifier)
    bundle = client.get(url).json()
    assert bundle["type"] == "searchset"
    assert bundle["total"] == (1 if found else 0)


def test_search_by_id_and_paging_with_next_links(client, store):
    ids = [create(client, make_medication_request()).json()["id"] for _ in range(5)]
    page = client.get("/store/fhir/MedicationRequest?_count=2").json()
    seen = []
    while True:
        seen += [entry["resource"]["id"] for entry in page["entry"] if entry["search"]["mode"] == "match"]
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        page = client.get(following[0]).json()
    assert seen == ids
    assert (
        client.get(f"/store/fhir/MedicationRequest?_id={ids[3]}").json()["entry"][0]["resource"]["id"]
        == ids[3]
    )


def test_unknown_search_parameters_are_reported_or_refused_when_strict(client, store):
    lenient = client.get("/store/fhir/MedicationRequest?colour=blue").json()
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = client.get("/store/fhir/MedicationRequest?colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_a_resource_at_one_node_is_not_found_at_another(client, store, broker):
    created = create(client, make_medication_request()).json()
    at_broker = bearer("broker")
    path = f"/MedicationRequest/{created['id']}"
    assert client.get(f"/store/fhir{path}").status_code == 200
    assert client.get(f"/broker/fhir{path}", headers=at_broker).status_code == 404
    search = client.get(f"/broker/fhir/MedicationRequest?_id={created['id']}", headers=at_broker)
    assert search.json()["total"] == 0
    put = client.put(
        f"/broker/fhir{path}",
        json.dumps(created | {"status": "cancelled"}),
        content_type=FHIR_JSON,
        headers=at_broker | {"If-Match": 'W/"1"'},
    )
    assert put.status_code == 412
    assert client.delete(f"/broker/fhir{path}", headers=at_broker).status_code == 404
    assert client.get(f"/store/fhir{path}").json()["status"] == "active"


def test_one_nodes_token_does_not_open_another(client, store, broker):
    created = create(client, make_medication_request()).json()
    response = client.get(f"/broker/fhir/MedicationRequest/{created['id']}")
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"


def test_the_same_business_identifier_may_live_at_two_nodes(client, store, broker):
    body = make_medication_request()
    assert create(client, body, node="store").status_code == 201
    assert create(client, body, node="broker").status_code == 201


def test_json_and_format_parameter_are_accepted(client, store):
    body = make_medication_request()
    response = client.post(
        "/store/fhir/MedicationRequest",
        json.dumps(body),
        content_type="application/json",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    read = client.get(f"/store/fhir/MedicationRequest/{response.json()['id']}?_format=json")
    assert read.status_code == 200


def test_read_with_the_current_version_in_if_none_match_is_304(client, store):
    created = create(client, make_medication_request()).json()
    path = f"/store/fhir/MedicationRequest/{created['id']}"
    assert client.get(path, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": 'W/"0"'}).status_code == 200


def test_conditional_create_may_put_its_search_on_the_url(client, store):
    body = make_medication_request()
    url = f"/store/fhir/MedicationRequest?{identifier_query(body)}"
    first = client.post(url, json.dumps(body), content_type=FHIR_JSON)
    second = client.post(url, json.dumps(body), content_type=FHIR_JSON)
    assert (first.status_code, second.status_code) == (201, 200)
    assert stored().count() == 1
