"""A hospital prescription through the trust's integration engine, end to end: live HTTP between
the nodes and a real Celery worker (with beat) delivering the trust's, the engine's, the broker's
and the pharmacies' outboxes."""

from __future__ import annotations

import json

import requests
from django.db.models import Max

from dispensing import services as dispensing
from engine.models import Relay
from exchange.models import Message, Partner, ReceivedEvent, Subscription
from fhirserver.medication import SNOMED, group_id
from fhirserver.models import Resource
from nodes.demo import demo_password
from prescribing import services as prescribing
from tests.engine.flows import issue_at_trust
from tests.exchange.flows import cut_off, held_at, history, status, subscribed
from tests.pages import text_of
from tests.processes import wait_for

TRUST_TOKEN = f"trust@engine.{demo_password()}"
SHARED_RECORD_TOKEN = f"pharmacy-shared-record@engine.{demo_password()}"


def shared_codes(node, request) -> list[str]:
    copy = held_at(node, request)
    return [c["code"] for c in json.loads(copy.text)["medicationCodeableConcept"]["coding"]]


def test_an_outpatient_prescription_with_a_local_code_goes_through_the_engine_both_ways(
    nodes, worker, live_server
):
    trust, engine, broker = nodes["trust"], nodes["engine"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record-events"]
    wait_for(lambda: subscribed(broker), message="the subscriptions, the trust's through the engine")

    request = issue_at_trust(trust, pharmacy, "RB0001")
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request reaching the pharmacy")
    codings = json.loads(copy.text)["medicationCodeableConcept"]["coding"]
    assert (codings[0]["system"], codings[0]["code"]) == (SNOMED, "39720311000001101")
    assert shared_codes(trust, request) == ["RB0001"]  # the trust keeps what it sent

    dispensing.dispense_start(node=pharmacy, request=copy)
    dispensing.dispense_complete(node=pharmacy, request=copy)
    wait_for(lambda: status(request) == "completed", message="the trust's request completing")
    shared = held_at(broker, request)
    wait_for(lambda: status(shared) == "completed", message="the trust completing the shared copy")

    # Both ways through the engine: the create and the completion out, the broker's event in.
    # The engine logs a relay once the broker has answered it: the broker may show the change first.
    relays = Relay.objects.filter(engine=engine, outcome=Relay.Outcome.PASSED)
    completion = relays.filter(method="PUT", path__startswith="MedicationRequest/", status=200)
    wait_for(completion.exists, message="the engine's log of the completion it relayed")
    assert completion.count() == 1
    assert relays.filter(method="POST", path="MedicationRequest", status=201).count() == 1
    wait_for(relays.filter(method="POST", path=f"notifications/{trust.ods_code}").exists, message="the event")
    # The trust talked to nobody but its engine.
    assert set(Message.objects.filter(node=trust).values_list("partner__ods_code", flat=True)) == {
        engine.ods_code
    }
    assert Resource.objects.filter(node=broker, resource_type="MedicationRequest").count() == 1


def test_the_engine_down_for_a_while_then_back_delivers_each_once_in_order(nodes, worker, live_server):
    trust, engine, broker = nodes["trust"], nodes["engine"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record-events"]
    wait_for(lambda: subscribed(broker), message="the subscriptions")
    front = cut_off(trust, engine, live_server.url)  # the engine is down
    group = prescribing.prescription_id_new(trust)
    first, second = (issue_at_trust(trust, pharmacy, code, group=group) for code in ("RB0001", "RB0002"))
    prescribing.prescription_cancel(node=trust, request=first)  # after its create, in the same queue
    other = issue_at_trust(trust, pharmacy, "RB0003")
    wait_for(
        lambda: Message.objects.filter(node=trust, kind="request.create", attempts__gte=2).count() >= 2,
        message="the trust retrying",
    )
    assert all(held_at(broker, request) is None for request in (first, second, other))

    front.start()
    try:
        wait_for(
            lambda: status(first) == "cancelled", message="the cancellation accepted once the engine is back"
        )
        wait_for(
            lambda: held_at(pharmacy, second) and held_at(pharmacy, other), message="the others arriving"
        )
    finally:
        front.stop()
    # One prescription's messages arrived in the order made: both items, then the cancellation.
    assert held_at(broker, first).pk < held_at(broker, second).pk
    assert status(held_at(broker, first)) == "cancelled"
    assert status(held_at(broker, second)) == "active"
    assert Resource.objects.filter(node=broker, resource_type="MedicationRequest").count() == 3
    creates = Relay.objects.filter(engine=engine, method="POST", path="MedicationRequest")
    assert list(creates.values_list("status", flat=True)) == [201, 201, 201]  # each crossed once


def test_the_broker_down_behind_a_live_engine_is_held_there_and_delivered_once(nodes, worker, live_server):
    trust, engine, broker = nodes["trust"], nodes["engine"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record-events"]
    wait_for(lambda: subscribed(broker), message="the subscriptions")
    front = cut_off(engine, broker, live_server.url)  # the engine cannot reach the broker
    issued = [issue_at_trust(trust, pharmacy, code) for code in ("RB0001", "RB0002")]

    held = Message.objects.filter(node=engine, kind="relay.post")
    wait_for(lambda: held.count() == 2, message="both held at the engine (202 Accepted)")
    wait_for(lambda: held.filter(attempts__gte=2).count() >= 1, message="the engine retrying")
    assert set(held.values_list("status", flat=True)) == {Message.Status.PENDING}
    accepted = Message.objects.filter(node=trust, kind="request.create")
    assert set(accepted.values_list("response_status", flat=True)) == {202}
    waiting = Message.objects.filter(node=trust, kind="request.create.await")
    assert set(waiting.values_list("status", flat=True)) == {Message.Status.PENDING}
    assert all(held_at(broker, request) is None for request in issued)
    poll = waiting.order_by("pk").first().url  # the Content-Location the engine gave
    pending = requests.get(poll, headers={"Authorization": f"Bearer {TRUST_TOKEN}"}, timeout=30)
    assert pending.status_code == 202
    assert int(pending.headers["Retry-After"]) >= 1
    assert "holds this and forwards it to Medicines Broker" in pending.json()["issue"][0]["diagnostics"]

    front.start()
    try:
        wait_for(
            lambda: all(held_at(pharmacy, request) for request in issued),
            message="each delivered once the broker is back",
        )
        wait_for(
            lambda: set(waiting.values_list("status", flat=True)) == {Message.Status.DELIVERED},
            message="the trust learning the broker's answers",
        )
    finally:
        front.stop()
    assert set(held.values_list("status", flat=True)) == {Message.Status.DELIVERED}
    shared = [held_at(broker, request) for request in issued]
    assert [r.pk for r in shared] == sorted(r.pk for r in shared)
    assert Resource.objects.filter(node=broker, resource_type="MedicationRequest").count() == 2
    # The answer polled for is the broker's own: 201, and where it holds the copy.
    answered = requests.get(poll, headers={"Authorization": f"Bearer {TRUST_TOKEN}"}, timeout=30)
    assert answered.status_code == 201
    assert answered.headers["Location"].startswith(
        f"{live_server.url}/broker/fhir/MedicationRequest/{shared[0].logical_id}"
    )
    other = requests.get(poll, headers={"Authorization": f"Bearer {SHARED_RECORD_TOKEN}"}, timeout=30)
    assert other.status_code == 404  # only the system that sent it may see it


def test_a_cancellation_the_broker_refuses_comes_back_through_the_engine(nodes, worker, live_server, screens):
    trust, broker = nodes["trust"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record"]
    (request,) = prescribing.prescription_issue(
        node=trust,
        nhs_number="9449304130",
        items=[
            prescribing.Item("39720311000001101", "Paracetamol 500mg soluble tablets", 28, "tablet", "Two")
        ],
        pharmacy_ods=pharmacy.ods_code,
    )
    copy = wait_for(
        lambda: held_at(pharmacy, request), message="the token reaching the pharmacy through the engine"
    )
    dispensing.dispense_start(node=pharmacy, request=copy)  # claimed at the broker
    prescribing.prescription_cancel(node=trust, request=request)
    wait_for(lambda: history(request) == ["R-0003"], message="the broker's refusal recorded at the trust")
    assert status(request) == "active"
    assert status(held_at(broker, request)) == "active"
    refused = Relay.objects.filter(method="PUT", status=422)
    assert refused.count() == 1  # the broker's own answer, through the engine
    page = text_of(
        screens.as_user("outpatient-prescriber").get(
            f"/trust/prescriptions/{group_id(json.loads(request.text))}"
        )
    )
    assert "Cancellation refused: R-0003" in page
    assert Partner.objects.get(node=trust, role=Partner.Role.BROKER).ods_code == nodes["engine"].ods_code


def test_a_gap_in_the_brokers_events_is_repaired_through_the_engine(nodes, worker, live_server):
    trust, engine, broker = nodes["trust"], nodes["engine"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record-events"]
    wait_for(lambda: subscribed(broker), message="the subscriptions")
    lost, later = issue_at_trust(trust, pharmacy, "RB0001"), issue_at_trust(trust, pharmacy, "RB0002")
    wait_for(lambda: held_at(pharmacy, lost) and held_at(pharmacy, later), message="both at the pharmacy")
    to_trust = Partner.objects.get(node=engine, ods_code=trust.ods_code)
    working = to_trust.notification_url
    to_trust.notification_url = f"{live_server.url}/{trust.slug}/no-such-endpoint"  # the trust answers 404
    to_trust.save()
    dispensing.dispense_complete(node=pharmacy, request=held_at(pharmacy, lost))
    events = Message.objects.filter(
        node=broker, kind="subscription.event", url__endswith=f"/notifications/{trust.ods_code}"
    )
    wait_for(lambda: events.filter(status=Message.Status.DEAD).exists(), message="the broker's event lost")
    assert status(lost) == "active"

    to_trust.notification_url = working
    to_trust.save()
    dispensing.dispense_complete(node=pharmacy, request=held_at(pharmacy, later))
    wait_for(lambda: status(later) == "completed", message="the next event arriving")
    wait_for(lambda: status(lost) == "completed", message="the lost one recovered through the engine")
    assert Relay.objects.filter(engine=engine, path__contains="/$events", status=200).exists()
    assert ReceivedEvent.objects.filter(node=trust, recovered=True).exists()


def test_the_brokers_events_waiting_for_the_trust_go_together_and_are_each_taken_once_in_order(
    nodes, worker, live_server
):
    trust, engine, broker = nodes["trust"], nodes["engine"], nodes["broker"]
    pharmacy = nodes["pharmacy-shared-record-events"]
    wait_for(lambda: subscribed(broker), message="the subscriptions")
    requests_ = [issue_at_trust(trust, pharmacy, code) for code in ("RB0001", "RB0002", "RB0003")]
    wait_for(lambda: all(held_at(pharmacy, r) for r in requests_), message="all at the pharmacy")
    to_trust = Subscription.objects.get(node=broker, endpoint__endswith=f"/notifications/{trust.ods_code}")
    before, since = to_trust.event_count, Message.objects.aggregate(n=Max("pk"))["n"]
    relays_before = Relay.objects.aggregate(n=Max("pk"))["n"]
    front = cut_off(engine, trust, live_server.url)  # the engine cannot reach the trust
    for request in requests_:  # two events each at the broker: claimed, then completed
        dispensing.dispense_start(node=pharmacy, request=held_at(pharmacy, request))
        dispensing.dispense_complete(node=pharmacy, request=held_at(pharmacy, request))
    wait_for(lambda: to_trust.events.count() == before + 6, message="six events at the broker")
    held = Message.objects.filter(node=engine, kind="relay.notify")
    wait_for(lambda: held.filter(attempts__gte=2).exists(), message="the engine retrying the trust")
    assert all(status(request) == "active" for request in requests_)

    front.start()
    try:
        wait_for(lambda: all(status(r) == "completed" for r in requests_), message="completed at the trust")
    finally:
        front.stop()
    notifications = Message.objects.filter(
        node=broker, key=to_trust.key, kind="subscription.event", pk__gt=since
    ).order_by("pk")
    carried = [message.context["events"] for message in notifications]
    assert sum(carried) == 6
    assert len(carried) < 6  # fewer notifications than events
    # The events that waited at the broker crossed the engine together, each notification once.
    relayed = Relay.objects.filter(pk__gt=relays_before, path=f"notifications/{trust.ods_code}")
    assert relayed.count() == len(carried)
    stream = f"Subscription/{to_trust.resource.logical_id}"
    taken = ReceivedEvent.objects.filter(node=trust, subscription=stream)
    assert list(taken.order_by("pk").values_list("number", flat=True)) == list(range(1, before + 7))
    assert not taken.filter(recovered=True).exists()  # each taken as it came: in order, none missed
    assert not Message.objects.filter(status=Message.Status.DEAD).exists()


def test_the_scenario_through_the_engine_completes_twenty_with_nothing_lost_or_doubled(nodes, worker):
    from io import StringIO

    from django.core.management import call_command

    wait_for(lambda: subscribed(nodes["broker"]), message="the subscriptions")
    out = StringIO()
    call_command(
        "scenario",
        topology="shared-record-events",
        via="integration-engine",
        count=20,
        timeout=90,
        stdout=out,
    )
    printed = out.getvalue()
    assert "20 completed at trust" in printed
    assert "all 20 completed over shared-record-events; nothing lost, nothing duplicated" in printed
    assert "events notified by the broker, each delivered once" in printed
    assert Relay.objects.filter(method="POST", path="MedicationRequest", status=201).count() == 20
    assert not Message.objects.filter(status=Message.Status.DEAD).exists()
