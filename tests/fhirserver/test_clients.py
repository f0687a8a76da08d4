"""The API through real FHIR clients from PyPI, against a live server."""

from __future__ import annotations

import pytest
from fhirclient import server as fc_server
from fhirclient.models.medicationrequest import MedicationRequest as FCMedicationRequest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from tests.factories import ITEM_SYSTEM, bearer, identifier_query, make_medication_request


@pytest.fixture
def fhirpy_client(store_base):
    return SyncFHIRClient(store_base, authorization=bearer("store")["Authorization"])


@pytest.fixture
def fhirclient_server(store_base):
    server = fc_server.FHIRServer(None, base_uri=store_base + "/")
    server.session.headers.update(bearer("store"))
    return server


def test_fhirpy_create_read_update_and_search(fhirpy_client):
    body = make_medication_request()
    created = fhirpy_client.resource("MedicationRequest", **body)
    created.save()
    assert created.id
    assert created["meta"]["versionId"] == "1"

    read = fhirpy_client.reference("MedicationRequest", created.id).to_resource()
    assert read["subject"]["identifier"]["value"] == "9449304130"

    read["status"] = "on-hold"
    read.save()
    assert fhirpy_client.reference("MedicationRequest", created.id).to_resource()["status"] == "on-hold"

    value = body["identifier"][0]["value"]
    found = (
        fhirpy_client.resources("MedicationRequest").search(identifier=f"{ITEM_SYSTEM}|{value}").fetch_all()
    )
    assert [r.id for r in found] == [created.id]


def test_fhirpy_conditional_create_returns_the_first(fhirpy_client):
    body = make_medication_request()
    first = fhirpy_client.resource("MedicationRequest", **body)
    first.create(identifier=f"{ITEM_SYSTEM}|{body['identifier'][0]['value']}")
    again = fhirpy_client.resource("MedicationRequest", **body)
    again.create(identifier=f"{ITEM_SYSTEM}|{body['identifier'][0]['value']}")
    assert again.id == first.id
    assert len(fhirpy_client.resources("MedicationRequest").fetch_all()) == 1


def test_fhirpy_sees_errors_as_operation_outcomes(fhirpy_client):
    bad = fhirpy_client.resource("MedicationRequest", **make_medication_request(status="bogus"))
    with pytest.raises(OperationOutcome) as raised:
        bad.save()
    assert "MedicationRequest.status" in str(raised.value)


def test_fhirpy_fetch_all_follows_next_links(fhirpy_client):
    for _ in range(5):
        fhirpy_client.resource("MedicationRequest", **make_medication_request()).save()
    found = fhirpy_client.resources("MedicationRequest").limit(2).fetch_all()
    assert len(found) == 5


def test_fhirclient_create_read_update_with_if_match_and_search(fhirclient_server, store_base):
    body = make_medication_request()
    request = FCMedicationRequest(body)
    answer = request.create(fhirclient_server)
    assert answer["meta"]["versionId"] == "1"
    logical_id = answer["id"]

    read = FCMedicationRequest.read(logical_id, fhirclient_server)
    assert read.intent == "order"
    read.status = "on-hold"
    # fhirclient's update sends no If-Match itself: send one as a HAPI user would.
    session = fhirclient_server.session
    response = session.put(
        f"{store_base}/MedicationRequest/{logical_id}",
        json=read.as_json(),
        headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'},
    )
    assert response.status_code == 200
    stale = session.put(
        f"{store_base}/MedicationRequest/{logical_id}",
        json=read.as_json(),
        headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"

    read.status = "cancelled"
    read.meta = None
    read.update(fhirclient_server)
    assert FCMedicationRequest.read(logical_id, fhirclient_server).status == "cancelled"

    search = FCMedicationRequest.where({"identifier": identifier_query(body).split("=", 1)[1]})
    found = list(search.perform_resources_iter(fhirclient_server))
    assert [r.id for r in found] == [logical_id]


def test_fhirclient_conditional_create_header(fhirclient_server, store_base):
    body = make_medication_request()
    headers = {"Content-Type": "application/fhir+json", "If-None-Exist": identifier_query(body)}
    first = fhirclient_server.session.post(f"{store_base}/MedicationRequest", json=body, headers=headers)
    second = fhirclient_server.session.post(f"{store_base}/MedicationRequest", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
