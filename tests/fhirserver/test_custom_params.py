"""A node's own SearchParameter resources, through fhirpy and plain HTTP against a live server:
checked as written, used at once for new writes (in every web process), listed in the node's
CapabilityStatement, and `$reindex` (a real Celery worker) makes older resources findable."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone
from fhirpy import SyncFHIRClient

from fhirserver.models import CustomSearchParameter, ReindexJob, Resource, TokenIndex
from fhirserver.reindexing import reindex_run, reindex_start
from fhirserver.services import resource_create
from nodes.models import Node
from tests.exchange.partner import free_port
from tests.factories import bearer, make_node, stored
from tests.processes import Web, wait_for

EYE_COLOUR = "http://acme.org/eyecolour"
DEFINITION = {
    "resourceType": "SearchParameter",
    "url": "https://acme.org/fhir/SearchParameter/patient-eyecolour",
    "name": "EyeColour",
    "status": "active",
    "description": "The colour of a patient's eyes.",
    "code": "eyecolour",
    "base": ["Patient"],
    "type": "token",
    "expression": f"Patient.extension('{EYE_COLOUR}').value",
}


@pytest.fixture
def fhir(store_base):
    return SyncFHIRClient(store_base, authorization=bearer("store")["Authorization"])


def defined(fhir):
    """The SearchParameter, written through fhirpy."""
    made = fhir.resource("SearchParameter", **{k: v for k, v in DEFINITION.items() if k != "resourceType"})
    made.save()
    return made


def patient(fhir, colour: str):
    made = fhir.resource(
        "Patient",
        name=[{"family": colour.title()}],
        extension=[{"url": EYE_COLOUR, "valueCode": colour}],
    )
    made.save()
    return made


def found(fhir, **params) -> set[str]:
    return {r.id for r in fhir.resources("Patient").search(**params).fetch_all()}


def outcome_of(base: str, query: str) -> list[dict]:
    """The issues of a search's outcome entry (fhirpy leaves them out)."""
    answer = requests.get(f"{base}/Patient?{query}", headers=bearer("store"), timeout=10)
    assert answer.status_code == 200
    entries = [e for e in answer.json().get("entry", []) if e["search"]["mode"] == "outcome"]
    return [issue for entry in entries for issue in entry["resource"]["issue"]]


def test_a_custom_parameter_finds_what_is_written_after_it(fhir, store_base, live_server):
    defined(fhir)
    blue, green = patient(fhir, "blue"), patient(fhir, "green")

    assert found(fhir, eyecolour="blue") == {blue.id}
    assert found(fhir, eyecolour="green,blue") == {blue.id, green.id}
    assert found(fhir, **{"eyecolour:missing": "true"}) == set()
    assert outcome_of(store_base, "eyecolour=blue") == []  # nothing was stored before it

    metadata = requests.get(f"{store_base}/metadata", timeout=10).json()
    patient_entry = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Patient")
    listed = {p["name"]: p for p in patient_entry["searchParam"]}
    assert listed["eyecolour"]["definition"] == DEFINITION["url"]
    assert listed["eyecolour"]["type"] == "token"
    # Another node has none of it: its CapabilityStatement and its searches.
    make_node("elsewhere", "broker", "Y1E2W", "Elsewhere")
    other = requests.get(f"{live_server.url}/elsewhere/fhir/metadata", timeout=10).json()
    other_patient = next(r for r in other["rest"][0]["resource"] if r["type"] == "Patient")
    assert "eyecolour" not in {p["name"] for p in other_patient["searchParam"]}
    answer = requests.get(
        f"{live_server.url}/elsewhere/fhir/Patient?eyecolour=blue", headers=bearer("elsewhere"), timeout=10
    ).json()
    assert "eyecolour" in answer["entry"][-1]["resource"]["issue"][0]["diagnostics"]


def test_a_changed_parameter_is_used_at_once_by_every_web_process(live_server, store):
    web = Web(free_port(), workers=2).start()
    try:
        base, headers = f"{web.url}/store/fhir", {**bearer("store"), "Content-Type": "application/fhir+json"}
        created = requests.post(f"{base}/SearchParameter", json=DEFINITION, headers=headers, timeout=10)
        assert created.status_code == 201
        for _ in range(8):  # every process has loaded the node's parameters as they are now
            assert requests.get(f"{base}/Patient?eyecolour=blue", headers=headers, timeout=10).ok
        # The parameter now reads another extension.
        changed = {
            **DEFINITION,
            "id": created.json()["id"],
            "expression": "Patient.extension('http://acme.org/iris').value",
        }
        answer = requests.put(
            f"{base}/SearchParameter/{changed['id']}", json=changed, headers=headers, timeout=10
        )
        assert answer.status_code == 200
        for number in range(8):  # the requests spread over both processes
            body = {
                "resourceType": "Patient",
                "extension": [{"url": "http://acme.org/iris", "valueCode": f"c{number}"}],
            }
            new = requests.post(f"{base}/Patient", json=body, headers=headers, timeout=10).json()
            bundle = requests.get(f"{base}/Patient?eyecolour=c{number}", headers=headers, timeout=10).json()
            assert [e["resource"]["id"] for e in bundle.get("entry", [])] == [new["id"]], number
    finally:
        web.stop()


