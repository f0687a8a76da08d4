"""AuditEvent for every access: each FHIR interaction (whatever its outcome) and each screen view
leaves exactly one, searchable by a client with the audit scope, and none can be changed."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from fhirserver import audit, jsonio
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM
from fhirserver.services import resource_create
from fhirserver.validation import validate_resource
from nodes.models import ApiClient, Membership
from nodes.services import api_client_issue
from tests.exchange.partner import free_port
from tests.factories import make_medication_request, make_patient
from tests.processes import Web, wait_for

FHIR_JSON = "application/fhir+json"
NHS = "9449304130"


def events(node) -> list[dict]:
    return [
        jsonio.loads(r.text)
        for r in Resource.objects.filter(node=node, resource_type="AuditEvent").order_by("pk")
    ]


def after(node, do) -> tuple[object, list[dict]]:
    """Do something; return its answer and the AuditEvents it left."""
    before = len(events(node))
    answer = do()
    return answer, events(node)[before:]


@pytest.fixture
def held(store):
    request = resource_create(
        node=store, resource_type="MedicationRequest", content=make_medication_request()
    )
    return request.resource


def entities(event: dict) -> list[str]:
    return [
        e["what"].get("reference") or e["what"]["identifier"]["value"]
        for e in event.get("entity", [])
        if "what" in e
    ]


@pytest.mark.parametrize(
    ("method", "path", "subtype", "action"),
    [
        ("GET", "MedicationRequest/{id}", "read", "R"),
        ("GET", "MedicationRequest/{id}/_history/1", "vread", "R"),
        ("GET", "MedicationRequest/{id}/_history", "history-instance", "R"),
        ("GET", "MedicationRequest?status=active", "search-type", "E"),
        ("GET", "_history", "history-system", "R"),
        ("DELETE", "MedicationRequest/{id}", "delete", "D"),
    ],
)
def test_each_interaction_leaves_one_audit_event(client, store, held, method, path, subtype, action):
    answer, left = after(
        store, lambda: client.generic(method, "/store/fhir/" + path.format(id=held.logical_id))
    )
    assert answer.status_code in (200, 204)
    (event,) = left
    validate_resource(event, resource_type="AuditEvent")  # a valid R4 AuditEvent
    assert event["subtype"][0]["code"] == subtype
    assert (event["action"], event["outcome"]) == (action, "0")
    client_id = ApiClient.objects.get(node=store, name="tests").client_id
    assert event["agent"][0]["who"]["identifier"]["value"] == client_id
    assert event["source"]["observer"]["identifier"]["value"] == store.ods_code
    if "{id}" in path:
        assert f"MedicationRequest/{held.logical_id}" in entities(event)
    if "?" in path:
        query = next(e for e in event["entity"] if e["role"]["code"] == "24")
        assert base64.b64decode(query["query"]).decode() == path.partition("?")[2]


def test_create_and_update_name_the_resource_and_the_patient(client, store):
    body = make_medication_request()
    created, left = after(
        store, lambda: client.post("/store/fhir/MedicationRequest", body, content_type=FHIR_JSON)
    )
    assert created.status_code == 201
    (event,) = left
    assert (event["subtype"][0]["code"], event["action"]) == ("create", "C")
    logical_id = created.json()["id"]
    assert f"MedicationRequest/{logical_id}" in entities(event)
    assert NHS in entities(event)
    body = created.json() | {"status": "on-hold"}
    updated, left = after(
        store, lambda: client.put(f"/store/fhir/MedicationRequest/{logical_id}", body, content_type=FHIR_JSON)
    )
    assert updated.status_code == 200
    assert [(e["subtype"][0]["code"], e["action"]) for e in left] == [("update", "U")]


def test_a_failed_create_leaves_a_failure_audit_event_and_no_resource(client, store):
    bad = make_medication_request(status="bogus")
    answer, left = after(
        store, lambda: client.post("/store/fhir/MedicationRequest", bad, content_type=FHIR_JSON)
    )
    assert answer.status_code == 400
    (event,) = left
    assert (event["subtype"][0]["code"], event["outcome"]) == ("create", "4")
    assert "'bogus' is not a code" in event["outcomeDesc"]
    assert not Resource.objects.filter(node=store, resource_type="MedicationRequest").exists()


def test_refused_calls_are_audited_too(store, held):
    _, left = after(store, lambda: Client().get(f"/store/fhir/MedicationRequest/{held.logical_id}"))
    assert [(e["outcome"], e["agent"][0]["display"]) for e in left] == [("4", "No credentials")]
    _, token = api_client_issue(node=store, name="narrow", scopes="system/Patient.rs")
    narrow = Client(headers={"Authorization": f"Bearer {token}"})
    answer, left = after(store, lambda: narrow.get(f"/store/fhir/MedicationRequest/{held.logical_id}"))
    assert answer.status_code == 403
    (event,) = left
    assert (event["outcome"], event["agent"][0]["who"]["display"]) == ("4", "narrow")
    assert "lacks the scope" in event["outcomeDesc"]


def test_audit_events_are_searched_with_the_audit_scope_and_never_changed(client, store, held):
    client.get(f"/store/fhir/MedicationRequest/{held.logical_id}")
    Client().get("/store/fhir/Patient")  # a 401
    _, token = api_client_issue(node=store, name="auditor", scopes="system/AuditEvent.rs")
    auditor = Client(headers={"Authorization": f"Bearer {token}"})

    def found(**params) -> int:
        answer = auditor.get("/store/fhir/AuditEvent", params)
        assert answer.status_code == 200, answer.content
        return answer.json()["total"]

    assert found(**{"patient:identifier": f"{NHS_NUMBER_SYSTEM}|{NHS}"}) == 1
    assert found(entity=f"MedicationRequest/{held.logical_id}") == 1
    assert found(outcome="4") == 1
    assert found(subtype="read") == 1
    assert found(type="rest") >= 2
    assert found(date=f"ge{held.last_updated.date().isoformat()}") >= 2
    client_id = ApiClient.objects.get(node=store, name="tests").client_id
    assert found(**{"agent:identifier": f"https://dmed.example/fhir/Id/api-client|{client_id}"}) == 1
    assert client.get("/store/fhir/AuditEvent").status_code == 200  # the tests client holds every scope
    _, other = api_client_issue(node=store, name="no audit scope", scopes="system/Patient.rs")
    assert (
        Client(headers={"Authorization": f"Bearer {other}"}).get("/store/fhir/AuditEvent").status_code == 403
    )

    first = events(store)[0]
    url = f"/store/fhir/AuditEvent/{first['id']}"
    changed = first | {"outcome": "0"}
    assert client.put(url, json.dumps(changed), content_type=FHIR_JSON).status_code == 405
    assert client.delete(url).status_code == 405
    assert events(store)[0] == first
    patient = resource_create(
        node=store, resource_type="Patient", content={"resourceType": "Patient"}
    ).resource
    assert client.delete(f"/store/fhir/Patient/{patient.logical_id}").status_code == 204  # the control


def test_a_screen_view_is_audited_once_and_its_polls_not_at_all(gp):
    user = get_user_model().objects.create_user("prescriber", password="pw-123456-right")
    Membership.objects.create(user=user, node=gp, role=Membership.Role.PRESCRIBER)
    patient = make_patient(NHS)
    resource_create(node=gp, resource_type="Patient", content=patient)
    browser = Client()
    browser.force_login(user)
    page, left = after(gp, lambda: browser.get(f"/gp/patients/{NHS}"))
    assert page.status_code == 200
    (event,) = left
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"]) == ("110110", "patient", "R")
    assert event["agent"][0]["who"]["identifier"]["value"] == "prescriber"
    assert NHS in entities(event)
    _, left = after(gp, lambda: browser.get(f"/gp/patients/{NHS}", HTTP_HX_REQUEST="true"))
    assert left == []
    _, left = after(gp, lambda: browser.get(f"/gp/patients/{NHS}"))  # the positive control
    assert len(left) == 1


def test_reads_are_audited_through_the_buffer_within_a_second_under_gunicorn(live_server, store, held):
    web = Web(free_port(), AUDIT_FLUSH_SECONDS="0.5").start()
    try:
        before = len(events(store))
        answer = requests.get(
            f"{web.url}/store/fhir/MedicationRequest/{held.logical_id}",
            headers={"Authorization": "Bearer store-token"},
            timeout=10,
        )
        assert answer.status_code == 200
        wait_for(
            lambda: len(events(store)) == before + 1,
            timeout=5,
            interval=0.05,
            message="the read's AuditEvent",
        )
        assert events(store)[-1]["subtype"][0]["code"] == "read"
    finally:
        web.stop()


def a_read(node, held) -> audit.Access:
    return audit.Access(
        node_id=node.pk,
        node_ods=node.ods_code,
        node_name=node.name,
        subtype="read",
        action="R",
        status=200,
        agent=audit.client_agent(None),
        what=[f"MedicationRequest/{held.logical_id}"],
    )


def test_a_backlog_of_reads_is_written_in_transactions_of_a_bounded_size(store, held, settings, monkeypatch):
    """Under load a worker's buffer held up to about a thousand when its thread got its turn;
    written in one transaction they held SQLite's one write lock for seconds, and every write
    waited behind them."""
    settings.AUDIT_FLUSH_SECONDS = 60  # the test flushes, not the thread
    monkeypatch.setattr(audit, "FLUSH_BATCH", 4)
    buffer = audit.Buffer()
    for _ in range(10):
        buffer.add(a_read(store, held))
    buffer.flush()
    stored = Resource.objects.filter(node=store, resource_type="AuditEvent")
    assert stored.count() == 10  # every read once
    # Each transaction's events share the time it was written at.
    by_transaction = Counter(stored.values_list("last_updated", flat=True))
    assert sorted(by_transaction.values(), reverse=True) == [4, 4, 2]


@pytest.mark.django_db(transaction=True)
def test_the_buffers_thread_ends_once_events_are_written_at_once(store, held, settings):
    """With AUDIT_FLUSH_SECONDS 0 a read's event is written at once; a thread started before
    would wait 0 s a turn, spinning and holding the interpreter."""
    settings.AUDIT_FLUSH_SECONDS = 0.05
    buffer = audit.Buffer()
    before = set(threading.enumerate())
    buffer.add(a_read(store, held))
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "audit-flush"]
    wait_for(lambda: len(events(store)) == 1, timeout=10, interval=0.05, message="the thread's flush")
    assert thread.is_alive()  # the control: at 0.05 s it flushes, then waits again
    settings.AUDIT_FLUSH_SECONDS = 0
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_call_outside_the_fhir_base_is_an_operation_that_names_no_resource(client, store):
    answer, left = after(store, lambda: client.get("/store/notifications"))
    assert answer.status_code == 405  # notifications are posted
    (event,) = left
    assert (event["subtype"][0]["code"], event["outcome"]) == ("operation", "4")
    assert entities(event) == []  # not "store/notifications"


@pytest.mark.parametrize("accept", ["application/fhir+json", "application/fhir+xml"])
def test_a_read_names_the_patient_whichever_format_it_answers_in(client, store, held, accept):
    answer, left = after(
        store,
        lambda: client.get(f"/store/fhir/MedicationRequest/{held.logical_id}", headers={"Accept": accept}),
    )
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith(accept)
    (event,) = left
    assert NHS in entities(event)
