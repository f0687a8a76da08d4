"""The engine's rules, met through its FHIR base as the trust's outpatient system meets them
(fhirpy and plain HTTP against the live server): what it maps, stamps and refuses before
anything leaves the trust, and what passes straight through."""

from __future__ import annotations

import json

import pytest
import requests
from fhirpy.base.exceptions import ResourceNotFound

from engine.models import Relay
from fhirserver.medication import ITEM_SYSTEM, SNOMED
from fhirserver.models import Resource
from fhirserver.selectors import request_for_item
from nodes.demo import demo_password
from nodes.demo_engine import FORMULARY_MAP, OUTPATIENT_COMMUNITY
from tests.engine.flows import engine_api, local_coding, outpatient_request
from tests.exchange.flows import deliver_all
from tests.pages import text_of

TRUST_TOKEN = f"trust@engine.{demo_password()}"


def post(live_server, body: dict, token: str = TRUST_TOKEN) -> requests.Response:
    return requests.post(
        f"{live_server.url}/engine/fhir/MedicationRequest",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )


def item(body: dict) -> str:
    return body["identifier"][0]["value"]


def test_an_unmappable_local_code_is_refused_at_the_engine_and_a_mappable_one_reaches_the_broker(
    nodes, live_server
):
    trust, broker = nodes["trust"], nodes["broker"]
    unmappable, mappable = outpatient_request(trust, "RB0099"), outpatient_request(trust, "RB0001")

    refused = post(live_server, unmappable)
    taken = post(live_server, mappable)

    assert refused.status_code == 422
    (issue,) = refused.json()["issue"]
    assert issue["code"] == "code-invalid"
    assert issue["expression"] == ["MedicationRequest.medicationCodeableConcept.coding[0]"]
    assert "RB0099" in issue["diagnostics"]
    assert request_for_item(node=broker, item=item(unmappable)) is None
    # The positive control, sent the same way: mapped, stamped, and created at the broker.
    assert taken.status_code == 201
    shared = request_for_item(node=broker, item=item(mappable))
    assert taken.headers["Location"].startswith(
        f"{live_server.url}/broker/fhir/MedicationRequest/{shared.logical_id}"
    )
    content = json.loads(shared.text)
    assert [(c["system"], c["code"]) for c in content["medicationCodeableConcept"]["coding"]] == [
        (SNOMED, "39720311000001101"),
        (local_coding("RB0001")["system"], "RB0001"),
    ]
    assert content["extension"][-1]["valueCoding"]["code"] == OUTPATIENT_COMMUNITY
    outcomes = list(Relay.objects.order_by("pk").values_list("outcome", "status"))
    assert outcomes[-2:] == [(Relay.Outcome.REFUSED, 422), (Relay.Outcome.PASSED, 201)]


def test_a_request_for_another_organisation_is_refused_and_reads_pass_straight_through(nodes, live_server):
    trust, broker = nodes["trust"], nodes["broker"]
    foreign = outpatient_request(trust, "RB0001", requester="A83008")
    refused = post(live_server, foreign)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["MedicationRequest.requester.identifier.value"]
    assert request_for_item(node=broker, item=item(foreign)) is None

    mine = outpatient_request(trust, "RB0002")
    assert post(live_server, mine).status_code == 201
    client = engine_api(live_server)
    found = client.resources("MedicationRequest").search(identifier=f"{ITEM_SYSTEM}|{item(mine)}").fetch()
    assert [r["id"] for r in found] == [request_for_item(node=broker, item=item(mine)).logical_id]
    # A stale If-Match gets the broker's 412, as it came.
    shared = found[0]
    stale = requests.put(
        f"{live_server.url}/engine/fhir/MedicationRequest/{shared['id']}",
        json={**shared.serialize(), "status": "cancelled"},
        headers={"Authorization": f"Bearer {TRUST_TOKEN}", "If-Match": 'W/"9"'},
        timeout=30,
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    current = requests.get(
        f"{live_server.url}/engine/fhir/MedicationRequest/{shared['id']}",
        headers={"Authorization": f"Bearer {TRUST_TOKEN}"},
        timeout=30,
    )
    assert (current.status_code, current.headers["ETag"]) == (200, 'W/"1"')


def test_only_connected_systems_use_the_engine_and_translate_answers_from_its_concept_map(nodes, live_server):
    assert (
        post(
            live_server, {"resourceType": "MedicationRequest"}, token=f"engine.{demo_password()}"
        ).status_code
        == 403
    )
    assert requests.get(f"{live_server.url}/engine/fhir/metadata", timeout=30).json()["resourceType"] == (
        "CapabilityStatement"
    )
    client = engine_api(live_server)
    mapped = client.execute(
        "ConceptMap/$translate",
        method="get",
        params={"url": FORMULARY_MAP, "system": local_coding("RB0003")["system"], "code": "RB0003"},
    )
    parameters = {p["name"]: p for p in mapped["parameter"]}
    assert parameters["result"]["valueBoolean"] is True
    concept = {p["name"]: p for p in parameters["match"]["part"]}["concept"]["valueCoding"]
    assert (concept["system"], concept["code"]) == (SNOMED, "347208002")
    unmapped = client.execute(
        "ConceptMap/$translate",
        method="post",
        data={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "url", "valueUri": FORMULARY_MAP},
                {"name": "coding", "valueCoding": local_coding("RB0099")},
            ],
        },
    )
    assert [p["valueBoolean"] for p in unmapped["parameter"] if p["name"] == "result"] == [False]
    with pytest.raises(ResourceNotFound):
        client.execute(
            "ConceptMap/$translate",
            method="get",
            params={"url": "https://nowhere.example", "system": "x", "code": "y"},
        )


def test_a_prescription_the_engine_refuses_shows_at_the_trust_as_not_delivered(nodes, live_server, screens):
    from tests.engine.flows import issue_at_trust

    trust, broker = nodes["trust"], nodes["broker"]
    refused = issue_at_trust(trust, nodes["pharmacy-shared-record-events"], "RB0099")
    sent = issue_at_trust(trust, nodes["pharmacy-shared-record-events"], "RB0001")
    deliver_all()
    assert request_for_item(node=broker, item=item(json.loads(sent.text))) is not None
    assert request_for_item(node=broker, item=item(json.loads(refused.text))) is None
    page = text_of(screens.as_user("outpatient-prescriber").get("/trust/prescriptions"))
    assert "Not delivered" in page
    assert "HTTP 422: Riverbank formulary to dm+d maps the local code 'RB0099'" in page
    assert Resource.objects.filter(node=broker, resource_type="MedicationRequest").count() == 1


def test_a_malformed_request_is_refused_at_the_engine_with_its_path_and_nothing_leaves(nodes, live_server):
    trust, broker = nodes["trust"], nodes["broker"]
    malformed = {**outpatient_request(trust, "RB0001"), "requester": "RZZ"}  # not a Reference
    refused = post(live_server, malformed)
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert any(
        "MedicationRequest.requester" in e for i in refused.json()["issue"] for e in i.get("expression", [])
    )
    assert request_for_item(node=broker, item=item(malformed)) is None
    well_formed = outpatient_request(trust, "RB0001")  # the positive control, sent the same way
    assert post(live_server, well_formed).status_code == 201
    assert request_for_item(node=broker, item=item(well_formed)) is not None
    assert Relay.objects.filter(outcome=Relay.Outcome.REFUSED, status=400).count() == 1
