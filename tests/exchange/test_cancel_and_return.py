"""Cancellations that come too late, and prescriptions a pharmacy declines and the prescriber
sends elsewhere, over each topology: live HTTP between nodes and a real Celery worker."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from django.utils import timezone

from dispensing import services as dispensing
from exchange.models import Message, Partner
from fhirserver import medication
from fhirserver.errors import FHIRError
from fhirserver.medication import dispense_build, returned
from nodes.demo import demo_api_token
from prescribing import services as prescribing
from tests.exchange.flows import cut_off, dispenses_at, held_at, history, issue, status
from tests.pages import text_of
from tests.processes import wait_for


def dead(node, kind: str) -> list[Message]:
    return list(Message.objects.filter(node=node, kind=kind, status=Message.Status.DEAD))


def is_returned(record) -> bool:
    record.refresh_from_db()
    return returned(json.loads(record.text))


# Cancellation after dispense: the holder of the record refuses, the prescriber is told why.


def prescription_id(request) -> str:
    return medication.group_id(json.loads(request.text))


def test_peer_to_peer_pharmacy_refuses_to_cancel_what_it_dispensed(nodes, worker, live_server, screens):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    to_gp = cut_off(pharmacy, gp, live_server.url)  # the dispense cannot reach the prescriber yet
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    dispensing.dispense_complete(node=pharmacy, request=copy)

    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: history(request) == ["R-0004"], message="the refusal recorded on the request")
    (refused,) = dead(gp, "request.cancel")
    assert refused.response_status == 422
    assert status(request) == "active"
    assert status(copy) == "active"
    page = text_of(screens.as_user("prescriber").get(f"/gp/prescriptions/{prescription_id(request)}"))
    assert "Cancellation refused: R-0004 Prescription/item was not cancelled - Dispensed to Patient" in page
    assert "Cancellation sent to Station Road Pharmacy: not delivered" in page
    assert "already been dispensed" in page

    to_gp.start()
    try:
        wait_for(lambda: status(request) == "completed", message="the dispense reaching the prescriber")
    finally:
        to_gp.stop()


def test_dispenser_hosted_pharmacy_refuses_to_cancel_what_it_is_dispensing_or_dispensed(nodes, worker):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-dispenser-hosted"]
    route = Partner.objects.get(node=gp, ods_code=pharmacy.ods_code)
    route.poll_interval = 3600  # the prescriber does not learn of the dispense yet
    route.save()
    (request,) = issue(nodes, "pharmacy-dispenser-hosted")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    polled = Message.objects.filter(node=gp, kind="dispense.poll", status=Message.Status.DELIVERED)
    wait_for(polled.exists, message="the first poll, before anything is dispensed")
    dispensing.dispense_start(node=pharmacy, request=copy)
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: history(request) == ["R-0003"], message="the refusal: with the dispenser")
    dispensing.dispense_complete(node=pharmacy, request=copy)
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: history(request) == ["R-0003", "R-0004"], message="the refusal: dispensed")
    assert status(request) == "active"
    assert status(copy) == "active"

    route.poll_interval = 1
    route.save()
    wait_for(lambda: status(request) == "completed", message="the prescriber polling the dispense")


@pytest.mark.parametrize(
    "topology", ["peer-to-peer", "dispenser-hosted", "prescriber-hosted", "shared-record"]
)
def test_cancel_before_dispense_cancels_everywhere(nodes, worker, topology):
    gp, pharmacy = nodes["gp"], nodes[f"pharmacy-{topology}"]
    (request,) = issue(nodes, f"pharmacy-{topology}")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    prescribing.prescription_cancel(node=gp, request=request, reason_code="0005")
    wait_for(lambda: status(request) == "cancelled", message="the cancellation at the prescriber")
    wait_for(lambda: status(copy) == "cancelled", message="the cancellation at the pharmacy")
    assert json.loads(copy.text)["statusReason"]["coding"][0]["code"] == "0005"
    assert history(request) == ["R-0001"]
    with pytest.raises(FHIRError) as refused:
        dispensing.dispense_complete(node=pharmacy, request=copy)
    assert refused.value.status == 409
    assert list(dispensing.worklist(node=pharmacy)) == []
    if topology == "shared-record":
        assert status(held_at(nodes["broker"], request)) == "cancelled"


def test_prescriber_hosted_dispense_overtaken_by_a_cancellation_completes_the_request(
    nodes, worker, live_server
):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-prescriber-hosted"]
    (request,) = issue(nodes, "pharmacy-prescriber-hosted")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy fetching the request")
    to_gp = cut_off(pharmacy, gp, live_server.url)
    dispensing.dispense_complete(node=pharmacy, request=copy)

    # The prescriber holds the record and cancels at once, not knowing of the dispense.
    prescribing.prescription_cancel(node=gp, request=request)
    assert (status(request), history(request)) == ("cancelled", ["R-0001"])

    to_gp.start()
    try:
        wait_for(lambda: status(request) == "completed", message="the dispense reaching the prescriber")
    finally:
        to_gp.stop()
    assert history(request) == ["R-0001", "R-0004"]  # the cancellation did not take


def test_shared_record_refuses_to_cancel_a_claimed_or_dispensed_item(nodes, worker, live_server):
    gp, pharmacy, broker = nodes["gp"], nodes["pharmacy-shared-record"], nodes["broker"]
    to_gp = cut_off(pharmacy, gp, live_server.url)  # the pharmacy's notifications wait
    (request,) = issue(nodes, "pharmacy-shared-record")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy fetching the request")
    shared = held_at(broker, request)

    dispensing.dispense_start(node=pharmacy, request=copy)
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: history(request) == ["R-0003"], message="the refusal: with the dispenser")

    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: [d["status"] for d in dispenses_at(broker)] == ["completed"], message="the record")
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: history(request) == ["R-0003", "R-0004"], message="the refusal: dispensed")
    assert [m.response_status for m in dead(gp, "request.cancel")] == [422, 422]
    assert status(shared) == "active"

    to_gp.start()
    try:
        wait_for(lambda: status(request) == "completed", message="the prescriber learning of it")
    finally:
        to_gp.stop()
    wait_for(lambda: status(shared) == "completed", message="the shared copy completed")


def test_the_shared_record_refuses_a_claim_on_a_cancelled_item(nodes, worker, live_server):
    gp, broker = nodes["gp"], nodes["broker"]
    (request,) = issue(nodes, "pharmacy-shared-record")
    shared = wait_for(lambda: held_at(broker, request), message="the shared copy")
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: status(request) == "cancelled", message="the cancellation accepted")
    assert status(shared) == "cancelled"
    assert history(request) == ["R-0001"]

    claim = dispense_build(
        request=json.loads(shared.text),
        dispense_id=str(uuid.uuid4()),
        status="in-progress",
        pharmacy_ods="FH542",
        when=timezone.now(),
    )
    answer = requests.post(
        f"{live_server.url}/broker/fhir/MedicationDispense",
        json=claim,
        headers={"Authorization": f"Bearer {demo_api_token('broker')}"},
        timeout=10,
    )
    assert answer.status_code == 422
    assert answer.json()["issue"][0]["expression"] == ["MedicationDispense.authorizingPrescription"]
    assert dispenses_at(broker) == []


# Decline, then re-nominate: the prescriber sees the request returned and sends it elsewhere.


def test_dispenser_hosted_decline_is_polled_then_renominated_peer_to_peer(nodes, worker, screens):
    gp, declining, taking = nodes["gp"], nodes["pharmacy-dispenser-hosted"], nodes["pharmacy-peer-to-peer"]
    (request,) = issue(nodes, "pharmacy-dispenser-hosted")
    copy = wait_for(lambda: held_at(declining, request), message="the request reaching the pharmacy")
    dispensing.dispense_decline(node=declining, request=copy, reason_code="0002")
    assert list(dispensing.worklist(node=declining)) == []
    wait_for(lambda: is_returned(request), message="the prescriber learning of the decline by polling")
    assert status(request) == "active"
    assert "Returned by the pharmacy" in text_of(screens.as_user("prescriber").get("/gp/prescriptions"))
    page = text_of(screens.as_user("prescriber").get(f"/gp/prescriptions/{prescription_id(request)}"))
    assert "Declined by Market Place Chemist (VNE51)" in page
    polls = Message.objects.filter(node=gp, kind="dispense.poll")
    count = polls.count()
    time.sleep(3)  # several poll ticks and more than the route's interval
    assert polls.count() == count  # a returned request is not polled

    prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods=taking.ods_code)
    assert not is_returned(request)
    moved = wait_for(lambda: held_at(taking, request), message="the request reaching the new pharmacy")
    dispensing.dispense_complete(node=taking, request=moved)
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")


def test_prescriber_hosted_decline_then_renominated_to_the_shared_record(nodes, worker):
    gp, declining, taking = nodes["gp"], nodes["pharmacy-prescriber-hosted"], nodes["pharmacy-shared-record"]
    (request,) = issue(nodes, "pharmacy-prescriber-hosted")
    copy = wait_for(lambda: held_at(declining, request), message="the pharmacy fetching the request")
    dispensing.dispense_decline(node=declining, request=copy, reason_code="0001")
    wait_for(lambda: is_returned(request), message="the decline reaching the prescriber")

    prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods=taking.ods_code)
    moved = wait_for(lambda: held_at(taking, request), message="the shared-record pharmacy's copy")
    dispensing.dispense_start(node=taking, request=moved)
    dispensing.dispense_complete(node=taking, request=moved)
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")
    wait_for(lambda: status(held_at(nodes["broker"], request)) == "completed", message="the shared copy")


def test_shared_record_decline_then_renominated_and_the_record_follows(nodes, worker):
    gp, broker = nodes["gp"], nodes["broker"]
    declining, taking = nodes["pharmacy-shared-record"], nodes["pharmacy-prescriber-hosted"]
    (request,) = issue(nodes, "pharmacy-shared-record")
    copy = wait_for(lambda: held_at(declining, request), message="the pharmacy fetching the request")
    dispensing.dispense_decline(node=declining, request=copy, reason_code="0002")
    wait_for(lambda: is_returned(request), message="the decline reaching the prescriber")
    assert [d["status"] for d in dispenses_at(broker)] == ["declined"]

    prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods=taking.ods_code)
    shared = held_at(broker, request)
    wait_for(lambda: status(shared) == "stopped", message="the request withdrawn from the shared record")
    assert json.loads(shared.text)["dispenseRequest"]["performer"]["identifier"]["value"] == taking.ods_code
    moved = wait_for(lambda: held_at(taking, request), message="the new pharmacy fetching the request")
    dispensing.dispense_complete(node=taking, request=moved)
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")
    assert not dead(gp, "request.renominate")

    # The token no longer dispenses anywhere: the shared record refuses a claim on it.
    with pytest.raises(FHIRError) as refused:
        dispensing.dispense_start(node=declining, request=copy)
    assert refused.value.status in (409, 422)


def test_only_a_returned_request_is_renominated_and_not_to_a_pharmacy_that_declined(nodes, worker):
    gp, first = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(first, request), message="the request reaching the pharmacy")
    with pytest.raises(FHIRError) as refused:  # still with its pharmacy, which may be dispensing it
        prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods="VNE51")
    assert refused.value.status == 409
    dispensing.dispense_decline(node=first, request=copy)
    wait_for(lambda: is_returned(request), message="the return")
    with pytest.raises(FHIRError) as again:
        prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods=first.ods_code)
    assert "declined" in str(again.value)
    assert is_returned(request)


def test_peer_to_peer_decline_then_renominated_to_a_pharmacy_the_prescriber_polls(nodes, worker, screens):
    gp, first_choice, second_choice = (
        nodes["gp"],
        nodes["pharmacy-peer-to-peer"],
        nodes["pharmacy-dispenser-hosted"],
    )
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(first_choice, request), message="the request reaching the first pharmacy")
    dispensing.dispense_decline(node=first_choice, request=copy, reason_code="0002")
    wait_for(lambda: is_returned(request), message="the return")
    assert status(request) == "active"

    prescribing.prescription_renominate(node=gp, request=request, pharmacy_ods=second_choice.ods_code)
    moved = wait_for(
        lambda: held_at(second_choice, request), message="the request reaching the second pharmacy"
    )
    dispensing.dispense_start(node=second_choice, request=moved)
    wait_for(
        lambda: "in-progress" in [d["status"] for d in dispenses_at(gp)],
        message="the prescriber seeing the claim by polling",
    )
    assert status(request) == "active"
    assert "With dispenser" in text_of(screens.as_user("prescriber").get("/gp/prescriptions"))
    dispensing.dispense_complete(node=second_choice, request=moved)
    wait_for(lambda: status(request) == "completed", timeout=40, message="completion learnt by polling")
    polls = Message.objects.filter(node=gp, kind="dispense.poll")
    assert polls.filter(status=Message.Status.DELIVERED).count() >= 2
    count = polls.count()
    time.sleep(3)  # several poll ticks and more than the route's interval
    assert polls.count() == count  # polling stops at a terminal status
