"""The shared-record-events topology: the broker keeps the record and, through the subscriptions
the pharmacy and the gp made when the demo was seeded, tells each what concerns it. No polling,
no notifications between the pharmacy and the gp."""

from __future__ import annotations

import json

from django.db import transaction

from dispensing import services as dispensing
from exchange.models import Message, Partner, ReceivedEvent
from fhirserver import services
from fhirserver.models import Resource
from prescribing import services as prescribing
from tests.exchange.flows import PARACETAMOL, dispenses_at, held_at, history, issue, status, subscribed
from tests.factories import make_medication_request
from tests.processes import wait_for

PHARMACY = "pharmacy-shared-record-events"


def test_issue_claim_complete_through_the_brokers_events(nodes, worker, screens):
    gp, pharmacy, broker = nodes["gp"], nodes[PHARMACY], nodes["broker"]
    wait_for(lambda: subscribed(broker), message="the subscriptions at the broker")
    first, second = issue(nodes, PHARMACY, [PARACETAMOL, PARACETAMOL])
    copy = wait_for(lambda: held_at(pharmacy, first), message="the broker's event reaching the pharmacy")
    wait_for(lambda: held_at(pharmacy, second), message="the second item")
    assert dispensing.worklist(node=pharmacy).first().pk == copy.pk

    pharmacist = screens.as_user(f"pharmacist-{PHARMACY.removeprefix('pharmacy-')}")
    assert (
        json.loads(first.text)["groupIdentifier"]["value"]
        in pharmacist.get(f"/{PHARMACY}/worklist").content.decode()
    )
    dispensing.dispense_start(node=pharmacy, request=copy)
    assert [d["status"] for d in dispenses_at(broker)] == ["in-progress"]
    assert "With dispenser" in pharmacist.get(f"/{PHARMACY}/worklist?status=with-dispenser").content.decode()
    assert pharmacist.get("/gp/prescriptions").status_code == 404  # another node's screen
    dispensing.dispense_complete(node=pharmacy, request=copy, days_supply=7)
    wait_for(lambda: status(first) == "completed", message="the broker's event completing the request")
    wait_for(lambda: status(held_at(broker, first)) == "completed", message="the shared copy completed")
    assert status(second) == "active"
    assert [d["status"] for d in dispenses_at(gp)] == ["completed"]  # the claim's event, then this one

    # The broker calls each back with the token its directory holds; the resources hold no secret.
    for subscription in Resource.objects.filter(node=broker, resource_type="Subscription"):
        assert "header" not in json.loads(subscription.text)["channel"]
    sent = set(Message.objects.filter(node__in=[gp, pharmacy]).values_list("kind", flat=True))
    assert not {k for k in sent if k.startswith("notify.") or k == "dispense.poll"}
    assert not Message.objects.filter(status=Message.Status.DEAD).exists()


def test_cancellation_reaches_the_pharmacy_through_the_broker(nodes, worker):
    gp, pharmacy, broker = nodes["gp"], nodes[PHARMACY], nodes["broker"]
    wait_for(lambda: subscribed(broker), message="the subscriptions at the broker")
    (request,) = issue(nodes, PHARMACY)
    copy = wait_for(lambda: held_at(pharmacy, request), message="the request at the pharmacy")
    prescribing.prescription_cancel(node=gp, request=request)
    wait_for(lambda: status(copy) == "cancelled", message="the cancellation event")
    assert history(request) == ["R-0001"]
    assert list(dispensing.worklist(node=pharmacy)) == []


def test_a_dropped_event_is_noticed_and_fetched_with_events(nodes, worker):
    pharmacy, broker = nodes[PHARMACY], nodes["broker"]
    wait_for(lambda: subscribed(broker), message="the subscriptions at the broker")
    (first,) = issue(nodes, PHARMACY)
    wait_for(lambda: held_at(pharmacy, first), message="the first request")
    with transaction.atomic():  # an event whose notification is lost
        lost = services.resource_create(
            node=broker, resource_type="MedicationRequest", content=for_parkside()
        ).resource
        Message.objects.filter(node=broker, kind="subscription.event", status=Message.Status.PENDING).delete()
    (third,) = issue(nodes, PHARMACY)
    wait_for(lambda: held_at(pharmacy, third), message="the third request")
    wait_for(lambda: held_at(pharmacy, lost), message="the lost one, fetched after $events")
    recovered = ReceivedEvent.objects.filter(node=pharmacy, recovered=True)
    assert [e.number for e in recovered] == [2]
    assert Message.objects.filter(node=pharmacy, kind="notify.recover", url__contains="/$events?").exists()


def for_parkside() -> dict:
    resource = json.loads(json.dumps(make_medication_request()))  # a deep copy
    resource["dispenseRequest"]["performer"]["identifier"]["value"] = "FEW08"
    return resource


def test_seeding_again_subscribes_once_and_revives_one_turned_off(nodes, worker, live_server):
    import requests

    from exchange.models import Subscription
    from nodes.demo import demo_api_token, demo_seed

    broker = nodes["broker"]
    wait_for(lambda: subscribed(broker), message="the subscriptions at the broker")
    to_pharmacy = Subscription.objects.get(node=broker, resource_type="MedicationRequest")
    url = f"{live_server.url}/broker/fhir/Subscription/{to_pharmacy.resource.logical_id}"
    # Only the pharmacy, whose subscription it is, may turn it off (the broker's demo token may not).
    pharmacy = Partner.objects.get(node=nodes["pharmacy-shared-record-events"], role=Partner.Role.BROKER)
    token = {"Authorization": f"Bearer {pharmacy.token}"}
    current = requests.get(url, headers=token, timeout=10).json()
    others = {"Authorization": f"Bearer {demo_api_token('broker')}"}
    assert requests.put(url, json={**current, "status": "off"}, headers=others, timeout=10).status_code == 403
    assert requests.put(url, json={**current, "status": "off"}, headers=token, timeout=10).ok
    to_pharmacy.refresh_from_db()
    assert to_pharmacy.status == "off"

    demo_seed()  # as `make demo` does each time it starts
    wait_for(lambda: subscribed(broker), message="the pharmacy subscribed again")
    assert Subscription.objects.filter(node=broker).count() == 3
    assert Message.objects.filter(kind="subscribe.again", status=Message.Status.DELIVERED).count() == 1
