"""Prescriptions across the guide's topologies, end to end: live HTTP between nodes and a real
Celery worker (with beat) delivering the outbox."""

from __future__ import annotations

import json

import pytest
import requests

from dispensing import services as dispensing
from exchange.models import Message, Partner, ReceivedEvent, Topology
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from nodes.demo import demo_api_token
from prescribing import services as prescribing
from tests.exchange.flows import PARACETAMOL, dispenses_at, held_at, issue, status, subscribed
from tests.processes import wait_for


def test_peer_to_peer_issue_dispense_and_the_prescriber_completes(nodes, worker):
    pharmacy = nodes["pharmacy-peer-to-peer"]
    first, second = issue(nodes, "pharmacy-peer-to-peer", [PARACETAMOL, PARACETAMOL])
    copy = wait_for(lambda: held_at(pharmacy, first), message="the request reaching the pharmacy")
    wait_for(lambda: held_at(pharmacy, second), message="the second item reaching the pharmacy")
    # One prescription's messages travel in order: the items arrive as they were issued.
    assert [r.pk for r in dispensing.worklist(node=pharmacy)] == [copy.pk, held_at(pharmacy, second).pk]
    group = json.loads(copy.text)["groupIdentifier"]["value"]
    assert group == json.loads(first.text)["groupIdentifier"]["value"]

    dispensing.dispense_start(node=pharmacy, request=copy)
    dispensing.dispense_complete(node=pharmacy, request=copy, days_supply=15)
    wait_for(lambda: status(first) == "completed", message="the prescriber's request completing")
    assert status(second) == "active"
    at_gp = dispenses_at(nodes["gp"])
    assert [d["status"] for d in at_gp] == ["completed"]
    assert at_gp[0]["daysSupply"]["value"] == 15
    assert Resource.objects.filter(node=pharmacy, resource_type="MedicationRequest").count() == 2


def test_prescriber_hosted_pharmacy_fetches_after_a_notification_and_pushes_its_dispense(nodes, worker):
    pharmacy = nodes["pharmacy-prescriber-hosted"]
    (request,) = issue(nodes, "pharmacy-prescriber-hosted")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy fetching the request")
    assert ReceivedEvent.objects.get(node=pharmacy).number == 1
    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: status(request) == "completed", message="the prescriber's request completing")


def test_prescriber_hosted_cancellation_reaches_the_pharmacy(nodes, worker):
    pharmacy = nodes["pharmacy-prescriber-hosted"]
    (request,) = issue(nodes, "pharmacy-prescriber-hosted")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy fetching the request")
    prescribing.prescription_cancel(node=nodes["gp"], request=request)
    assert status(request) == "cancelled"
    wait_for(lambda: status(copy) == "cancelled", message="the pharmacy's copy cancelled")


def test_a_lost_notification_is_noticed_and_what_it_carried_fetched(nodes, worker):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-prescriber-hosted"]
    (first,) = issue(nodes, "pharmacy-prescriber-hosted")
    wait_for(lambda: held_at(pharmacy, first), message="the first request")
    (lost,) = issue(nodes, "pharmacy-prescriber-hosted")
    # The second notification is lost on the way (its outbox row never delivers).
    Message.objects.filter(node=gp, kind="notify.medication-request", status=Message.Status.PENDING).delete()
    assert held_at(pharmacy, lost) is None
    (third,) = issue(nodes, "pharmacy-prescriber-hosted")
    wait_for(lambda: held_at(pharmacy, third), message="the third request")
    wait_for(lambda: held_at(pharmacy, lost), message="the lost one recovered")
    events = dict(ReceivedEvent.objects.filter(node=pharmacy).values_list("number", "recovered"))
    assert events == {1: False, 2: True, 3: False}


def test_a_repeated_notification_is_ignored(nodes, worker):
    pharmacy = nodes["pharmacy-prescriber-hosted"]
    (request,) = issue(nodes, "pharmacy-prescriber-hosted")
    wait_for(lambda: held_at(pharmacy, request), message="the request")
    note = Message.objects.get(kind="notify.medication-request")
    answer = requests.post(note.url, data=note.body, headers=note.headers, timeout=10)
    assert answer.status_code == 200
    assert "duplicate" in answer.json()["issue"][0]["diagnostics"]
    assert ReceivedEvent.objects.filter(node=pharmacy).count() == 1


def test_notifications_need_a_partners_token(nodes, live_server):
    url = f"{live_server.url}/pharmacy-prescriber-hosted/notifications"
    assert requests.post(url, json={}, timeout=10).status_code == 401
    stranger = {"Authorization": f"Bearer {demo_api_token('pharmacy-prescriber-hosted')}"}
    assert (
        requests.post(url, json={"resourceType": "Bundle"}, headers=stranger, timeout=10).status_code == 403
    )


