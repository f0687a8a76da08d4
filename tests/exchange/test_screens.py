"""The exchange's screens: a node's messages (requeued by its administrator), its subscriptions,
and the broker's shared record. No worker runs: messages stay pending unless delivered here."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from dispensing.services import dispense_start
from exchange.models import Attempt, Message, Subscription
from exchange.services import message_deliver, message_enqueue
from fhirserver import jsonio, medication, services
from fhirserver.nhs import NHS_NUMBER_SYSTEM, PRESCRIPTION_ID_SYSTEM
from tests.exchange.flows import held_at, issue
from tests.factories import make_medication_request
from tests.pages import text_of

OTHER_NHS_NUMBER = "9434765919"


@pytest.fixture
def issued(nodes) -> str:
    """A peer-to-peer prescription issued at the gp, its message pending; return its ID."""
    [request] = issue(nodes, "pharmacy-peer-to-peer")
    return medication.group_id(jsonio.loads(request.text))


def a_pharmacy_message(nodes) -> Message:
    pharmacy = nodes["pharmacy-peer-to-peer"]
    return message_enqueue(
        node=pharmacy,
        partner=pharmacy.partners.get(ods_code="A83008"),
        key="ZZZZZZ-FA5650-00001X",
        kind="dispense.completed",
        method="POST",
        url="http://127.0.0.1:1/gp/fhir/MedicationDispense",
    )


def make_dead(message: Message, error: str = "HTTP 422: the partner refused it") -> Message:
    """Mark a message dead after one refused attempt, as delivery would have."""
    Attempt.objects.create(
        message=message,
        node=message.node,
        number=1,
        method=message.method,
        url=message.url,
        status_code=422,
        duration_ms=12,
        error=error,
    )
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.DEAD, attempts=1, last_error=error, response_status=422
    )
    message.refresh_from_db()
    return message


# Messages


def test_the_messages_screen_lists_this_nodes_messages_and_not_another_nodes(screens, nodes, issued):
    a_pharmacy_message(nodes)
    page = screens.as_user("prescriber").get("/gp/messages")
    assert page.status_code == 200
    text = text_of(page)
    assert "Request sent to the pharmacy" in text
    assert issued in text
    assert "Station Road Pharmacy" in text
    assert "ZZZZZZ-FA5650-00001X" not in text
    theirs = text_of(screens.as_user("pharmacist-peer-to-peer").get("/pharmacy-peer-to-peer/messages"))
    assert "ZZZZZZ-FA5650-00001X" in theirs
    assert "Dispense sent to the prescriber" in theirs
    assert issued not in theirs


def test_sent_messages_filter_by_status_and_search_by_prescription_id(screens, nodes, issued):
    other = issue(nodes, "pharmacy-dispenser-hosted")[0]
    other_id = medication.group_id(jsonio.loads(other.text))
    make_dead(Message.objects.get(node=nodes["gp"], key=other_id))
    client = screens.as_user("gp-admin")
    total = Message.objects.filter(node=nodes["gp"]).count()  # the demo's subscription request too

    everything = text_of(client.get("/gp/messages"))
    assert f"All ({total})" in everything
    assert f"Pending ({total - 1})" in everything
    assert "Dead (1)" in everything

    dead = text_of(client.get("/gp/messages?status=dead"))
    assert other_id in dead
    assert issued not in dead
    assert "HTTP 422: the partner refused it" in dead

    found = text_of(client.get("/gp/messages", {"q": issued.lower()}))
    assert issued in found
    assert other_id not in found
    assert "All (1)" in found


def test_an_htmx_poll_gets_just_the_list(screens, nodes, issued):
    page = screens.as_user("prescriber").get("/gp/messages", HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    body = page.content.decode()
    assert "<html" not in body
    assert 'id="exchange"' in body
    assert 'hx-trigger="every ' in body
    assert issued in body


def test_a_message_page_shows_its_attempts_and_body_with_the_token_hidden(screens, nodes, issued):
    message = make_dead(Message.objects.get(node=nodes["gp"], key=issued))
    page = screens.as_user("prescriber").get(f"/gp/messages/{message.pk}")
    assert page.status_code == 200
    text = text_of(page)
    assert "Request sent to the pharmacy" in text
    assert "HTTP 422" in text
    assert "12 ms" in text
    assert '"resourceType": "MedicationRequest"' in page.content.decode().replace("&quot;", '"')
    assert "(hidden)" in text
    assert message.headers["Authorization"].split()[1] not in page.content.decode()
    assert "An administrator of Hallgarth Surgery can requeue it" in text
    assert "Requeue this message" not in text


def test_a_dead_message_requeued_by_the_administrator_is_pending_with_its_error_kept_a_prescriber_gets_403(
    screens, nodes, issued
):
    message = make_dead(Message.objects.get(node=nodes["gp"], key=issued))
    url = f"/gp/messages/{message.pk}/requeue"

    refused = screens.as_user("prescriber").post(url)
    assert refused.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.DEAD

    admin = screens.as_user("gp-admin")
    assert "Requeue this message" in text_of(admin.get(f"/gp/messages/{message.pk}"))
    requeued = admin.post(url)
    assert requeued.status_code == 302
    assert requeued["Location"] == f"/gp/messages/{message.pk}"
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert message.last_error == "HTTP 422: the partner refused it"
    assert list(message.attempt_log.values_list("status_code", "error")) == [
        (422, "HTTP 422: the partner refused it")
    ]
    after = text_of(admin.get(requeued["Location"]))
    assert "The message was requeued" in after
    assert "HTTP 422: the partner refused it" in after


def test_a_message_that_is_not_dead_is_not_requeued(screens, nodes, issued):
    message = Message.objects.get(node=nodes["gp"], key=issued)
    before = message.expires_at
    admin = screens.as_user("gp-admin")
    response = admin.post(f"/gp/messages/{message.pk}/requeue", follow=True)
    assert "Only a dead message can be requeued" in text_of(response)
    message.refresh_from_db()
    assert (message.status, message.expires_at) == (Message.Status.PENDING, before)


def test_a_requeue_without_the_csrf_token_is_refused(nodes, issued):
    from django.contrib.auth import get_user_model

    message = make_dead(Message.objects.get(node=nodes["gp"], key=issued))
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="gp-admin"))
    assert client.post(f"/gp/messages/{message.pk}/requeue").status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.DEAD
    page = client.get(f"/gp/messages/{message.pk}")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(f"/gp/messages/{message.pk}/requeue", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING


def test_a_member_of_another_node_gets_404(screens, nodes, issued):
    gp_message = Message.objects.get(node=nodes["gp"], key=issued)
    pharmacist = screens.as_user("pharmacist-peer-to-peer")
    assert pharmacist.get("/gp/messages").status_code == 404
    assert pharmacist.get(f"/gp/messages/{gp_message.pk}").status_code == 404
    assert pharmacist.post(f"/gp/messages/{gp_message.pk}/requeue").status_code == 404
    assert pharmacist.get("/gp/subscriptions").status_code == 404
    assert pharmacist.get("/broker/shared-record").status_code == 404
    # A message of another node is not found under one's own either.
    assert pharmacist.get(f"/pharmacy-peer-to-peer/messages/{gp_message.pk}").status_code == 404


# The shared record


def claimed_in_the_shared_record(nodes) -> str:
    """Issue to the shared-record pharmacy, deliver what the worker would (the POST to the broker,
    the notification, the pharmacy's fetch), and claim it there; return the Prescription ID."""
    gp, pharmacy = nodes["gp"], nodes["pharmacy-shared-record"]
    [request] = issue(nodes, "pharmacy-shared-record")
    message_deliver(message_id=Message.objects.get(node=gp, kind="request.create").pk)  # then its notify
    message_deliver(message_id=Message.objects.get(node=pharmacy, kind="fetch.medication-request").pk)
    dispense_start(node=pharmacy, request=held_at(pharmacy, request))
    return medication.group_id(jsonio.loads(request.text))


def someone_elses_prescription(broker) -> str:
    """A request for another patient in the broker's store, unclaimed; return its ID."""
    prescription_id = medication.prescription_id(ods_code="A83008", sequence=4321)
    content = make_medication_request(
        groupIdentifier={"system": PRESCRIPTION_ID_SYSTEM, "value": prescription_id},
        subject={"identifier": {"system": NHS_NUMBER_SYSTEM, "value": OTHER_NHS_NUMBER}},
    )
    services.resource_create(node=broker, resource_type="MedicationRequest", content=content)
    return prescription_id


def test_the_shared_record_finds_by_prescription_id_and_by_nhs_number_and_shows_who_is_dispensing(
    screens, nodes
):
    claimed = claimed_in_the_shared_record(nodes)
    other = someone_elses_prescription(nodes["broker"])
    client = screens.as_user("broker-admin")

    newest = text_of(client.get("/broker/shared-record"))
    assert "Newest prescriptions" in newest
    assert claimed in newest
    assert other in newest

    by_id = client.get("/broker/shared-record", {"q": claimed.lower()})
    assert by_id.status_code == 200
    text = text_of(by_id)
    assert "1 prescription found" in text
    assert f"Prescription {claimed}" in text
    assert other not in text
    assert "Paracetamol 500mg soluble tablets" in text
    assert "Nominated pharmacy FH542" in text
    assert "Dispensing FH542" in text  # the responsive heading, then who holds the claim
    assert "Being dispensed by FH542" in text

    by_nhs_number = text_of(client.get("/broker/shared-record", {"q": "943 476 5919"}))
    assert other in by_nhs_number
    assert claimed not in by_nhs_number
    assert "No pharmacy yet" in by_nhs_number


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("24F5DA-A83008-7EFE6A", "check character"),
        ("24F5DA-A83008", "Enter a Prescription ID in the format"),
        ("9449304131", "Enter a valid NHS number"),
        ("", "Enter a Prescription ID or an NHS number"),
        ("<script>alert(1)</script>", "Enter a Prescription ID in the format"),
    ],
)
def test_a_bad_check_character_or_nhs_number_shows_the_error_summary_not_a_500(screens, nodes, query, error):
    page = screens.as_user("broker-admin").get("/broker/shared-record", {"q": query})
    assert page.status_code == 200
    body = page.content.decode()
    assert "<title>Error: Shared record" in body
    assert "There is a problem" in body
    assert re.search(r'<a href="#id_q">[^<]*' + re.escape(error), body)
    assert "<script>alert" not in body
    assert "Newest prescriptions" not in body


