"""A Subscription belongs to the API client that made it: only that client changes or deletes
it, and only it reads the headers its notifications carry; every other client with the scope reads
it without them, tagged REDACTED, whichever interaction returns it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from fhirserver.models import Resource
from fhirserver.owners import REDACTED
from fhirserver.services import resource_create
from nodes.services import api_client_issue

FHIR_JSON = "application/fhir+json"
SECRET = "Bearer the-owners-secret"
SCOPES = "system/Subscription.cruds system/*.s"


def subscription(**changes) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "learn of active requests",
        "criteria": "MedicationRequest?status=active",
        "channel": {
            "type": "rest-hook",
            "endpoint": "http://127.0.0.1:9/hook",
            "header": [f"Authorization: {SECRET}"],
        },
        **changes,
    }


@pytest.fixture
def clients(store):
    """Two systems with the same scopes at the store node: the owner, and another."""
    made = {}
    for name in ("owner", "other"):
        client, token = api_client_issue(node=store, name=name, scopes=SCOPES)
        made[name] = (client, Client(headers={"Authorization": f"Bearer {token}"}))
    return made


@pytest.fixture
def made(clients) -> str:
    """The owner's Subscription; its logical id."""
    answer = clients["owner"][1].post(
        "/store/fhir/Subscription", json.dumps(subscription()), content_type=FHIR_JSON
    )
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def batch(kind: str, *entries: dict) -> str:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)})


def resources_in(answer: dict) -> list[dict]:
    """Every Subscription in an answer: the resource itself, or the entries of its Bundles."""
    if answer.get("resourceType") == "Subscription":
        return [answer]
    found = []
    for entry in answer.get("entry", []):
        found += resources_in(entry.get("resource", {}))
    return [r for r in found if r.get("resourceType") == "Subscription"]


READS = {
    "read": lambda c, i: c.get(f"/store/fhir/Subscription/{i}"),
    "vread": lambda c, i: c.get(f"/store/fhir/Subscription/{i}/_history/1"),
    "search": lambda c, i: c.get("/store/fhir/Subscription", {"_id": i}),
    "search with _elements": lambda c, i: c.get("/store/fhir/Subscription", {"_elements": "channel"}),
    "POST _search": lambda c, i: c.post(
        "/store/fhir/Subscription/_search",
        "status=requested,active",
        content_type="application/x-www-form-urlencoded",
    ),
    "history of one": lambda c, i: c.get(f"/store/fhir/Subscription/{i}/_history"),
    "type history": lambda c, i: c.get("/store/fhir/Subscription/_history"),
    "system history": lambda c, i: c.get("/store/fhir/_history"),
    "batch read": lambda c, i: c.post(
        "/store/fhir",
        batch(
            "batch",
            {"request": {"method": "GET", "url": f"Subscription/{i}"}},
            {"request": {"method": "GET", "url": "Subscription?status=requested,active"}},
        ),
        content_type=FHIR_JSON,
    ),
    "conditional create that finds it": lambda c, i: c.post(
        "/store/fhir/Subscription",
        json.dumps(subscription()),
        content_type=FHIR_JSON,
        headers={"If-None-Exist": f"_id={i}"},
    ),
}


@pytest.mark.parametrize("how", READS)
def test_only_the_owner_reads_the_headers(clients, made, how):
    mine = READS[how](clients["owner"][1], made)
    theirs = READS[how](clients["other"][1], made)
    assert mine.status_code == theirs.status_code == 200, (mine.content, theirs.content)

    assert SECRET.encode() in mine.content  # the control: the owner's own headers come back
    owned = resources_in(mine.json())
    assert owned
    assert all(r["channel"]["header"] == [f"Authorization: {SECRET}"] for r in owned)
    assert all(REDACTED not in r.get("meta", {}).get("security", []) for r in owned)

    assert SECRET.encode() not in theirs.content
    shown = resources_in(theirs.json())
    assert len(shown) == len(owned)
    assert all("header" not in r["channel"] and REDACTED in r["meta"]["security"] for r in shown)
    assert all(r["channel"]["endpoint"] == "http://127.0.0.1:9/hook" for r in shown)  # the rest is there


def test_the_creator_is_recorded_as_its_owner(clients, made):
    record = Resource.objects.get(resource_type="Subscription", logical_id=made)
    assert record.owner == clients["owner"][0]


