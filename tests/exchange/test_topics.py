"""Subscription topics as resources (R4 Subscriptions Backport): a `Basic` coded SubscriptionTopic
written to a node's FHIR API is a topic its Subscriptions can name, checked as it is written; the
two medication topics are such resources at every node."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from exchange.notifications import TOPIC_BASE
from exchange.subscriptions import FILTER_CRITERIA, PAYLOAD_CONTENT
from exchange.topics import TOPICS
from fhirserver import medication
from nodes.models import Node
from tests.factories import make_node, make_patient
from tests.processes import wait_for

R5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
R4B = "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic."
ENCOUNTER_TOPIC = "https://trust.example/fhir/SubscriptionTopic/encounter-finished"
BUILT_IN = {TOPIC_BASE + "medication-request", TOPIC_BASE + "medication-dispense"}
# The IG's own example criteria (Basic-r4-encounter-complete).
FINISHED = "(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')"


def encounter_topic(
    *, url=ENCOUNTER_TOPIC, resource="http://hl7.org/fhir/StructureDefinition/Encounter", criteria=FINISHED
) -> dict:
    """An Encounter becomes finished, filtered by patient: the IG's example, cut down."""
    return {
        "resourceType": "Basic",
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
        "modifierExtension": [{"url": R5 + "status", "valueCode": "active"}],
        "extension": [
            {"url": R5 + "url", "valueUri": url},
            {"url": R5 + "title", "valueString": "Encounter finished"},
            {
                "url": R4B + "resourceTrigger",
                "extension": [
                    {"url": "description", "valueMarkdown": "An encounter is finished."},
                    {"url": "resource", "valueUri": resource},
                    {"url": "supportedInteraction", "valueCode": "create"},
                    {"url": "supportedInteraction", "valueCode": "update"},
                    {"url": "fhirPathCriteria", "valueString": criteria},
                ],
            },
            {
                "url": R4B + "canFilterBy",
                "extension": [
                    {"url": "description", "valueMarkdown": "The encounter's patient."},
                    {"url": "resource", "valueUri": "Encounter"},
                    {"url": "filterParameter", "valueString": "patient"},
                ],
            },
        ],
    }


def encounter(patient: dict, status: str) -> dict:
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient['id']}"},
    }


def subscription_to(topic: str, criterion: str, endpoint: str) -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "finished encounters of one patient",
        "criteria": topic,
        "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": criterion}]},
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": "full-resource"}]},
        },
    }


def topics_offered(metadata: dict) -> set[str]:
    (subscription,) = [r for r in metadata["rest"][0]["resource"] if r["type"] == "Subscription"]
    extensions = subscription.get("extension", [])
    return {e["valueCanonical"] for e in extensions if e["url"].endswith("topic-canonical")}


def test_a_topic_posted_as_a_basic_notifies_only_what_it_describes(api, receiver, worker):
    mine, theirs = api.made(make_patient("9449304130")), api.made(make_patient("9449305552", "Other"))
    api.made(encounter_topic())
    subscription = api.made(
        subscription_to(ENCOUNTER_TOPIC, f"Encounter?patient=Patient/{mine['id']}", receiver.url)
    )
    wait_for(lambda: [r.kind for r in receiver.taken] == ["handshake"], message="the handshake")

    visit = api.made(encounter(mine, "in-progress"))  # not finished: no event
    api.made(encounter(theirs, "finished"))  # another patient's: no event
    finished = api.send("PUT", f"Encounter/{visit['id']}", {**visit, "status": "finished"})
    assert finished.status_code == 200, finished.text
    again = {**finished.json(), "period": {"end": "2025-01-01T10:00:00Z"}}
    assert api.send("PUT", f"Encounter/{visit['id']}", again).ok  # finished already: no event

    wait_for(receiver.notifications, message="the event")
    time.sleep(1.5)  # the same wait would have seen an event of any write before it
    (event,) = receiver.notifications()
    assert event.numbers == [1]
    resource = json.loads(event.body)["entry"][1]["resource"]
    assert (resource["id"], resource["meta"]["versionId"]) == (visit["id"], "2")
    assert resource["status"] == "finished"
    status = api.read(f"Subscription/{subscription['id']}/$status")["entry"][0]["resource"]
    parameters = {p["name"]: p for p in status["parameter"]}
    assert parameters["events-since-subscription-start"]["valueString"] == "1"
    assert parameters["topic"]["valueCanonical"] == ENCOUNTER_TOPIC


