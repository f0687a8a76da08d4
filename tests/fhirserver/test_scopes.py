"""Scopes: every kind of interaction succeeds with the scope it needs and is refused (403, an
OperationOutcome naming the scope) without it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from fhirserver.services import resource_create
from nodes.services import api_client_issue
from tests.factories import make_medication_request, stored

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def held(store) -> dict[str, str]:
    """A patient and a request about them at the store node."""
    patient = resource_create(
        node=store, resource_type="Patient", content={"resourceType": "Patient"}
    ).resource
    request = make_medication_request(subject={"reference": f"Patient/{patient.logical_id}"})
    stored = resource_create(node=store, resource_type="MedicationRequest", content=request).resource
    return {"patient": patient.logical_id, "request": stored.logical_id}


def holding(store, scopes: str) -> Client:
    _, token = api_client_issue(node=store, name=f"client {scopes}", scopes=scopes)
    return Client(headers={"Authorization": f"Bearer {token}"})


def bundle(kind: str, *entries: dict) -> str:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)})


def post(url: str) -> dict:
    return {"request": {"method": "POST", "url": url}, "resource": {"resourceType": url}}


# (what is done, the scope that grants it, one that does not, the request)
CASES = [
    (
        "read",
        "system/MedicationRequest.r",
        "system/MedicationRequest.s",
        "GET",
        "MedicationRequest/{request}",
    ),
    (
        "vread",
        "system/MedicationRequest.read",
        "system/Patient.read",
        "GET",
        "MedicationRequest/{request}/_history/1",
    ),
    (
        "history of one",
        "system/MedicationRequest.r",
        "system/MedicationRequest.s",
        "GET",
        "MedicationRequest/{request}/_history",
    ),
    (
        "search",
        "system/MedicationRequest.s",
        "system/MedicationRequest.r",
        "GET",
        "MedicationRequest?status=active",
    ),
    (
        "type history",
        "system/MedicationRequest.s",
        "system/MedicationRequest.r",
        "GET",
        "MedicationRequest/_history",
    ),
    ("system history", "system/*.s", "system/MedicationRequest.cruds", "GET", "_history"),
    (
        "_include",
        "system/MedicationRequest.s system/Patient.s",
        "system/MedicationRequest.s",
        "GET",
        "MedicationRequest?_include=MedicationRequest:subject:Patient",
    ),
    (
        "_revinclude",
        "system/Patient.s system/MedicationRequest.s",
        "system/Patient.s",
        "GET",
        "Patient?_revinclude=MedicationRequest:subject",
    ),
    (
        "chain",
        "system/MedicationRequest.s system/Patient.s",
        "system/MedicationRequest.s",
        "GET",
        "MedicationRequest?subject:Patient._id={patient}",
    ),
    ("create", "system/Patient.c", "system/Patient.rus", "POST", "Patient"),
    ("update", "system/Patient.u", "system/Patient.crds", "PUT", "Patient/{patient}"),
    ("delete", "system/Patient.d", "system/Patient.cru", "DELETE", "Patient/{patient}"),
    ("everything", "system/*.*", "system/Patient.read", "DELETE", "MedicationRequest/{request}"),
]


@pytest.mark.parametrize(("doing", "granting", "lacking", "method", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_interaction_needs_its_scope(store, held, doing, granting, lacking, method, path):
    url = "/store/fhir/" + path.format(**held)
    body = (
        json.dumps({"resourceType": "Patient", "id": held["patient"]}) if method in ("POST", "PUT") else None
    )

    def send(client: Client):
        if body is None:
            return client.generic(method, url)
        return client.generic(method, url, body, content_type=FHIR_JSON)

    refused = send(holding(store, lacking))
    assert refused.status_code == 403, refused.content
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert "lacks the scope system/" in refused.json()["issue"][0]["diagnostics"]
    allowed = send(holding(store, granting))
    assert allowed.status_code in (200, 201, 204), allowed.content


def test_post_search_checks_the_types_its_body_reaches(store, held):
    body = "_include=MedicationRequest:subject:Patient"
    form = "application/x-www-form-urlencoded"
    narrow = holding(store, "system/MedicationRequest.s")
    refused = narrow.post("/store/fhir/MedicationRequest/_search", body, content_type=form)
    assert refused.status_code == 403
    assert "system/Patient.s" in refused.json()["issue"][0]["diagnostics"]
    wide = holding(store, "system/MedicationRequest.s system/Patient.s")
    found = wide.post("/store/fhir/MedicationRequest/_search", body, content_type=form).json()
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {"MedicationRequest", "Patient"}


def test_a_transaction_with_one_entry_out_of_scope_is_refused_whole(store, held):
    client = holding(store, "system/Patient.c")
    before = stored().filter(node=store).count()
    refused = client.post(
        "/store/fhir", bundle("transaction", post("Patient"), post("Practitioner")), content_type=FHIR_JSON
    )
    assert refused.status_code == 403
    assert "Bundle.entry[1]" in refused.json()["issue"][0]["diagnostics"]
    assert stored().filter(node=store).count() == before
    done = client.post("/store/fhir", bundle("transaction", post("Patient")), content_type=FHIR_JSON)
    assert done.status_code == 200
    assert stored().filter(node=store).count() == before + 1


def test_a_batch_answers_an_out_of_scope_entry_403_and_does_the_rest(store, held):
    client = holding(store, "system/Patient.c")
    answer = client.post(
        "/store/fhir", bundle("batch", post("Practitioner"), post("Patient")), content_type=FHIR_JSON
    ).json()
    assert [e["response"]["status"][:3] for e in answer["entry"]] == ["403", "201"]


def test_subscription_operations_need_subscription_read(store):
    subscription = resource_create(
        node=store,
        resource_type="Subscription",
        content={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "test",
            "criteria": "MedicationRequest?status=active",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/notify"},
        },
    ).resource
    url = f"/store/fhir/Subscription/{subscription.logical_id}/$status"
    assert holding(store, "system/MedicationRequest.rs").get(url).status_code == 403
    assert holding(store, "system/Subscription.r").get(url).status_code != 403


def test_every_demo_token_holds_scopes_that_each_grant_something(db):
    from fhirserver.scopes import problems
    from nodes.demo import demo_seed
    from nodes.models import ApiClient

    demo_seed()
    clients = ApiClient.objects.select_related("node")
    assert clients.count() > 30
    assert {f"{c.node.slug}/{c.name}": problems(c.scopes) for c in clients if problems(c.scopes)} == {}
    assert all(c.scopes for c in clients)