CHANGES = {
    "update": lambda c, i: c.put(
        f"/store/fhir/Subscription/{i}", json.dumps(subscription(id=i, status="off")), content_type=FHIR_JSON
    ),
    "delete": lambda c, i: c.delete(f"/store/fhir/Subscription/{i}"),
    "transaction update": lambda c, i: c.post(
        "/store/fhir",
        batch(
            "transaction",
            {
                "request": {"method": "PUT", "url": f"Subscription/{i}"},
                "resource": subscription(id=i, status="off"),
            },
        ),
        content_type=FHIR_JSON,
    ),
    "transaction delete": lambda c, i: c.post(
        "/store/fhir",
        batch("transaction", {"request": {"method": "DELETE", "url": f"Subscription/{i}"}}),
        content_type=FHIR_JSON,
    ),
}


@pytest.mark.parametrize("how", CHANGES)
def test_only_the_owner_changes_or_deletes_it(clients, made, how):
    refused = CHANGES[how](clients["other"][1], made)
    assert refused.status_code == 403, refused.content
    issue = refused.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert "belongs to the API client that made it" in issue["diagnostics"]
    record = Resource.objects.get(resource_type="Subscription", logical_id=made)
    assert (record.version_id, record.deleted) == (1, False)  # nothing changed

    done = CHANGES[how](clients["owner"][1], made)  # the control: the owner may
    assert done.status_code in (200, 204), done.content
    record.refresh_from_db()
    assert record.version_id == 2


def test_a_batch_refuses_anothers_change_and_does_the_rest(clients, made):
    answer = clients["other"][1].post(
        "/store/fhir",
        batch(
            "batch",
            {"request": {"method": "DELETE", "url": f"Subscription/{made}"}},
            {"request": {"method": "POST", "url": "Subscription"}, "resource": subscription()},
        ),
        content_type=FHIR_JSON,
    )
    assert answer.status_code == 200
    statuses = [entry["response"]["status"] for entry in answer.json()["entry"]]
    assert statuses[0].startswith("403")
    assert statuses[1].startswith("201")
    assert not Resource.objects.get(resource_type="Subscription", logical_id=made).deleted
    theirs = Resource.objects.filter(resource_type="Subscription").exclude(logical_id=made).get()
    assert theirs.owner == clients["other"][0]


def test_made_again_after_its_deletion_it_belongs_to_whoever_made_it_again(clients, made):
    assert clients["owner"][1].delete(f"/store/fhir/Subscription/{made}").status_code == 204
    again = clients["other"][1].put(
        f"/store/fhir/Subscription/{made}", json.dumps(subscription(id=made)), content_type=FHIR_JSON
    )
    assert again.status_code == 201, again.content
    assert Resource.objects.get(resource_type="Subscription", logical_id=made).owner == clients["other"][0]
    assert clients["owner"][1].delete(f"/store/fhir/Subscription/{made}").status_code == 403


def test_one_made_without_an_owner_may_be_changed_but_its_headers_are_not_shown(store, clients, settings):
    """Made while the API needed no token (or before owners were kept): nobody's to guard, but
    nobody proven to be the one its headers are for, except on an API open to all."""
    made = resource_create(node=store, resource_type="Subscription", content=subscription()).resource
    read = clients["other"][1].get(f"/store/fhir/Subscription/{made.logical_id}")
    assert read.status_code == 200
    assert SECRET.encode() not in read.content
    changed = clients["other"][1].put(
        f"/store/fhir/Subscription/{made.logical_id}",
        json.dumps(subscription(id=made.logical_id, status="off")),
        content_type=FHIR_JSON,
    )
    assert changed.status_code == 200, changed.content

    settings.FHIR_AUTH_REQUIRED = False
    assert SECRET.encode() in Client().get(f"/store/fhir/Subscription/{made.logical_id}").content


def test_the_capability_statement_says_who_owns_a_subscription(store, client):
    resources = client.get("/store/fhir/metadata").json()["rest"][0]["resource"]
    subscription_entry = next(r for r in resources if r["type"] == "Subscription")
    assert "channel.header" in subscription_entry["documentation"]
    assert all("documentation" not in r for r in resources if r["type"] == "MedicationRequest")
