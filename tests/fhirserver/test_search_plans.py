"""Searches of a common shape run by a plan compiled once per process (fhirserver/searchplans.py):
each still finds its own matches, and a shape whose values the search transforms is never planned."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.db import connection

from fhirserver import search
from fhirserver.models import Resource
from fhirserver.searchplans import Plans
from tests.factories import ITEM_SYSTEM, make_medication_request

FHIR_JSON = "application/fhir+json"


@pytest.fixture(autouse=True)
def no_kept_plans():
    search.PLANS.clear()


def create(client, body: dict) -> dict:
    response = client.post("/store/fhir/MedicationRequest", json.dumps(body), content_type=FHIR_JSON)
    assert response.status_code == 201, response.content
    return response.json()


def found(client, query: str) -> dict:
    response = client.get(f"/store/fhir/MedicationRequest?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def ids(bundle: dict) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def test_searches_of_one_shape_are_compiled_once_and_each_finds_its_own(client, store):
    requests = [
        create(client, make_medication_request(subject={"reference": f"Patient/p{n}"})) for n in range(3)
    ]
    with mock.patch.object(search, "matching", wraps=search.matching) as built:
        for request in requests:
            item = request["identifier"][0]["value"]
            bundle = found(client, f"identifier={ITEM_SYSTEM}|{item}")
            assert ids(bundle) == [request["id"]]
            assert bundle["total"] == 1
        # The first search built its query twice (two sets of stand-ins); the others none.
        assert built.call_count == 2
        # Another shape (the code alone, a reference, _id) is planned once each, and right.
        for request in requests:
            assert ids(found(client, f"identifier={request['identifier'][0]['value']}")) == [request["id"]]
            assert ids(found(client, f"patient={request['subject']['reference']}")) == [request["id"]]
            assert ids(found(client, f"_id={request['id']}")) == [request["id"]]
        assert built.call_count == 2 + 3 * 2
    # A dispense found by its prescription's item identifier (a reference's :identifier).
    item = requests[0]["identifier"][0]
    dispense = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": requests[0]["medicationCodeableConcept"],
        "subject": requests[0]["subject"],
        "authorizingPrescription": [{"identifier": item}],
    }
    stored = client.post("/store/fhir/MedicationDispense", json.dumps(dispense), content_type=FHIR_JSON)
    assert stored.status_code == 201, stored.content
    with mock.patch.object(search, "matching", wraps=search.matching) as built:
        for value in (item["value"], "another-item"):
            response = client.get(
                f"/store/fhir/MedicationDispense?prescription:identifier={item['system']}|{value}"
            )
            assert ids(response.json()) == ([stored.json()["id"]] if value == item["value"] else [])
    assert built.call_count == 2
    assert ids(found(client, f"identifier={ITEM_SYSTEM}|nothing-stored")) == []
    assert ids(found(client, "patient=Patient/p1,Patient/p2")) == [r["id"] for r in requests[1:]]


def test_a_planned_search_with_more_matches_than_a_page_pages_as_any_search(client, store):
    many = {"reference": "Patient/many"}
    mine = [create(client, make_medication_request(subject=many))["id"] for _ in range(3)]
    create(client, make_medication_request(subject={"reference": "Patient/other"}))
    first = found(client, "patient=Patient/many&_count=2")
    assert ids(first) == mine[:2]
    assert first["total"] == 3
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert ids(client.get(following).json()) == mine[2:]
    # The same shape with every match on the page comes from the plan, and is counted alike.
    assert ids(found(client, "patient=Patient/other&_count=2")) != []
    assert found(client, "patient=Patient/many&_count=5")["total"] == 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite plans a search of one parameter")
def test_a_search_of_two_parameters_is_planned_on_postgresql(client, store):
    active = create(client, make_medication_request(subject={"reference": "Patient/p1"}))
    create(client, make_medication_request(subject={"reference": "Patient/p1"}, status="completed"))
    with mock.patch.object(search, "matching", wraps=search.matching) as built:
        assert ids(found(client, "patient=Patient/p1&status=active")) == [active["id"]]
        assert ids(found(client, "patient=Patient/p1&status=completed")) != [active["id"]]
    assert built.call_count == 2


def test_a_shape_whose_values_the_query_transforms_is_not_planned(store):
    plans = Plans(Resource)
    rows = Resource.objects.filter(node=store)
    kept = plans.rows(("k",), ["AbC-1"], lambda values: rows.filter(logical_id=values[0]))
    lowered = plans.rows(("l",), ["AbC-1"], lambda values: rows.filter(logical_id=values[0].lower()))
    cut = plans.rows(("c",), ["AbC-1"], lambda values: rows.filter(logical_id=values[0][:3]))
    assert kept == []  # planned: nothing stored has that id
    assert lowered is None
    assert cut is None