def test_shared_record_issue_claim_complete_updates_the_broker_and_the_prescriber(nodes, worker):
    pharmacy, broker = nodes["pharmacy-shared-record"], nodes["broker"]
    (request,) = issue(nodes, "pharmacy-shared-record")
    shared = wait_for(lambda: held_at(broker, request), message="the broker storing the request")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy fetching it from the broker")
    dispensing.dispense_start(node=pharmacy, request=copy)
    assert [d["status"] for d in dispenses_at(broker)] == ["in-progress"]
    dispensing.dispense_complete(node=pharmacy, request=copy, days_supply=28)
    wait_for(lambda: status(request) == "completed", message="the prescriber completing its request")
    wait_for(lambda: status(shared) == "completed", message="the shared copy completed")
    assert [d["status"] for d in dispenses_at(broker)] == ["completed"]


def test_two_pharmacies_claiming_one_shared_record_prescription(nodes, worker):
    from nodes.demo import directory_entry
    from tests.factories import make_node

    first = nodes["pharmacy-shared-record"]
    second = make_node("pharmacy-two", "dispensing", "FX999", "Second Pharmacy")
    directory_entry(second, nodes["gp"], Partner.Role.PRESCRIBER, "shared-record")
    directory_entry(second, nodes["broker"], Partner.Role.BROKER)
    (request,) = issue(nodes, "pharmacy-shared-record")
    copy = wait_for(lambda: held_at(first, request), message="the nominated pharmacy's copy")
    shared = wait_for(lambda: held_at(nodes["broker"], request), message="the shared copy")
    # The patient takes the printed token to another pharmacy, which reads the shared record too.
    from exchange.copies import copy_store

    other_copy = copy_store(node=second, resource=json.loads(shared.text))
    claim = dispensing.dispense_start(node=first, request=copy)
    assert dispensing.dispense_start(node=first, request=copy).pk == claim.pk  # a repeat: the same claim
    with pytest.raises(FHIRError) as refused:
        dispensing.dispense_start(node=second, request=other_copy)
    assert refused.value.status == 409
    assert "FH542" in str(refused.value)
    with pytest.raises(FHIRError) as handed_over:  # nor can it hand over without claiming
        dispensing.dispense_complete(node=second, request=other_copy)
    assert handed_over.value.status == 409
    assert dispenses_at(second) == []
    assert [d["status"] for d in dispenses_at(nodes["broker"])] == ["in-progress"]


@pytest.mark.parametrize("topology", [t.value for t in Topology])
def test_scenario_command_completes_every_prescription(nodes, worker, topology):
    wait_for(lambda: subscribed(nodes["broker"]), message="the subscriptions")
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    # Paced at 20 a second: the second and third are issued 50 and 100 ms after the first.
    call_command("scenario", topology=topology, count=3, timeout=60, rate=20, stdout=out)
    assert f"all 3 completed over {topology}; nothing lost, nothing duplicated" in out.getvalue()
    assert "median" in out.getvalue()
    assert "throughput" in out.getvalue()
    assert not Message.objects.filter(status=Message.Status.DEAD).exists()


def test_a_notification_whose_resource_has_no_identifier_is_refused_and_nothing_kept(nodes, live_server):
    from exchange.notifications import TOPIC_BASE, event_part, notification_bundle, status_parameters
    from fhirserver.medication import ITEM_SYSTEM
    from nodes.demo import demo_password

    pharmacy = nodes["pharmacy-shared-record-events"]
    status = status_parameters(
        subscription="Subscription/1",
        topic=TOPIC_BASE + "medication-request",
        status="active",
        kind="event-notification",
        events_since=1,
        events=[
            event_part(
                number=1,
                focus={"type": "MedicationRequest", "identifier": {"system": ITEM_SYSTEM, "value": "x"}},
            )
        ],
    )
    bundle = notification_bundle(
        status, [{"resource": {"resourceType": "MedicationRequest", "status": "active"}}]
    )
    answer = requests.post(
        f"{live_server.url}/{pharmacy.slug}/notifications",
        json=bundle,
        headers={"Authorization": f"Bearer broker@{pharmacy.slug}.{demo_password()}"},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["issue"][0]["expression"] == ["MedicationRequest.identifier"]
    assert not ReceivedEvent.objects.filter(node=pharmacy).exists()
    assert not Resource.objects.filter(node=pharmacy, resource_type="MedicationRequest").exists()
