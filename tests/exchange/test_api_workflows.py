"""An outside system drives the workflows through the nodes' FHIR APIs alone, with fhirpy: the
guide's triggers (a MedicationRequest made active at the GP, a MedicationDispense completed at the
pharmacy), over every topology, with a real worker delivering what they send."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, OperationOutcome

from exchange.models import Message, Partner
from fhirserver.medication import ITEM_SYSTEM, item_id
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PRESCRIPTION_ID_SYSTEM, prescription_id_problem
from fhirserver.selectors import requests_for_prescription
from nodes.demo import TOPOLOGIES, demo_system_token
from tests.exchange.flows import expiry_tasks_at, held_at, status, subscribed
from tests.processes import wait_for

VALID_ID = "24F5DA-A83008-7EFE6Z"


def api(live_server, slug: str, token: str | None = None) -> SyncFHIRClient:
    """A node's FHIR API as its outside system (or the holder of `token`) uses it."""
    return SyncFHIRClient(
        f"{live_server.url}/{slug}/fhir", authorization=f"Bearer {token or demo_system_token(slug)}"
    )


def request_body(pharmacy_ods: str, **overrides) -> dict:
    """An active MedicationRequest as an outside system writes it: no identifiers of its own."""
    body = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "39720311000001101",
                    "display": "Paracetamol 500mg soluble tablets",
                }
            ]
        },
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9449304130"}},
        "dosageInstruction": [{"text": "Two four times a day"}],
        "dispenseRequest": {
            "quantity": {"value": 28, "unit": "tablet"},
            "performer": {"identifier": {"system": ODS_SYSTEM, "value": pharmacy_ods}},
        },
    }
    return body | overrides


def dispense_body(item: str, **overrides) -> dict:
    body = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": {"text": "Paracetamol 500mg soluble tablets"},
        "authorizingPrescription": [{"identifier": {"system": ITEM_SYSTEM, "value": item}}],
        "quantity": {"value": 28, "unit": "tablet"},
    }
    return body | overrides


def supplied_at(node) -> list:
    dispenses = Resource.objects.filter(node=node, resource_type="MedicationDispense").order_by("pk")
    return [json.loads(r.text).get("quantity", {}).get("value") for r in dispenses]


def stored(node, logical_id: str) -> Resource:
    return Resource.objects.get(node=node, resource_type="MedicationRequest", logical_id=logical_id)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_an_outside_system_prescribes_at_the_gp_and_dispenses_at_the_pharmacy(
    nodes, worker, live_server, topology
):
    gp, pharmacy = nodes["gp"], nodes[f"pharmacy-{topology}"]
    if topology == "shared-record-events":
        wait_for(lambda: subscribed(nodes["broker"]), message="the subscriptions at the broker")
    gp_api, pharmacy_api = api(live_server, "gp"), api(live_server, pharmacy.slug)

    created = gp_api.resource("MedicationRequest", **request_body(pharmacy.ods_code))
    created.save()
    # The GP gave it what the route needs: a valid Prescription ID and a line-item identifier.
    assert prescription_id_problem(created["groupIdentifier"]["value"]) is None
    assert created["requester"]["identifier"]["value"] == gp.ods_code
    item = item_id(created.serialize())
    assert item

    copy = wait_for(lambda: held_at(pharmacy, stored(gp, created.id)), message="the request at the pharmacy")
    found = pharmacy_api.resources("MedicationRequest").search(identifier=f"{ITEM_SYSTEM}|{item}").fetch_all()
    assert [r.id for r in found] == [copy.logical_id]

    dispense = pharmacy_api.resource("MedicationDispense", **dispense_body(item))
    dispense.save()
    assert dispense["type"]["coding"][0]["code"] == "0001"  # fully dispensed, said by the pharmacy
    assert dispense["performer"][0]["actor"]["identifier"]["value"] == pharmacy.ods_code
    wait_for(
        lambda: gp_api.reference("MedicationRequest", created.id).to_resource()["status"] == "completed",
        message="the GP's request completed, read through its API",
    )


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_a_put_to_cancelled_cancels_along_the_route(nodes, worker, live_server, topology):
    gp, pharmacy = nodes["gp"], nodes[f"pharmacy-{topology}"]
    if topology == "shared-record-events":
        wait_for(lambda: subscribed(nodes["broker"]), message="the subscriptions at the broker")
    gp_api = api(live_server, "gp")
    created = gp_api.resource("MedicationRequest", **request_body(pharmacy.ods_code))
    created.save()
    copy = wait_for(lambda: held_at(pharmacy, stored(gp, created.id)), message="the request at the pharmacy")

    created["status"] = "cancelled"
    created["statusReason"] = {
        "coding": [
            {"system": "https://fhir.nhs.uk/CodeSystem/medicationrequest-status-reason", "code": "0005"}
        ]
    }
    created.save()
    wait_for(lambda: status(stored(gp, created.id)) == "cancelled", message="the GP's request cancelled")
    wait_for(lambda: status(copy) == "cancelled", message="the pharmacy's copy cancelled")
    reasons = json.loads(stored(gp, created.id).text)["statusReason"]["coding"]
    assert reasons[0]["code"] == "0005"


