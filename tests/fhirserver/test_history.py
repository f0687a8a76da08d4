"""Type and system history, with _since, _count and paging, for clients that sync."""

from __future__ import annotations

import json

from django.utils import timezone

from tests.factories import bearer, make_medication_request

FHIR_JSON = "application/fhir+json"


def create(client, body: dict, node: str = "store") -> dict:
    response = client.post(
        f"/{node}/fhir/{body['resourceType']}", json.dumps(body), content_type=FHIR_JSON, headers=bearer(node)
    )
    assert response.status_code == 201
    return response.json()


def entries(bundle: dict) -> list[tuple[str, str, str]]:
    return [
        (e["request"]["method"], e["fullUrl"].rsplit("/", 2)[-2], e["response"]["etag"])
        for e in bundle["entry"]
    ]


def test_type_history_lists_every_version_of_the_type_newest_first(client, store):
    first = create(client, make_medication_request())
    create(client, {"resourceType": "Patient"})
    client.put(
        f"/store/fhir/MedicationRequest/{first['id']}",
        json.dumps(first | {"status": "on-hold"}),
        content_type=FHIR_JSON,
    )
    client.delete(f"/store/fhir/MedicationRequest/{first['id']}")
    bundle = client.get("/store/fhir/MedicationRequest/_history").json()
    assert bundle["type"] == "history"
    assert entries(bundle) == [
        ("DELETE", "MedicationRequest", 'W/"3"'),
        ("PUT", "MedicationRequest", 'W/"2"'),
        ("POST", "MedicationRequest", 'W/"1"'),
    ]


def test_system_history_covers_every_type_at_this_node_only(client, store, broker):
    create(client, make_medication_request())
    create(client, {"resourceType": "Patient"})
    create(client, {"resourceType": "Patient"}, node="broker")
    bundle = client.get("/store/fhir/_history").json()
    # Every node starts with the built-in subscription topics (Basic), oldest last.
    assert [t for _, t, _ in entries(bundle)] == ["Patient", "MedicationRequest", "Basic", "Basic"]


def test_since_keeps_only_later_changes(client, store):
    create(client, make_medication_request())
    moment = timezone.now().isoformat()
    later = create(client, make_medication_request())
    bundle = client.get("/store/fhir/_history", {"_since": moment}).json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [later["id"]]
    # A + left unencoded in the URL arrives as a space; it still means the time zone.
    raw = client.get(f"/store/fhir/_history?_since={moment}").json()
    assert [e["resource"]["id"] for e in raw["entry"]] == [later["id"]]
    assert client.get("/store/fhir/_history?_since=yesterday").status_code == 400


def test_history_pages_with_next_links(client, store):
    made = [create(client, make_medication_request())["id"] for _ in range(5)]
    seen, url = [], "/store/fhir/_history?_count=2"
    while url:
        page = client.get(url).json()
        assert len(page["entry"]) <= 2
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    # The node's built-in topics (installed in file-name order) came first.
    assert seen == [*reversed(made), "medication-request", "medication-dispense"]


def test_instance_history_of_an_unknown_resource_is_404(client, store):
    assert client.get("/store/fhir/MedicationRequest/nope/_history").status_code == 404
