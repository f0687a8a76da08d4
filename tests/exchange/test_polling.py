"""Dispenser-hosted: the prescriber asks each pharmacy about its open requests, a few searches an
interval however many are open, and learns of each dispense from them."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from dispensing import services as dispensing
from exchange.copies import copies_store
from exchange.models import Message, Partner
from exchange.services import message_deliver, message_enqueue
from fhirserver.medication import ITEM_SYSTEM, item_id
from prescribing.polling import ITEMS_A_POLL, dispensers_poll
from tests.exchange.flows import deliver_all, held_at, issue, status

OPEN = ITEMS_A_POLL + 5


def asked(polls) -> list[list[str]]:
    """The items each poll asks about."""
    return [parse_qs(urlsplit(poll.url).query)["prescription:identifier"][0].split(",") for poll in polls]


def test_a_pharmacy_is_asked_in_a_few_searches_and_each_dispense_is_learnt(nodes):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-dispenser-hosted"]
    route = route_to(gp, pharmacy)
    route.poll_interval = 3600
    route.save()
    requests = [issue(nodes, "pharmacy-dispenser-hosted")[0] for _ in range(OPEN)]
    deliver_all()  # every request reaches the pharmacy

    assert dispensers_poll() == 2
    polls = Message.objects.filter(node=gp, kind="dispense.poll").order_by("pk")
    assert [len(items) for items in asked(polls)] == [ITEMS_A_POLL, OPEN - ITEMS_A_POLL]
    wanted = {f"{ITEM_SYSTEM}|{item_id(json.loads(r.text))}" for r in requests}
    assert {item for items in asked(polls) for item in items} == wanted
    assert all(len(poll.url) <= Message._meta.get_field("url").max_length for poll in polls)
    assert dispensers_poll() == 0  # its polls are pending

    first = held_at(pharmacy, requests[0])
    dispensing.dispense_start(node=pharmacy, request=first)
    dispensing.dispense_complete(node=pharmacy, request=first)
    deliver_all()
    for poll in polls:
        message_deliver(message_id=poll.pk)
    assert {poll.status for poll in polls.all()} == {Message.Status.DELIVERED}
    assert status(requests[0]) == "completed"
    assert [status(r) for r in requests[1:]] == ["active"] * (OPEN - 1)

    assert dispensers_poll() == 0  # asked within the route's interval
    route.poll_interval = 0
    route.save()
    assert dispensers_poll() == 2  # the control: once it has passed, the open ones are asked again
    again = Message.objects.filter(node=gp, kind="dispense.poll", status=Message.Status.PENDING)
    assert sum(len(items) for items in asked(again)) == OPEN - 1


def test_a_poll_whose_answer_runs_to_pages_fetches_each(nodes, monkeypatch):
    monkeypatch.setattr("prescribing.polling.DISPENSES_A_POLL", 2)
    gp, pharmacy = nodes["gp"], nodes["pharmacy-dispenser-hosted"]
    requests = [issue(nodes, "pharmacy-dispenser-hosted")[0] for _ in range(3)]
    deliver_all()
    for request in requests:
        copy = held_at(pharmacy, request)
        dispensing.dispense_start(node=pharmacy, request=copy)
        dispensing.dispense_complete(node=pharmacy, request=copy)
    deliver_all()

    assert dispensers_poll() == 1
    for _ in range(3):  # the poll, then its next page (in the same queue)
        for poll in Message.objects.filter(node=gp, kind="dispense.poll", status=Message.Status.PENDING):
            message_deliver(message_id=poll.pk)
    first, following = Message.objects.filter(node=gp, kind="dispense.poll").order_by("pk")
    assert "_cursor=" not in first.url
    assert following.url.startswith(f"{route_to(gp, pharmacy).fhir_base}/MedicationDispense?")
    assert "_cursor=" in following.url
    assert following.key == first.key
    assert [status(r) for r in requests] == ["completed"] * 3


def route_to(gp, pharmacy) -> Partner:
    return Partner.objects.get(node=gp, ods_code=pharmacy.ods_code)


def answered(links: object) -> SimpleNamespace:
    """A partner's searchset answer with these links and no entries."""
    return SimpleNamespace(body=json.dumps({"resourceType": "Bundle", "type": "searchset", "link": links}))


def a_poll(gp, partner, url: str) -> Message:
    return message_enqueue(
        node=gp, partner=partner, key="poll-test", kind="dispense.poll", method="GET", url=url
    )


def test_a_next_page_is_fetched_only_at_the_partner_and_only_once(nodes, caplog):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-dispenser-hosted"]
    partner = route_to(gp, pharmacy)
    base = partner.fhir_base
    asked_first = f"{base}/MedicationDispense?prescription:identifier=x"
    message = a_poll(gp, partner, asked_first)

    def next_is(url: str) -> SimpleNamespace:
        return answered([{"relation": "next", "url": url}])

    following = Message.objects.filter(node=gp, key="poll-test").exclude(pk=message.pk)
    copies_store(
        message=message, answer=next_is("https://elsewhere.example/fhir/MedicationDispense?_cursor=1")
    )
    copies_store(message=message, answer=next_is(asked_first))  # a partner that loops
    assert not following.exists()
    assert "not at the partner's base" in caplog.text
    copies_store(message=message, answer=next_is(f"{base}/MedicationDispense?_cursor=1"))  # the control
    assert [m.url for m in following] == [f"{base}/MedicationDispense?_cursor=1"]


def test_a_malformed_next_link_ends_the_fetch_and_fails_nothing(nodes, caplog):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-dispenser-hosted"]
    partner = route_to(gp, pharmacy)
    message = a_poll(gp, partner, f"{partner.fhir_base}/MedicationDispense?prescription:identifier=x")
    following = Message.objects.filter(node=gp, key="poll-test").exclude(pk=message.pk)
    for links in ("next", ["next"], [{"relation": "next", "url": 7}], [{"relation": "next"}]):
        copies_store(message=message, answer=answered(links))  # no exception: the page's entries stand
    assert not following.exists()
    assert "next link has no URL" in caplog.text
    good = f"{partner.fhir_base}/MedicationDispense?_cursor=2"
    copies_store(message=message, answer=answered(["next", {"relation": "next", "url": good}]))  # control
    assert [m.url for m in following] == [good]
