"""Twenty clients POST the same prescription item at once: one copy is stored, nobody gets a 500."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from fhirserver.models import Resource
from tests.factories import bearer, identifier_query, make_medication_request

CLIENTS = 20


@pytest.mark.parametrize("conditional", [True, False], ids=["if-none-exist", "plain-post"])
def test_concurrent_posts_of_one_identifier_store_one_resource(store_base, conditional):
    body = make_medication_request()
    headers = {"Content-Type": "application/fhir+json"} | bearer("store")
    if conditional:
        headers["If-None-Exist"] = identifier_query(body)
    start = threading.Barrier(CLIENTS)

    def post(_: int) -> requests.Response:
        with requests.Session() as session:
            start.wait()
            return session.post(f"{store_base}/MedicationRequest", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(CLIENTS) as pool:
        responses = list(pool.map(post, range(CLIENTS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200 if conditional else 409) == CLIENTS - 1, statuses
    assert Resource.objects.filter(resource_type="MedicationRequest").count() == 1
    if conditional:
        assert len({r.json()["id"] for r in responses}) == 1
    else:
        assert {r.json()["issue"][0]["code"] for r in responses if r.status_code == 409} == {"duplicate"}