def test_requests_sharing_a_group_identifier_or_a_transaction_travel_as_one_prescription(
    nodes, worker, live_server
):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    gp_api = api(live_server, "gp")
    group = {"system": PRESCRIPTION_ID_SYSTEM, "value": VALID_ID}
    for _ in range(2):
        gp_api.resource("MedicationRequest", **request_body(pharmacy.ods_code, groupIdentifier=group)).save()
    wait_for(
        lambda: requests_for_prescription(node=pharmacy, prescription_id=VALID_ID).count() == 2,
        message="both items of the prescription at the pharmacy",
    )

    entries = [
        {
            "resource": request_body(pharmacy.ods_code),
            "request": {"method": "POST", "url": "MedicationRequest"},
        }
        for _ in range(2)
    ]
    answer = gp_api.execute(
        "", method="post", data={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    ids = [entry["response"]["location"].split("/")[1] for entry in answer["entry"]]
    groups = {json.loads(stored(gp, logical_id).text)["groupIdentifier"]["value"] for logical_id in ids}
    assert len(groups) == 1
    (pid,) = groups
    assert pid != VALID_ID
    assert prescription_id_problem(pid) is None
    wait_for(
        lambda: requests_for_prescription(node=pharmacy, prescription_id=pid).count() == 2,
        message="the transaction's two items at the pharmacy, as one prescription",
    )


def test_an_invalid_prescription_id_is_refused_and_sends_nothing(nodes, worker, live_server):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    gp_api = api(live_server, "gp")
    bad = request_body(
        pharmacy.ods_code, groupIdentifier={"system": PRESCRIPTION_ID_SYSTEM, "value": "24F5DA-A83008-7EFE6A"}
    )
    with pytest.raises(OperationOutcome) as refused:
        gp_api.resource("MedicationRequest", **bad).save()
    issue = refused.value.resource["issue"][0]
    assert issue["expression"] == ["MedicationRequest.groupIdentifier.value"]
    assert Resource.objects.filter(node=gp, resource_type="MedicationRequest").count() == 0

    good = gp_api.resource(
        "MedicationRequest",
        **request_body(
            pharmacy.ods_code, groupIdentifier={"system": PRESCRIPTION_ID_SYSTEM, "value": VALID_ID}
        ),
    )
    good.save()
    wait_for(lambda: held_at(pharmacy, stored(gp, good.id)), message="the valid request at the pharmacy")
    # The same wait let the refused one arrive, had it been sent: only the valid one went.
    assert Resource.objects.filter(node=pharmacy, resource_type="MedicationRequest").count() == 1
    assert Message.objects.filter(node=gp, kind="request.create").count() == 1


def test_a_partner_token_may_neither_prescribe_nor_dispense(nodes, worker, live_server):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    # The token the pharmacy holds for the GP (in its directory) cannot issue there.
    held = Partner.objects.get(node=pharmacy, role=Partner.Role.PRESCRIBER).token
    as_partner = api(live_server, "gp", token=held)
    with pytest.raises(ForbiddenError) as refused:  # 403, with its OperationOutcome
        as_partner.resource("MedicationRequest", **request_body(pharmacy.ods_code)).save()
    assert json.loads(str(refused.value))["issue"][0]["code"] == "forbidden"
    assert Resource.objects.filter(node=gp, resource_type="MedicationRequest").count() == 0

    created = api(live_server, "gp").resource("MedicationRequest", **request_body(pharmacy.ods_code))
    created.save()  # the positive control: the outside system's token may
    copy = wait_for(lambda: held_at(pharmacy, stored(gp, created.id)), message="the request at the pharmacy")
    item = item_id(json.loads(copy.text))
    with pytest.raises(ForbiddenError) as refused:
        api(
            live_server, pharmacy.slug, token=Partner.objects.get(node=gp, ods_code=pharmacy.ods_code).token
        ).resource("MedicationDispense", **dispense_body(item)).save()
    assert json.loads(str(refused.value))["issue"][0]["code"] == "forbidden"
    assert not Resource.objects.filter(node=pharmacy, resource_type="MedicationDispense").exists()
    api(live_server, pharmacy.slug).resource("MedicationDispense", **dispense_body(item)).save()
    assert Resource.objects.filter(node=pharmacy, resource_type="MedicationDispense").count() == 1


@pytest.mark.parametrize("topology", ["peer-to-peer", "shared-record"])
def test_part_supplies_and_an_amendment_through_the_pharmacy_api(nodes, worker, live_server, topology):
    gp, pharmacy = nodes["gp"], nodes[f"pharmacy-{topology}"]
    gp_api, pharmacy_api = api(live_server, "gp"), api(live_server, pharmacy.slug)
    created = gp_api.resource("MedicationRequest", **request_body(pharmacy.ods_code))
    created.save()
    copy = wait_for(lambda: held_at(pharmacy, stored(gp, created.id)), message="the request at the pharmacy")
    item = item_id(json.loads(copy.text))

    claim = pharmacy_api.resource("MedicationDispense", **dispense_body(item, status="in-progress"))
    claim.save()
    claim["status"], claim["quantity"] = "completed", {"value": 10, "unit": "tablet"}
    claim.save()  # the claim completed with a part supply: 10 of 28
    assert claim["type"]["coding"][0]["code"] == "0003"
    claim["quantity"] = {"value": 12, "unit": "tablet"}
    claim.save()  # amended: it was 12
    wait_for(lambda: supplied_at(gp) == [12], message="the amended part supply at the GP")
    assert status(stored(gp, created.id)) == "active"
    rest = pharmacy_api.resource(
        "MedicationDispense", **dispense_body(item, quantity={"value": 17, "unit": "tablet"})
    )
    with pytest.raises(OperationOutcome) as refused:  # 16 are owed, not 17
        rest.save()
    assert refused.value.resource["issue"][0]["expression"] == ["MedicationDispense.quantity"]
    pharmacy_api.resource(
        "MedicationDispense", **dispense_body(item, quantity={"value": 16, "unit": "tablet"})
    ).save()
    wait_for(lambda: status(stored(gp, created.id)) == "completed", message="the GP's request completed")
    assert supplied_at(gp) == [12, 16]


def test_an_expired_prescription_cannot_be_dispensed_through_the_api(nodes, worker, live_server):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    gp_api, pharmacy_api = api(live_server, "gp"), api(live_server, pharmacy.slug)
    ids = []
    for _ in range(2):
        created = gp_api.resource("MedicationRequest", **request_body(pharmacy.ods_code))
        created.save()
        ids.append(created.id)
    copies = [wait_for(lambda i=i: held_at(pharmacy, stored(gp, i)), message="at the pharmacy") for i in ids]
    pharmacy_api.resource("MedicationDispense", **dispense_body(item_id(json.loads(copies[1].text)))).save()
    wait_for(lambda: status(stored(gp, ids[1])) == "completed", message="the second one dispensed")
    expiry_tasks_at(timezone.now() + timedelta(days=190))
    wait_for(
        lambda: gp_api.reference("MedicationRequest", ids[0]).to_resource()["status"] == "stopped",
        message="the first one expired, as the GP's API shows it",
    )
    with pytest.raises(OperationOutcome) as refused:
        pharmacy_api.resource(
            "MedicationDispense", **dispense_body(item_id(json.loads(copies[0].text)))
        ).save()
    assert "expired" in refused.value.resource["issue"][0]["diagnostics"]
    assert gp_api.reference("MedicationRequest", ids[1]).to_resource()["status"] == "completed"


def test_a_conditional_create_issues_once(nodes, worker, live_server):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    gp_api = api(live_server, "gp")
    item = "6c3f8d0e-3b1e-4c55-9d0e-0a1b2c3d4e5f"
    body = request_body(pharmacy.ods_code, identifier=[{"system": ITEM_SYSTEM, "value": item}])
    first = gp_api.resource("MedicationRequest", **body)
    first.create(identifier=f"{ITEM_SYSTEM}|{item}")
    again = gp_api.resource("MedicationRequest", **body)
    again.create(identifier=f"{ITEM_SYSTEM}|{item}")  # a retry: the same request back, sent no more
    assert again.id == first.id
    wait_for(lambda: held_at(pharmacy, stored(gp, first.id)), message="the request at the pharmacy")
    assert Message.objects.filter(node=gp, kind="request.create").count() == 1