def test_the_capability_statement_offers_the_nodes_topics(api):
    assert topics_offered(api.read("metadata")) == BUILT_IN
    api.made(encounter_topic())
    assert topics_offered(api.read("metadata")) == BUILT_IN | {ENCOUNTER_TOPIC}


INVALID = {
    "bad FHIRPath": (
        encounter_topic(criteria="%current.status = 'finished' and ("),
        "Basic.extension[2].extension[4].valueString",
    ),
    "unknown variable": (
        encounter_topic(criteria="%curent.status = 'finished'"),
        "Basic.extension[2].extension[4].valueString",
    ),
    "unknown resource": (
        encounter_topic(resource="http://hl7.org/fhir/StructureDefinition/Encountre"),
        "Basic.extension[2].extension[1].valueUri",
    ),
    "not an http url": (encounter_topic(url="urn:uuid:1234"), "Basic.extension[0].valueUri"),
}


def _changed(topic: dict, index: int, part: int, **value) -> dict:
    """The topic with one sub-extension's value (or, given a url, the whole of it) replaced."""
    extensions = [dict(e) for e in topic["extension"]]
    parts = [dict(p) for p in extensions[index]["extension"]]
    parts[part] = {"url": parts[part]["url"], **value}
    extensions[index]["extension"] = parts
    return {**topic, "extension": extensions}


INVALID["unknown filter parameter"] = (
    _changed(encounter_topic(), 3, 2, valueString="ward"),
    "Basic.extension[3].extension[2].valueString",
)
INVALID["delete interaction"] = (
    _changed(encounter_topic(), 2, 3, valueCode="delete"),
    "Basic.extension[2].extension[3].valueCode",
)
INVALID["unknown interaction"] = (
    _changed(encounter_topic(), 2, 3, valueCode="patch"),
    "Basic.extension[2].extension[3].valueCode",
)
INVALID["queryCriteria"] = (
    _changed(
        encounter_topic(),
        2,
        4,
        url="queryCriteria",
        extension=[{"url": "current", "valueString": "status=finished"}],
    ),
    "Basic.extension[2].extension[4]",
)
INVALID["no url"] = (
    {**encounter_topic(), "extension": encounter_topic()["extension"][1:]},
    "Basic.extension",
)


@pytest.mark.parametrize(("topic", "path"), INVALID.values(), ids=INVALID.keys())
def test_a_topic_that_cannot_work_is_refused_with_the_path_at_fault(api, topic, path):
    answer = api.send("POST", "Basic", topic)
    assert answer.status_code == 422, answer.text
    assert answer.json()["issue"][0]["expression"] == [path]
    assert api.read("Basic")["total"] == 2  # the built-in topics only
    assert topics_offered(api.read("metadata")) == BUILT_IN


def test_a_second_topic_with_the_same_url_is_refused(api):
    api.made(encounter_topic())
    again = api.send("POST", "Basic", encounter_topic())
    assert again.status_code == 422, again.text
    assert again.json()["issue"][0]["expression"] == ["Basic.extension[0].valueUri"]
    built_in = encounter_topic(url=TOPIC_BASE + "medication-request")
    assert api.send("POST", "Basic", built_in).status_code == 422
    assert api.read("Basic")["total"] == 3


def test_an_ordinary_basic_is_untouched(api):
    basic = {
        "resourceType": "Basic",
        "code": {"coding": [{"system": "http://example.org/kinds", "code": "note"}]},
        "extension": [{"url": R5 + "url", "valueUri": "not a url at all"}],
    }
    assert api.send("POST", "Basic", basic).status_code == 201
    assert topics_offered(api.read("metadata")) == BUILT_IN


def test_a_topic_in_use_keeps_its_url_and_stays(api, receiver):
    topic = api.made(encounter_topic())
    subscription = api.made(subscription_to(ENCOUNTER_TOPIC, "Encounter?patient=Patient/p1", receiver.url))
    moved = _changed_url(topic, "https://trust.example/fhir/SubscriptionTopic/moved")
    answer = api.send("PUT", f"Basic/{topic['id']}", moved)
    assert answer.status_code == 422, answer.text
    assert answer.json()["issue"][0]["expression"] == ["Basic.extension[0].valueUri"]
    assert api.send("DELETE", f"Basic/{topic['id']}").status_code == 409
    assert ENCOUNTER_TOPIC in topics_offered(api.read("metadata"))

    current = api.read(f"Subscription/{subscription['id']}")
    assert api.send("PUT", f"Subscription/{subscription['id']}", {**current, "status": "off"}).ok
    assert api.send("DELETE", f"Basic/{topic['id']}").status_code in (200, 204)
    assert topics_offered(api.read("metadata")) == BUILT_IN