def test_the_shared_record_is_only_at_a_broker(screens, nodes):
    assert screens.as_user("gp-admin").get("/gp/shared-record").status_code == 404


# Subscriptions


def test_subscriptions_show_their_status_topic_filters_endpoint_and_events(screens, nodes):
    gp, broker = nodes["gp"], nodes["broker"]
    message_deliver(message_id=Message.objects.get(node=gp, kind="subscribe").pk)  # the POST
    subscription = Subscription.objects.get(node=broker)
    page = screens.as_user("broker-admin").get("/broker/subscriptions")
    assert page.status_code == 200
    text = text_of(page)
    assert f"Subscription/{subscription.resource.logical_id}: Hallgarth Surgery" in text
    assert "Requested" in text  # the handshake is not delivered: no worker runs
    assert "SubscriptionTopic/medication-dispense" in text
    assert "MedicationDispense?prescription.requester:identifier=" in text
    assert subscription.endpoint in text
    assert "1 message waiting to be delivered" in text
    assert "/broker/shared-record" in page.content.decode()  # back to the shared record

    at_the_gp = screens.as_user("prescriber").get("/gp/subscriptions")
    assert at_the_gp.status_code == 200
    assert "Hallgarth Surgery holds no subscriptions" in text_of(at_the_gp)
