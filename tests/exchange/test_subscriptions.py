"""Subscriptions at a node, seen from the subscriber's endpoint: created through the API, matched
inside each write, delivered by a real Celery worker over live HTTP, in order and once."""

from __future__ import annotations

import json
import time

import pytest
import requests

from exchange.models import Message
from exchange.notifications import TOPIC_BASE
from exchange.selectors import message_kind_words
from exchange.subscriptions import FILTER_CRITERIA, HEARTBEAT_PERIOD, PAYLOAD_CONTENT
from fhirserver.nhs import ODS_SYSTEM
from tests.factories import bearer, make_medication_request
from tests.processes import wait_for

REQUEST_TOPIC = TOPIC_BASE + "medication-request"


def topic_subscription(endpoint: str, *, pharmacy="FEW08", content="id-only", heartbeat=0) -> dict:
    channel = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]},
        "header": ["Authorization: Bearer from-the-broker"],
    }
    if heartbeat:
        channel["extension"] = [{"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat}]
    criterion = f"MedicationRequest?intended-dispenser:identifier={ODS_SYSTEM}|{pharmacy}"
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "requests to dispense",
        "criteria": REQUEST_TOPIC,
        "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": criterion}]},
        "channel": channel,
    }


def for_pharmacy(ods_code: str, **overrides) -> dict:
    return make_medication_request(
        dispenseRequest={
            "performer": {"identifier": {"system": ODS_SYSTEM, "value": ods_code}},
            "quantity": {"value": 28, "unit": "tablet"},
        },
        **overrides,
    )


def subscription_status(api, logical_id: str) -> str:
    return api.read(f"Subscription/{logical_id}")["status"]


def test_an_r4_subscription_made_with_plain_json_is_activated_and_notified(api, receiver, worker):
    created = api.send(
        "POST",
        "Subscription",
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "Active requests for Parkside",
            "criteria": f"MedicationRequest?status=active&intended-dispenser:identifier={ODS_SYSTEM}|FEW08",
            "channel": {"type": "rest-hook", "endpoint": receiver.url, "header": ["X-Secret: s3cret"]},
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["Content-Type"].startswith("application/fhir+json")
    logical_id = created.json()["id"]
    wait_for(
        lambda: subscription_status(api, logical_id) == "active", message="activation (R4: no handshake)"
    )

    api.send("POST", "MedicationRequest", for_pharmacy("FA565"))  # not for this pharmacy
    api.send("POST", "MedicationRequest", for_pharmacy("FEW08"))
    wait_for(lambda: len(receiver.taken) == 1, message="the notification")
    time.sleep(1)
    (notification,) = receiver.taken  # the other pharmacy's request was not notified
    assert (notification.method, notification.path, notification.body) == ("POST", "/hook", "")
    assert notification.headers["X-Secret"] == "s3cret"


def test_an_r4_subscription_with_a_payload_puts_the_resource(api, receiver, worker):
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "copies",
        "criteria": "MedicationRequest?status=cancelled",
        "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"},
    }
    assert api.send("POST", "Subscription", subscription).status_code == 201
    stored = api.send("POST", "MedicationRequest", for_pharmacy("FEW08")).json()
    assert api.send("PUT", f"MedicationRequest/{stored['id']}", {**stored, "status": "cancelled"}).ok
    put = wait_for(lambda: [r for r in receiver.taken if r.method == "PUT"], message="the PUT")[0]
    assert put.path == f"/hook/MedicationRequest/{stored['id']}"
    assert json.loads(put.body)["status"] == "cancelled"


def test_handshake_then_heartbeats(api, receiver, worker):
    created = api.send("POST", "Subscription", topic_subscription(receiver.url, heartbeat=1)).json()
    wait_for(
        lambda: [r.kind for r in receiver.taken][:3] == ["handshake", "heartbeat", "heartbeat"],
        message="a handshake and two heartbeats",
    )
    handshake = receiver.taken[0]
    assert handshake.status["subscription"]["valueReference"]["reference"] == f"Subscription/{created['id']}"
    assert handshake.status["topic"]["valueCanonical"] == REQUEST_TOPIC
    assert handshake.headers["Authorization"] == "Bearer from-the-broker"
    assert subscription_status(api, created["id"]) == "active"


def test_topic_matching_and_not_matching_changes(api, receiver, worker):
    api.send("POST", "Subscription", topic_subscription(receiver.url, content="full-resource"))
    mine = api.send("POST", "MedicationRequest", for_pharmacy("FEW08")).json()
    api.send("POST", "MedicationRequest", for_pharmacy("FA565"))  # another pharmacy's
    noted = {**mine, "note": [{"text": "Patient prefers blister packs"}]}
    api.send("PUT", f"MedicationRequest/{mine['id']}", noted)  # still active: no event
    api.send("PUT", f"MedicationRequest/{mine['id']}", {**noted, "status": "cancelled"})
    # Two events (one, or two notifications, as they happen to wait together). The update that
    # changed nothing the topic watches came between them, in order: had it made an event, it would
    # be the second, an active request.
    wait_for(lambda: sum(len(n.numbers) for n in receiver.notifications()) >= 2, message="two events")
    notifications = receiver.notifications()
    assert [number for n in notifications for number in n.numbers] == [1, 2]
    resources = [e["resource"] for n in notifications for e in json.loads(n.body)["entry"][1:]]
    assert [r["status"] for r in resources] == ["active", "cancelled"]
    assert resources[1]["note"][0]["text"] == "Patient prefers blister packs"
    last = json.loads(notifications[-1].body)["entry"][0]["resource"]["parameter"]
    event = [p for p in last if p["name"] == "notification-event"][-1]
    focus = next(part["valueReference"] for part in event["part"] if part["name"] == "focus")
    assert focus["reference"] == f"MedicationRequest/{mine['id']}"
    assert focus["identifier"] == mine["identifier"][0]


