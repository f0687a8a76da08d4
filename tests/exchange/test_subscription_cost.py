"""A write matched against a subscription's filter costs the same however many stored resources
that filter matches: the match runs inside the write, while the write holds the database's one
writer on SQLite, so a cost that grew with the data would slow every write and, past the busy
timeout, fail some with "database is locked"."""

from __future__ import annotations

import pytest
from django.db import connection

from exchange.models import SubscriptionEvent
from exchange.notifications import TOPIC_BASE
from exchange.subscriptions import FILTER_CRITERIA
from fhirserver.models import ReferenceIndex
from fhirserver.nhs import ODS_SYSTEM
from fhirserver.services import resource_create
from tests.factories import make_medication_request
from tests.sqlite_steps import bare_requests, counting_sqlite_steps

STORED = 5000  # requests for the subscribed pharmacy already there


def subscribe(node) -> None:
    criterion = f"MedicationRequest?intended-dispenser:identifier={ODS_SYSTEM}|FA565"
    resource_create(
        node=node,
        resource_type="Subscription",
        content={
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "requests to dispense",
            "criteria": TOPIC_BASE + "medication-request",
            "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": criterion}]},
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
        },
    )


def store_matching(node, count: int) -> None:
    """Store requests for the pharmacy as their index holds them (the rows the filter reads)."""
    records = bare_requests(node, count)
    ReferenceIndex.objects.bulk_create(
        ReferenceIndex(
            resource=record,
            node=node,
            resource_type="MedicationRequest",
            param="intended-dispenser",
            id_system=ODS_SYSTEM,
            id_value="FA565",
        )
        for record in records
    )


def steps_of_a_matched_create(node) -> int:
    with counting_sqlite_steps() as steps:
        resource_create(node=node, resource_type="MedicationRequest", content=make_medication_request())
    return steps[0]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="counts SQLite's instructions")
def test_a_matched_create_costs_the_same_with_thousands_of_matches_stored(broker):
    subscribe(broker)
    steps_of_a_matched_create(broker)  # the first write of a kind builds what later ones reuse
    few = steps_of_a_matched_create(broker)
    store_matching(broker, STORED)
    many = steps_of_a_matched_create(broker)

    assert SubscriptionEvent.objects.count() == 3  # each create was an event of the subscription
    assert many < 1.5 * few, f"{few} hundred SQLite steps with 2 matches stored, {many} with {STORED}"


def test_a_create_the_filter_does_not_match_is_no_event(broker):
    subscribe(broker)
    store_matching(broker, 10)
    other = make_medication_request(
        dispenseRequest={"performer": {"identifier": {"system": ODS_SYSTEM, "value": "FEW08"}}}
    )
    resource_create(node=broker, resource_type="MedicationRequest", content=other)
    assert SubscriptionEvent.objects.count() == 0
