"""A search that names a patient and a status finds that patient's requests at the same cost
whether a few or thousands of other active requests are stored (on SQLite, where each
`IN (subquery)` is run in full first: status=active would list every active request)."""

from __future__ import annotations

import pytest
from django.db import connection

from fhirserver.models import TokenIndex
from fhirserver.search import matching
from fhirserver.services import resource_create
from tests.factories import make_medication_request
from tests.sqlite_steps import bare_requests, counting_sqlite_steps

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="counts SQLite's instructions")

OTHERS = 5000  # active requests of other patients


def store_active_of_others(node, count: int) -> None:
    """Active requests as the status index holds them."""
    records = bare_requests(node, count)
    TokenIndex.objects.bulk_create(
        TokenIndex(
            resource=record,
            node=node,
            resource_type="MedicationRequest",
            param="status",
            system="http://hl7.org/fhir/CodeSystem/medicationrequest-status",
            code="active",
        )
        for record in records
    )


def search(node, params) -> tuple[list[str], int]:
    with counting_sqlite_steps() as steps:
        found = list(
            matching(node=node, resource_type="MedicationRequest", params=params, strict=True)
            .order_by("pk")
            .values_list("logical_id", flat=True)[:21]
        )
    return found, steps[0]


@pytest.mark.parametrize("order", ["patient-first", "status-first"])
def test_a_search_by_patient_and_status_costs_the_same_with_thousands_of_active_requests(store, order):
    mine = [
        resource_create(
            node=store,
            resource_type="MedicationRequest",
            content=make_medication_request(subject={"reference": "Patient/p1"}, status=status),
        ).resource.logical_id
        for status in ("active", "active", "completed")
    ]
    params = [("patient", "Patient/p1"), ("status", "active")]
    if order == "status-first":
        params.reverse()
    store_active_of_others(store, 300)  # enough for status=active to be the broad condition
    found, few = search(store, params)
    assert found == mine[:2]

    store_active_of_others(store, OTHERS)
    found, many = search(store, params)
    assert found == mine[:2]
    assert many < 1.5 * few, f"{few} hundred SQLite steps with 300 others stored, {many} with {OTHERS}"


def test_a_search_by_status_alone_still_finds_every_active_request(store):
    store_active_of_others(store, 250)
    found = matching(
        node=store, resource_type="MedicationRequest", params=[("status", "active")], strict=True
    )
    assert found.count() == 250
    both = matching(
        node=store,
        resource_type="MedicationRequest",
        params=[("status", "active"), ("status", "active,completed")],
        strict=True,
    )
    assert both.count() == 250  # two broad conditions: nothing to drive them, as before