def test_id_only_notifications_carry_no_resource(api, receiver, worker):
    api.send("POST", "Subscription", topic_subscription(receiver.url, content="id-only"))
    mine = api.send("POST", "MedicationRequest", for_pharmacy("FEW08")).json()
    (note,) = wait_for(receiver.notifications, message="the notification")
    entry = json.loads(note.body)["entry"][1]
    assert "resource" not in entry
    assert entry["fullUrl"].endswith(f"/broker/fhir/MedicationRequest/{mine['id']}")
    assert entry["request"] == {"method": "POST", "url": f"MedicationRequest/{mine['id']}"}


def test_a_subscriber_down_for_a_while_gets_every_event_once_in_order_in_fewer_notifications(
    api, receiver, worker
):
    subscription = topic_subscription(receiver.url, content="full-resource")
    created = api.send("POST", "Subscription", subscription).json()
    wait_for(lambda: subscription_status(api, created["id"]) == "active", message="the handshake")
    receiver.stop()
    ids = [api.send("POST", "MedicationRequest", for_pharmacy("FEW08")).json()["id"] for _ in range(5)]
    wait_for(lambda: subscription_status(api, created["id"]) == "error", message="the error status")
    assert "failed" in api.read(f"Subscription/{created['id']}")["error"]
    events = Message.objects.filter(kind="subscription.event")
    wait_for(lambda: events.filter(attempts__gte=2).exists(), message="failed attempts, retried")
    receiver.start()
    wait_for(lambda: sum(len(n.numbers) for n in receiver.notifications()) == 5, message="every event")
    # The events that waited went together: fewer notifications than events, each event in one.
    assert len(receiver.notifications()) < 5
    assert [number for n in receiver.notifications() for number in n.numbers] == [1, 2, 3, 4, 5]
    bundles = [json.loads(n.body) for n in receiver.notifications()]
    assert [e["resource"]["id"] for bundle in bundles for e in bundle["entry"][1:]] == ids
    last = bundles[-1]["entry"][0]["resource"]["parameter"]
    assert {p["name"]: p for p in last}["events-since-subscription-start"]["valueString"] == "5"
    # The messages screen says how many events each notification carried.
    carried = {m.pk: m.context["events"] for m in events}
    words = [message_kind_words(message=m) for m in events.order_by("pk")]
    assert sum(carried.values()) == 5
    assert max(carried.values()) > 1
    assert [w.endswith(" events)") for w in words] == [carried[pk] > 1 for pk in sorted(carried)]
    # Once the subscriber is back, the next event comes alone, after the others and nothing again.
    api.send("POST", "MedicationRequest", for_pharmacy("FEW08"))
    wait_for(lambda: receiver.notifications()[-1].numbers == [6], message="the next event")
    assert [number for n in receiver.notifications() for number in n.numbers] == [1, 2, 3, 4, 5, 6]
    wait_for(lambda: subscription_status(api, created["id"]) == "active", message="active again")


def test_a_subscriber_answering_500_puts_it_in_error_until_it_answers(api, receiver, worker):
    receiver.answer = 500
    created = api.send("POST", "Subscription", topic_subscription(receiver.url)).json()
    wait_for(lambda: subscription_status(api, created["id"]) == "error", message="the error status")
    api.send("POST", "MedicationRequest", for_pharmacy("FEW08"))
    wait_for(lambda: receiver.refused >= 3, message="retries")
    status = api.read(f"Subscription/{created['id']}/$status")["entry"][0]["resource"]
    parameters = {p["name"]: p for p in status["parameter"]}
    assert parameters["status"]["valueCode"] == "error"
    assert parameters["type"]["valueCode"] == "query-status"
    assert parameters["events-since-subscription-start"]["valueString"] == "1"
    assert "500" in parameters["error"]["valueCodeableConcept"]["text"]

    receiver.answer = 200
    wait_for(lambda: subscription_status(api, created["id"]) == "active", message="recovered")
    wait_for(lambda: [n.numbers for n in receiver.notifications()] == [[1]], message="the event")
    assert not Message.objects.filter(status=Message.Status.DEAD).exists()


