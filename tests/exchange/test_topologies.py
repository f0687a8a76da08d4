"""Prescriptions across the guide's topologies, end to end: live HTTP between nodes and a real
Celery worker (with beat) delivering the outbox."""

from __future__ import annotations

import json
import time

import pytest
import requests

from dispensing import services as dispensing
from exchange.models import Message, Partner
from fhirserver.errors import FHIRError
from fhirserver.medication import ITEM_SYSTEM, item_id
from fhirserver.models import Resource
from fhirserver.search import matching
from nodes.demo import demo_api_token, demo_seed
from nodes.models import Node
from prescribing import services as prescribing
from tests.exchange.partner import FlakyPartner
from tests.processes import wait_for

PARACETAMOL = prescribing.Item(
    "39720311000001101", "Paracetamol 500mg soluble tablets", 60, "tablet", "Two four times a day"
)


@pytest.fixture
def nodes(live_server, monkeypatch, transactional_db) -> dict[str, Node]:
    """The demo ecosystem, its directory pointing at the live server."""
    monkeypatch.setenv("DMED_DEMO_URL", live_server.url)
    demo_seed()
    return {node.slug: node for node in Node.objects.all()}


def status(record: Resource) -> str:
    record.refresh_from_db()
    return json.loads(record.text)["status"]


def held_at(node: Node, request: Resource) -> Resource | None:
    """Return the pharmacy's (or broker's) copy of a prescriber's request, once it has arrived."""
    item = item_id(json.loads(request.text))
    params = [("identifier", f"{ITEM_SYSTEM}|{item}")]
    return matching(node=node, resource_type="MedicationRequest", params=params, strict=True).first()


def dispenses_at(node: Node) -> list[dict]:
    return [
        json.loads(r.text) for r in Resource.objects.filter(node=node, resource_type="MedicationDispense")
    ]


def issue(nodes, pharmacy: str, items=(PARACETAMOL,)) -> list[Resource]:
    return prescribing.prescription_issue(
        node=nodes["gp"], nhs_number="9449304130", items=list(items), pharmacy_ods=nodes[pharmacy].ods_code
    )


def test_peer_to_peer_issue_dispense_and_the_prescriber_completes(nodes, worker):
    pharmacy = nodes["pharmacy-peer-to-peer"]
    first, second = issue(nodes, "pharmacy-peer-to-peer", [PARACETAMOL, PARACETAMOL])
    copy = wait_for(lambda: held_at(pharmacy, first), message="the request reaching the pharmacy")
    wait_for(lambda: held_at(pharmacy, second), message="the second item reaching the pharmacy")
    # One prescription's messages travel in order: the items arrive as they were issued.
    assert [r.pk for r in dispensing.worklist(node=pharmacy)] == [copy.pk, held_at(pharmacy, second).pk]
    group = json.loads(copy.text)["groupIdentifier"]["value"]
    assert group == json.loads(first.text)["groupIdentifier"]["value"]

    dispensing.dispense_claim(node=pharmacy, request=copy)
    dispensing.dispense_complete(node=pharmacy, request=copy, days_supply=15)
    wait_for(lambda: status(first) == "completed", message="the prescriber's request completing")
    assert status(second) == "active"
    at_gp = dispenses_at(nodes["gp"])
    assert [d["status"] for d in at_gp] == ["completed"]
    assert at_gp[0]["daysSupply"]["value"] == 15
    assert Resource.objects.filter(node=pharmacy, resource_type="MedicationRequest").count() == 2


def test_cancel_before_dispense_cancels_at_both_ends(nodes, worker):
    pharmacy = nodes["pharmacy-peer-to-peer"]
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    prescribing.prescription_cancel(node=nodes["gp"], request=request, reason_code="0005")
    wait_for(lambda: status(request) == "cancelled", message="the cancellation")
    assert status(copy) == "cancelled"
    assert json.loads(copy.text)["statusReason"]["coding"][0]["code"] == "0005"
    with pytest.raises(FHIRError) as refused:
        dispensing.dispense_complete(node=pharmacy, request=copy)
    assert refused.value.status == 409
    assert list(dispensing.worklist(node=pharmacy)) == []


