"""Partial dispensing ("owing"), end to end with a real worker: each supply is a completed
MedicationDispense stating the item's line status (0003 part, 0004 owing, 0001 fully dispensed)
and the prescription's EPS business status; the prescriber's request completes only when the
supplies reach what was prescribed."""

from __future__ import annotations

import json

import pytest

from dispensing import services as dispensing
from fhirserver.medication import BUSINESS_STATUS, line_status
from fhirserver.models import Resource
from prescribing import services as prescribing
from prescribing.selectors import prescription_view
from tests.exchange.flows import held_at, issue, status, subscribed
from tests.processes import wait_for

TABLETS_28 = prescribing.Item(
    "39720311000001101", "Paracetamol 500mg soluble tablets", 28, "tablet", "Two daily"
)
# Where the prescriber learns of each supply: pushed to it, read in the shared record, or polled.
TOPOLOGIES = ["peer-to-peer", "shared-record", "dispenser-hosted"]


def supplies_at(node, request: Resource) -> list[dict]:
    """The supplies of the request's item known at a node, oldest first."""
    item = json.loads(request.text)["identifier"][0]["value"]
    found = [
        json.loads(r.text) for r in Resource.objects.filter(node=node, resource_type="MedicationDispense")
    ]
    found = [d for d in found if d["authorizingPrescription"][0]["identifier"]["value"] == item]
    return sorted((d for d in found if d["status"] == "completed"), key=lambda d: d["whenHandedOver"])


def business_status(dispense: dict) -> str:
    return next(e["valueCoding"]["code"] for e in dispense["extension"] if e["url"] == BUSINESS_STATUS)


def prescribed_to(nodes, topology: str):
    if topology == "shared-record-events":
        wait_for(lambda: subscribed(nodes["broker"]), message="the subscriptions at the broker")
    (request,) = issue(nodes, f"pharmacy-{topology}", [TABLETS_28])
    pharmacy = nodes[f"pharmacy-{topology}"]
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request at the pharmacy")
    return request, pharmacy, copy


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_half_now_and_half_later_completes_the_request_only_at_the_end(nodes, worker, topology):
    request, pharmacy, copy = prescribed_to(nodes, topology)
    gp = nodes["gp"]
    dispensing.dispense_start(node=pharmacy, request=copy)
    dispensing.dispense_complete(node=pharmacy, request=copy, quantity=14)
    (first,) = wait_for(lambda: supplies_at(gp, request), message="the part supply reaching the prescriber")
    assert (first["quantity"]["value"], line_status(first), business_status(first)) == (14, "0003", "0003")
    assert status(request) == "active"
    (item,) = prescription_view(
        node=gp, prescription_id=json.loads(request.text)["groupIdentifier"]["value"]
    ).items
    assert (item.label, item.owing) == ("Part dispensed", "14 tablet")
    assert any("Supplied 14 tablet in part" in event.text for event in item.events)
    assert [r.pk for r in dispensing.worklist(node=pharmacy)] == [copy.pk]  # still to finish there

    dispensing.dispense_complete(node=pharmacy, request=copy)  # the rest: 14 more
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")
    supplies = supplies_at(gp, request)
    assert [(d["quantity"]["value"], line_status(d), business_status(d)) for d in supplies] == [
        (14, "0003", "0003"),
        (14, "0001", "0006"),
    ]
    assert list(dispensing.worklist(node=pharmacy)) == []
    with pytest.raises(Exception, match="dispensed already"):
        dispensing.dispense_complete(node=pharmacy, request=copy, quantity=1)


@pytest.mark.parametrize("topology", ["peer-to-peer", "shared-record"])
def test_owed_with_none_supplied_then_supplied(nodes, worker, topology):
    request, pharmacy, copy = prescribed_to(nodes, topology)
    gp = nodes["gp"]
    dispensing.dispense_owing(node=pharmacy, request=copy, note="Out of stock until Friday")
    (owed,) = wait_for(lambda: supplies_at(gp, request), message="the owing reaching the prescriber")
    assert (owed["quantity"]["value"], line_status(owed), business_status(owed)) == (0, "0004", "0003")
    assert status(request) == "active"
    with pytest.raises(Exception, match="more than prescribed"):
        dispensing.dispense_complete(node=pharmacy, request=copy, quantity=29)
    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")
    assert [d["quantity"]["value"] for d in supplies_at(gp, request)] == [0, 28]


@pytest.mark.parametrize("topology", ["peer-to-peer", "shared-record", "shared-record-events"])
def test_an_amended_last_supply_travels_the_route(nodes, worker, topology):
    request, pharmacy, copy = prescribed_to(nodes, topology)
    gp = nodes["gp"]
    dispensing.dispense_complete(node=pharmacy, request=copy, quantity=14)
    wait_for(lambda: supplies_at(gp, request), message="the part supply at the prescriber")
    dispensing.dispense_amend(node=pharmacy, request=copy, quantity=10, note="Keyed 14, gave 10")
    wait_for(
        lambda: [d["quantity"]["value"] for d in supplies_at(gp, request)] == [10],
        message="the corrected quantity at the prescriber",
    )
    with pytest.raises(Exception, match="still owed"):  # 18 are owed now, not 14
        dispensing.dispense_complete(node=pharmacy, request=copy, quantity=19)
    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: status(request) == "completed", message="completed with the 18 owed")
    assert [d["quantity"]["value"] for d in supplies_at(gp, request)] == [10, 18]

    # A last supply amended down leaves something owed again: the request is active again.
    dispensing.dispense_amend(node=pharmacy, request=copy, quantity=16)
    wait_for(lambda: status(request) == "active", message="the request owed again at the prescriber")
    if topology.startswith("shared-record"):
        broker_copy = held_at(nodes["broker"], request)
        wait_for(lambda: status(broker_copy) == "active", message="the shared record's copy owed again")