def test_events_can_be_fetched_by_number(api, receiver, worker):
    created = api.send("POST", "Subscription", topic_subscription(receiver.url, content="id-only")).json()
    ids = [api.send("POST", "MedicationRequest", for_pharmacy("FEW08")).json()["id"] for _ in range(3)]
    events = api.read(f"Subscription/{created['id']}/$events?eventsSinceNumber=2&eventsUntilNumber=3")
    status = {p["name"]: p for p in events["entry"][0]["resource"]["parameter"]}
    assert status["type"]["valueCode"] == "query-event"
    assert [e["request"]["url"] for e in events["entry"][1:]] == [f"MedicationRequest/{i}" for i in ids[1:]]
    full = api.read(f"Subscription/{created['id']}/$events?content=full-resource")
    assert [e["resource"]["id"] for e in full["entry"][1:]] == ids
    assert api.send("GET", f"Subscription/{created['id']}/$events?eventsSinceNumber=x").status_code == 400
    assert api.send("GET", f"Subscription/{created['id']}/$events?eventsSinceNumber=²").status_code == 400
    empty = api.read(f"Subscription/{created['id']}/$events?content=empty")
    (event, *_) = [p for p in empty["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    assert [part["name"] for part in event["part"]] == ["event-number", "timestamp"]  # no focus
    assert len(empty["entry"]) == 1
    assert api.send("GET", "Subscription/nope/$status").status_code == 404


def test_turned_off_it_sends_nothing_more(api, receiver, worker):
    created = api.send("POST", "Subscription", topic_subscription(receiver.url)).json()
    wait_for(lambda: subscription_status(api, created["id"]) == "active", message="the handshake")
    current = api.read(f"Subscription/{created['id']}")
    assert api.send("PUT", f"Subscription/{created['id']}", {**current, "status": "off"}).ok
    api.send("POST", "MedicationRequest", for_pharmacy("FEW08"))
    time.sleep(1.5)
    assert receiver.notifications() == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"criteria": "MedicationRequest?nonsense=1"}, "Subscription.criteria"),
        ({"criteria": TOPIC_BASE + "no-such-topic"}, "Subscription.criteria"),
        ({"channel": {"type": "websocket"}}, "Subscription.channel.type"),
        ({"channel": {"type": "rest-hook", "endpoint": "file:///x"}}, "Subscription.channel.endpoint"),
        (
            {"channel": {"type": "rest-hook", "endpoint": "http://10.0.0.7/hook"}},
            "Subscription.channel.endpoint",
        ),
        (
            {"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h", "header": ["X-Note: ✓"]}},
            "Subscription.channel.header[0]",
        ),
        (
            {
                "_criteria": {
                    "extension": [{"url": FILTER_CRITERIA, "valueString": "MedicationRequest?code=x"}]
                }
            },
            "Subscription.criteria",
        ),
    ],
)
def test_a_subscription_that_cannot_work_is_refused(api, receiver, change, path):
    answer = api.send("POST", "Subscription", {**topic_subscription(receiver.url), **change})
    assert answer.status_code == 422, answer.text
    assert answer.json()["issue"][0]["expression"] == [path]
    if change.get("criteria", "").endswith("no-such-topic"):  # the answer names the topics there are
        assert REQUEST_TOPIC in answer.json()["issue"][0]["diagnostics"]
    assert api.read("Subscription")["total"] == 0


def test_the_capability_statement_declares_the_operations(api):
    metadata = requests.get(f"{api.base}/metadata", timeout=10).json()
    (subscription,) = [r for r in metadata["rest"][0]["resource"] if r["type"] == "Subscription"]
    assert {o["name"] for o in subscription["operation"]} == {"status", "events", "reindex"}
    topics = {e["valueCanonical"] for e in subscription["extension"] if e["url"].endswith("topic-canonical")}
    assert topics == {REQUEST_TOPIC, TOPIC_BASE + "medication-dispense"}


def test_a_deleted_subscription_sends_nothing_more(api, receiver, worker):
    created = api.send("POST", "Subscription", topic_subscription(receiver.url)).json()
    wait_for(lambda: subscription_status(api, created["id"]) == "active", message="the handshake")
    receiver.stop()
    api.send("POST", "MedicationRequest", for_pharmacy("FEW08"))
    wait_for(lambda: subscription_status(api, created["id"]) == "error", message="the failing delivery")
    assert api.send("DELETE", f"Subscription/{created['id']}").status_code in (200, 204)
    receiver.start()
    time.sleep(2)
    assert receiver.notifications() == []
    stopped = Message.objects.get(kind="subscription.event")
    assert (stopped.status, stopped.last_error) == ("dead", "The subscription was deleted.")


def test_fhirpy_subscribes_and_reads_its_status(api, receiver, worker):
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(api.base, authorization=bearer("broker")["Authorization"])
    subscription = client.resource(
        "Subscription", **topic_subscription(receiver.url, content="full-resource")
    )
    subscription.save()
    wait_for(
        lambda: client.reference("Subscription", subscription.id).to_resource()["status"] == "active",
        message="the handshake",
    )
    client.resource("MedicationRequest", **for_pharmacy("FEW08")).save()
    wait_for(receiver.notifications, message="the notification")
    status = client.reference("Subscription", subscription.id).execute("$status", method="get")
    parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert parameters["events-since-subscription-start"]["valueString"] == "1"
    assert parameters["status"]["valueCode"] == "active"