def test_cancel_after_dispense_is_refused_and_the_prescriber_is_told_why(nodes, worker, live_server):
    pharmacy = nodes["pharmacy-peer-to-peer"]
    # The pharmacy's dispense notification cannot reach the prescriber for now.
    gp_front = FlakyPartner(live_server.url)
    to_gp = Partner.objects.get(node=pharmacy, ods_code=nodes["gp"].ods_code)
    to_gp.fhir_base = f"{gp_front.url}/gp/fhir"
    to_gp.save()
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    dispensing.dispense_complete(node=pharmacy, request=copy)

    cancel = prescribing.prescription_cancel(node=nodes["gp"], request=request)
    refused = wait_for(
        lambda: Message.objects.filter(
            node=nodes["gp"], kind="request.cancel", status=Message.Status.DEAD
        ).first(),
        message="the cancellation being refused",
    )
    assert "R-0004" in refused.last_error
    assert refused.response_status == 422
    assert cancel.status != Message.Status.DEAD  # the fetch half succeeded; the PUT was refused
    assert status(request) == "active"
    assert status(copy) == "active"

    gp_front.start()
    try:
        wait_for(lambda: status(request) == "completed", message="the dispense reaching the prescriber")
    finally:
        gp_front.stop()


def test_decline_then_renominate_to_a_dispenser_hosted_pharmacy_that_the_prescriber_polls(nodes, worker):
    first_choice, second_choice = nodes["pharmacy-peer-to-peer"], nodes["pharmacy-dispenser-hosted"]
    (request,) = issue(nodes, "pharmacy-peer-to-peer")
    copy = wait_for(lambda: held_at(first_choice, request), message="the request reaching the first pharmacy")
    dispensing.dispense_decline(node=first_choice, request=copy, reason_code="0002")
    wait_for(lambda: [d["status"] for d in dispenses_at(nodes["gp"])] == ["declined"], message="the return")
    assert status(request) == "active"

    prescribing.prescription_renominate(
        node=nodes["gp"], request=request, pharmacy_ods=second_choice.ods_code
    )
    moved = wait_for(
        lambda: held_at(second_choice, request), message="the request reaching the second pharmacy"
    )
    dispensing.dispense_claim(node=second_choice, request=moved)
    wait_for(
        lambda: "in-progress" in [d["status"] for d in dispenses_at(nodes["gp"])],
        message="the prescriber seeing the claim by polling",
    )
    assert status(request) == "active"
    dispensing.dispense_complete(node=second_choice, request=moved)
    wait_for(lambda: status(request) == "completed", timeout=40, message="completion learnt by polling")
    polls = Message.objects.filter(node=nodes["gp"], kind="dispense.poll")
    assert polls.filter(status=Message.Status.DELIVERED).count() >= 2
    # Polling stops at a terminal status.
    count = polls.count()
    time.sleep(3)  # several poll ticks and more than the route's interval
    assert Message.objects.filter(node=nodes["gp"], kind="dispense.poll").count() == count


def test_the_broker_refuses_a_second_pharmacys_claim(nodes, live_server):
    base = f"{live_server.url}/broker/fhir"
    headers = {"Authorization": f"Bearer {demo_api_token('broker')}", "Content-Type": "application/fhir+json"}
    (request,) = prescribing.prescription_issue(
        node=nodes["gp"],
        nhs_number="9449304130",
        items=[PARACETAMOL],
        pharmacy_ods=nodes["pharmacy-peer-to-peer"].ods_code,
    )
    content = json.loads(request.text)

    def claim(ods: str, dispense_id: str) -> requests.Response:
        from django.utils import timezone

        from fhirserver.medication import dispense_build

        body = dispense_build(
            request=content,
            dispense_id=dispense_id,
            status="in-progress",
            pharmacy_ods=ods,
            when=timezone.now(),
        )
        return requests.post(f"{base}/MedicationDispense", json=body, headers=headers, timeout=10)

    assert claim("FH542", "1f7c7a0e-0000-4000-8000-000000000001").status_code == 201
    second = claim("FEW08", "1f7c7a0e-0000-4000-8000-000000000002")
    assert second.status_code == 409
    assert "FH542" in second.json()["issue"][0]["diagnostics"]
    assert claim("FH542", "1f7c7a0e-0000-4000-8000-000000000003").status_code == 201  # the holder may add
