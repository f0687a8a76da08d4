"""Expiry, end to end with a real worker: the holder of a prescription's record expires it by its
clock (6 months from issue, 28 days for a schedule 2 controlled drug, or the validity period's
end), everyone else learns it, and nothing more can be dispensed. Time moves forward by calling
the beat's own expiry tasks with a later moment, never by sleeping."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from dispensing import services as dispensing
from fhirserver.errors import FHIRError
from fhirserver.medication import controlled_drug_schedule, is_expired
from medicines.services import catalogue_demo_seed
from nodes.demo import TOPOLOGIES
from prescribing import services as prescribing
from tests.exchange.flows import PARACETAMOL, expiry_tasks_at, held_at, issue, status, subscribed
from tests.processes import wait_for

MORPHINE = prescribing.Item(
    "36126811000001109", "Morphine 15mg modified-release tablets", 56, "tablet", "One twice a day"
)


def expired(record) -> bool:
    record.refresh_from_db()
    return is_expired(json.loads(record.text))


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_an_undispensed_prescription_expires_everywhere_and_cannot_be_claimed(nodes, worker, topology):
    catalogue_demo_seed()
    gp, pharmacy, broker = nodes["gp"], nodes[f"pharmacy-{topology}"], nodes["broker"]
    if topology == "shared-record-events":
        wait_for(lambda: subscribed(broker), message="the subscriptions at the broker")
    (morphine,) = issue(nodes, pharmacy.slug, [MORPHINE])
    (paracetamol,) = issue(nodes, pharmacy.slug, [PARACETAMOL])
    assert controlled_drug_schedule(json.loads(morphine.text)) == "2"  # stated from the catalogue
    copies = [
        wait_for(lambda r=r: held_at(pharmacy, r), message="the requests at the pharmacy")
        for r in (morphine, paracetamol)
    ]

    expiry_tasks_at(timezone.now() + timedelta(days=29))  # past 28 days, within 6 months
    wait_for(lambda: expired(morphine), message="the schedule 2 prescription expired at the prescriber")
    wait_for(lambda: expired(copies[0]), message="and at the pharmacy")
    if topology.startswith("shared-record"):
        assert expired(held_at(broker, morphine))
    # The same waits let the paracetamol expire, had it been due: it was not.
    assert status(paracetamol) == status(copies[1]) == "active"
    with pytest.raises(FHIRError, match="expired"):
        dispensing.dispense_start(node=pharmacy, request=copies[0])
    with pytest.raises(FHIRError, match="expired"):
        prescribing.prescription_renominate(node=gp, request=morphine, pharmacy_ods=pharmacy.ods_code)

    expiry_tasks_at(timezone.now() + timedelta(days=190))  # past 6 months
    wait_for(lambda: expired(paracetamol), message="the paracetamol expired at the prescriber")
    wait_for(lambda: expired(copies[1]), message="and at the pharmacy")


def test_a_prescription_dispensed_in_time_does_not_expire(nodes, worker):
    pharmacy = nodes["pharmacy-peer-to-peer"]
    dispensed, undispensed = (issue(nodes, pharmacy.slug)[0] for _ in range(2))
    copy = wait_for(lambda: held_at(pharmacy, dispensed), message="the request at the pharmacy")
    wait_for(lambda: held_at(pharmacy, undispensed), message="the other request at the pharmacy")
    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: status(dispensed) == "completed", message="the dispensed one completed")
    expiry_tasks_at(timezone.now() + timedelta(days=190))
    wait_for(lambda: expired(undispensed), message="the undispensed one expired")
    assert status(dispensed) == "completed"
    assert status(copy) == "active"  # the pharmacy's copy of what it dispensed in full stays as it was