def test_reindex_makes_what_was_written_before_the_parameter_findable(fhir, store_base, worker):
    before = patient(fhir, "brown")
    defined(fhir)
    after = patient(fhir, "brown")

    assert found(fhir, eyecolour="brown") == {after.id}
    issues = outcome_of(store_base, "eyecolour=brown")
    assert [(i["code"], i["expression"]) for i in issues] == [("incomplete", ["eyecolour"])]
    assert "$reindex" in issues[0]["diagnostics"]

    started = requests.post(f"{store_base}/Patient/$reindex", headers=bearer("store"), timeout=10)
    assert started.status_code == 202
    status_url = started.headers["Content-Location"]
    assert status_url.startswith(f"{store_base}/Patient/$reindex?job=")

    def done() -> dict | None:
        answer = requests.get(status_url, headers=bearer("store"), timeout=10)
        assert answer.status_code == 200
        values = {
            p["name"]: next(v for k, v in p.items() if k.startswith("value"))
            for p in answer.json()["parameter"]
        }
        return values if values["status"] == "done" else None

    values = wait_for(done, timeout=30, message="the reindex job to finish")
    assert values["total"] == values["processed"] == 2
    assert values["type"] == "Patient"
    assert found(fhir, eyecolour="brown") == {before.id, after.id}
    assert outcome_of(store_base, "eyecolour=brown") == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"expression": "Patient.extension('x').value)"}, "SearchParameter.expression"),
        ({"expression": "Patient.name.frobnicate()"}, "SearchParameter.expression"),
        ({"expression": "Observation.code"}, "SearchParameter.expression"),
        ({"base": ["Patient", "Nonsense"]}, "SearchParameter.base[1]"),
        ({"type": "composite"}, "SearchParameter.type"),
        ({"type": "special"}, "SearchParameter.type"),
        ({"code": "identifier"}, "SearchParameter.code"),
        ({"code": "_eyes"}, "SearchParameter.code"),
        ({"type": "reference", "target": ["Nonsense"]}, "SearchParameter.target[0]"),
    ],
)
def test_a_search_parameter_that_cannot_work_is_refused_with_its_path(client, store, change, path):
    answer = client.post(
        "/store/fhir/SearchParameter", {**DEFINITION, **change}, content_type="application/fhir+json"
    )
    assert answer.status_code == 422, answer.json()
    assert answer.json()["issue"][0]["expression"] == [path]
    assert not stored().filter(resource_type="SearchParameter").exists()
    assert not CustomSearchParameter.objects.exists()
    # The same definition, as it should be, is taken (the positive control).
    assert (
        client.post(
            "/store/fhir/SearchParameter", DEFINITION, content_type="application/fhir+json"
        ).status_code
        == 201
    )


def test_a_retired_or_deleted_parameter_is_no_longer_used(fhir, store_base):
    definition = defined(fhir)
    blue, green = patient(fhir, "blue"), patient(fhir, "green")
    assert found(fhir, eyecolour="blue") == {blue.id}

    definition["status"] = "retired"
    definition.save()
    assert found(fhir, eyecolour="blue") == {blue.id, green.id}  # an unknown parameter is ignored
    assert outcome_of(store_base, "eyecolour=blue")[0]["code"] == "not-supported"
    assert not TokenIndex.objects.filter(param="eyecolour").exists()

    definition["status"] = "active"
    definition.save()
    assert found(fhir, eyecolour="blue") == set()  # blue and green were written before it
    assert outcome_of(store_base, "eyecolour=blue")[0]["code"] == "incomplete"
    definition.delete()
    assert outcome_of(store_base, "eyecolour=blue")[0]["code"] == "not-supported"
    assert not CustomSearchParameter.objects.exists()


def test_reindex_needs_the_update_scope_and_a_job_of_the_node(client, store):
    from nodes.services import api_client_issue

    api_client_issue(node=store, name="reader", token="reader-token", scopes="system/Patient.rs")
    refused = client.post("/store/fhir/Patient/$reindex", headers={"Authorization": "Bearer reader-token"})
    assert refused.status_code == 403
    assert not ReindexJob.objects.exists()
    taken = client.post("/store/fhir/Patient/$reindex")
    assert taken.status_code == 202
    status = urlsplit(taken.headers["Content-Location"])
    assert client.get(f"{status.path}?{status.query}").status_code == 200
    assert client.get("/store/fhir/Patient/$reindex?job=999999").status_code == 404
    missing = client.get("/store/fhir/Patient/$reindex")
    assert (missing.status_code, missing.json()["issue"][0]["expression"]) == (400, ["job"])
    assert (
        client.get("/store/fhir/Observation/$reindex?job=" + str(ReindexJob.objects.get().pk)).status_code
        == 404
    )


def test_a_job_left_by_a_dead_worker_goes_on_from_its_last_chunk(store, settings, monkeypatch):
    settings.REINDEX_LEASE_SECONDS = 60
    monkeypatch.setattr("fhirserver.reindexing.CHUNK", 2)
    records = [
        resource_create(node=store, resource_type="Patient", content={"resourceType": "Patient"}).resource
        for _ in range(5)
    ]
    job = reindex_start(node=store, resource_type="Patient", queue=False)
    # Written after it started, so indexed as written: not the job's.
    resource_create(node=store, resource_type="Patient", content={"resourceType": "Patient"})
    # A worker took it, did the first chunk, and has said nothing since.
    ReindexJob.objects.filter(pk=job.pk).update(
        status=ReindexJob.Status.RUNNING,
        processed=2,
        last_pk=records[1].pk,
        started=timezone.now(),
        heartbeat=timezone.now(),
    )
    assert reindex_run(job_id=job.pk) is None  # its lease holds: nobody else takes it
    ReindexJob.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(seconds=61))

    resumed = reindex_run(job_id=job.pk)

    assert (resumed.status, resumed.processed, resumed.total) == ("done", 5, 5)
    assert reindex_run(job_id=job.pk) is None  # done: nothing runs it again
    assert Node.objects.get(pk=store.pk).search_revision == ""  # no parameter of its own changed
    assert Resource.objects.filter(node=store, resource_type="Patient").count() == 6