def _changed_url(topic: dict, url: str) -> dict:
    return {**topic, "extension": [{"url": R5 + "url", "valueUri": url}, *topic["extension"][1:]]}


def test_nodes_made_later_offer_the_medication_topics(transactional_db):
    make_node("late", "dispensing", "FLT01", "Late Pharmacy")
    console = Client()
    console.force_login(get_user_model().objects.create_superuser("node-admin", password=None))
    made = console.post(
        "/admin/nodes/node/add/",
        {
            "slug": "later",
            "kind": "dispensing",
            "ods_code": "FLT02",
            "name": "Later Pharmacy",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert made.status_code == 302, made.content.decode()[:2000]
    assert Node.objects.filter(slug="later").exists()
    for slug in ("late", "later"):
        assert topics_offered(Client().get(f"/{slug}/fhir/metadata").json()) == BUILT_IN


# The medication topics are FHIRPath now: each triggers exactly as its Python predecessor did.


def _old_request_trigger(previous: dict | None, current: dict) -> bool:
    if current.get("status") not in ("active", "cancelled") and not medication.is_expired(current):
        return False
    return (
        previous is None
        or previous.get("status") != current.get("status")
        or medication.nominated_ods(previous) != medication.nominated_ods(current)
    )


def _old_dispense_trigger(previous: dict | None, current: dict) -> bool:
    return previous is None or any(previous.get(key) != current.get(key) for key in ("status", "quantity"))


def _request(status: str, ods: str | None = "FA565", expired: bool = False) -> dict:
    request = {"resourceType": "MedicationRequest", "status": status, "note": [{"text": status}]}
    if ods:
        request["dispenseRequest"] = {"performer": {"identifier": {"system": "ods", "value": ods}}}
    if expired:
        request["extension"] = [
            {
                "url": medication.STATUS_HISTORY,
                "extension": [{"url": "status", "valueCoding": {"system": "s", "code": medication.EXPIRED}}],
            }
        ]
    return request


def _dispense(status: str, **quantity) -> dict:
    dispense = {"resourceType": "MedicationDispense", "status": status}
    return {**dispense, "quantity": quantity} if quantity else dispense


REQUESTS = [
    (None, _request("active")),
    (None, _request("draft")),
    (None, _request("cancelled")),
    (None, _request("stopped", expired=True)),
    (_request("active"), _request("active")),
    (_request("active"), _request("active", "FEW08")),
    (_request("active", "fa565"), _request("active", "FA565")),
    (_request("active", None), _request("active")),
    (_request("active"), _request("active", None)),
    (_request("active"), _request("cancelled")),
    (_request("active"), _request("completed")),
    (_request("active"), _request("stopped")),
    (_request("active"), _request("stopped", expired=True)),
    (_request("stopped", expired=True), _request("stopped", expired=True)),
    (_request("stopped", expired=True), _request("stopped", "FEW08", expired=True)),
    (_request("cancelled"), _request("completed", "FEW08")),
]
DISPENSES = [
    (None, _dispense("in-progress")),
    (_dispense("in-progress"), _dispense("completed")),
    (_dispense("completed", value=28, unit="tablet"), _dispense("completed", value=28, unit="tablet")),
    (_dispense("completed", value=28, unit="tablet"), _dispense("completed", value=20, unit="tablet")),
    (_dispense("completed", value=28, unit="tablet"), _dispense("completed", value=28, unit="capsule")),
    (_dispense("completed", value=28, code="1"), _dispense("completed", value=28, code="2")),
    (_dispense("completed", value=28), _dispense("completed", value=28, system="http://snomed.info/sct")),
    (_dispense("completed"), _dispense("completed", value=28)),
    (_dispense("completed", value=28), _dispense("completed")),
    (_dispense("completed"), _dispense("completed")),
]


@pytest.mark.parametrize(("previous", "current"), REQUESTS)
def test_the_request_topic_triggers_as_before(previous, current):
    topic = TOPICS[TOPIC_BASE + "medication-request"]
    assert topic.triggered(previous, current) == _old_request_trigger(previous, current)


@pytest.mark.parametrize(("previous", "current"), DISPENSES)
def test_the_dispense_topic_triggers_as_before(previous, current):
    topic = TOPICS[TOPIC_BASE + "medication-dispense"]
    assert topic.triggered(previous, current) == _old_dispense_trigger(previous, current)
