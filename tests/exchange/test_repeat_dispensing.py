"""Electronic repeat dispensing, end to end with a real worker: the first issue goes at once, each
later one is released to the nominated pharmacy by the beat's own task 7 days before it is due
(the supply interval after the previous issue was dispensed). Time moves forward by calling that
task with a later moment, never by sleeping."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from dispensing import services as dispensing
from dispensing.selectors import prescription_page
from fhirserver.errors import FHIRError
from fhirserver.medication import ITEM_SYSTEM, based_on_item, issue_number, item_id
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from fhirserver.selectors import requests_for_prescription
from medicines.services import catalogue_demo_seed
from nodes.demo import demo_system_token
from prescribing import services as prescribing
from prescribing.repeats import repeats_release
from tests.exchange.flows import PARACETAMOL, held_at, status
from tests.processes import wait_for

FENTANYL = prescribing.Item(
    "36120011000001101", "Fentanyl 25micrograms/hour transdermal patches", 10, "patch", "One every 72 hours"
)


def repeat(issues: int = 3, days: int = 28) -> prescribing.Repeat:
    return prescribing.Repeat(
        issues=issues, interval_days=days, validity_end=timezone.now() + timedelta(days=365)
    )


def erd(nodes, pharmacy: str, items=(PARACETAMOL,), issues: int = 3) -> list[Resource]:
    return prescribing.prescription_issue(
        node=nodes["gp"],
        nhs_number="9449304130",
        items=list(items),
        pharmacy_ods=nodes[pharmacy].ods_code,
        course="erd",
        repeat=repeat(issues),
    )


def issues_at(node, pid: str) -> list[dict]:
    """The issues of a prescription a node holds, by issue number."""
    found = [json.loads(r.text) for r in requests_for_prescription(node=node, prescription_id=pid)]
    return sorted(found, key=lambda r: issue_number(r) or 0)


def dispense_latest(pharmacy, pid: str, gp) -> None:
    """The pharmacy dispenses the prescription's newest issue; the prescriber learns of it."""
    latest = issues_at(pharmacy, pid)[-1]
    copy = held_at(pharmacy, Resource.objects.get(node=gp, text__contains=item_id(latest)))
    dispensing.dispense_complete(node=pharmacy, request=copy)
    original = Resource.objects.get(
        node=gp, resource_type="MedicationRequest", text__contains=item_id(latest)
    )
    wait_for(lambda: status(original) == "completed", message=f"issue {issue_number(latest)} completed")


@pytest.mark.parametrize("topology", ["peer-to-peer", "shared-record"])
def test_three_issues_released_one_after_another_to_the_nominated_pharmacy(nodes, worker, topology):
    gp, pharmacy = nodes["gp"], nodes[f"pharmacy-{topology}"]
    (first,) = erd(nodes, pharmacy.slug)
    pid = json.loads(first.text)["groupIdentifier"]["value"]
    wait_for(lambda: held_at(pharmacy, first), message="issue 1 at the pharmacy")
    (row,) = prescription_page(node=pharmacy, prescription_id=pid).items
    assert row.issue == "Issue 1 of 3"

    now = timezone.now()
    assert repeats_release(node=gp, now=now + timedelta(days=60)) == 0  # issue 1 is not dispensed yet
    dispense_latest(pharmacy, pid, gp)
    assert repeats_release(node=gp, now=now + timedelta(days=20)) == 0  # due in 28 days: not 7 days ahead yet
    assert repeats_release(node=gp, now=now + timedelta(days=22)) == 1
    assert repeats_release(node=gp, now=now + timedelta(days=22)) == 0  # released once
    wait_for(lambda: len(issues_at(pharmacy, pid)) == 2, message="issue 2 at the pharmacy")
    second = issues_at(pharmacy, pid)[-1]
    assert (issue_number(second), second["intent"]) == (2, "instance-order")
    assert based_on_item(second) == item_id(json.loads(first.text))
    page = prescription_page(node=pharmacy, prescription_id=pid)
    assert [(i.issue, i.status, i.earlier) for i in page.items] == [
        ("Issue 1 of 3", "dispensed", True),
        ("Issue 2 of 3", "new", False),
    ]
    assert page.status == "new"

    dispense_latest(pharmacy, pid, gp)
    assert repeats_release(node=gp, now=now + timedelta(days=50)) == 1
    wait_for(lambda: len(issues_at(pharmacy, pid)) == 3, message="issue 3 at the pharmacy")
    dispense_latest(pharmacy, pid, gp)
    assert repeats_release(node=gp, now=now + timedelta(days=200)) == 0  # all three issued
    assert [issue_number(r) for r in issues_at(gp, pid)] == [1, 2, 3]


def test_cancelling_after_issue_one_cancels_the_issues_to_come(nodes, worker):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    (cancelled,) = erd(nodes, pharmacy.slug)
    (kept,) = erd(nodes, pharmacy.slug)
    pids = [json.loads(r.text)["groupIdentifier"]["value"] for r in (cancelled, kept)]
    for record, pid in zip((cancelled, kept), pids, strict=True):
        wait_for(lambda r=record: held_at(pharmacy, r), message="issue 1 at the pharmacy")
        dispense_latest(pharmacy, pid, gp)
    assert prescribing.prescription_cancel(node=gp, request=cancelled, reason_code="0003") is None
    # The same release brings the other prescription's issue 2, and nothing of the cancelled one.
    assert repeats_release(node=gp, now=timezone.now() + timedelta(days=25)) == 1
    wait_for(lambda: len(issues_at(pharmacy, pids[1])) == 2, message="the kept prescription's issue 2")
    assert len(issues_at(pharmacy, pids[0])) == 1
    assert len(issues_at(gp, pids[0])) == 1


def test_cancelling_an_active_issue_cancels_it_along_the_route_and_the_rest(nodes, worker):
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    (first,) = erd(nodes, pharmacy.slug)
    pid = json.loads(first.text)["groupIdentifier"]["value"]
    wait_for(lambda: held_at(pharmacy, first), message="issue 1 at the pharmacy")
    dispense_latest(pharmacy, pid, gp)
    assert repeats_release(node=gp, now=timezone.now() + timedelta(days=22)) == 1
    wait_for(lambda: len(issues_at(pharmacy, pid)) == 2, message="issue 2 at the pharmacy")
    second = Resource.objects.get(node=gp, text__contains=item_id(issues_at(gp, pid)[-1]))
    prescribing.prescription_cancel(node=gp, request=second)
    wait_for(lambda: status(second) == "cancelled", message="issue 2 cancelled")
    assert repeats_release(node=gp, now=timezone.now() + timedelta(days=200)) == 0


def test_a_schedule_2_drug_is_refused_for_repeat_dispensing_by_the_services_and_the_api(
    nodes, worker, live_server
):
    catalogue_demo_seed()
    gp, pharmacy = nodes["gp"], nodes["pharmacy-peer-to-peer"]
    with pytest.raises(FHIRError, match="schedule 2 controlled drug"):
        erd(nodes, pharmacy.slug, items=[FENTANYL])
    assert not Resource.objects.filter(node=gp, resource_type="MedicationRequest").exists()

    api = SyncFHIRClient(f"{live_server.url}/gp/fhir", authorization=f"Bearer {demo_system_token('gp')}")
    body = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "original-order",
        "courseOfTherapyType": {
            "coding": [
                {
                    "system": "https://fhir.nhs.uk/CodeSystem/medicationrequest-course-of-therapy",
                    "code": "continuous-repeat-dispensing",
                }
            ]
        },
        "medicationCodeableConcept": {
            "coding": [{"system": "http://snomed.info/sct", "code": FENTANYL.code}]
        },
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9449304130"}},
        "dispenseRequest": {
            "numberOfRepeatsAllowed": 2,
            "validityPeriod": {"start": "2026-12-01", "end": "2027-11-30"},
            "expectedSupplyDuration": {
                "value": 28,
                "unit": "day",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
            "quantity": {"value": 10, "unit": "patch"},
            "performer": {"identifier": {"system": ODS_SYSTEM, "value": pharmacy.ods_code}},
        },
    }
    with pytest.raises(OperationOutcome) as refused:
        api.resource("MedicationRequest", **body).save()
    assert refused.value.resource["issue"][0]["expression"] == ["MedicationRequest.courseOfTherapyType"]
    # The positive control: the same repeat dispensing request of paracetamol is issued and sent.
    body["medicationCodeableConcept"] = {
        "coding": [{"system": "http://snomed.info/sct", "code": PARACETAMOL.code}]
    }
    created = api.resource("MedicationRequest", **body)
    created.save()
    item = item_id(created.serialize())
    wait_for(
        lambda: Resource.objects.filter(node=pharmacy, text__contains=f'"{item}"').exists(),
        message="the paracetamol at the pharmacy",
    )
    assert created["identifier"][0]["system"] == ITEM_SYSTEM
    assert issue_number(created.serialize()) == 1  # stated by the GP, for the issues to come

    # Dispensed through the pharmacy's API, it is followed by issue 2, released by the beat's task.
    pharmacy_api = SyncFHIRClient(
        f"{live_server.url}/{pharmacy.slug}/fhir", authorization=f"Bearer {demo_system_token(pharmacy.slug)}"
    )
    pharmacy_api.resource(
        "MedicationDispense",
        status="completed",
        medicationCodeableConcept={"text": "Paracetamol"},
        authorizingPrescription=[{"identifier": {"system": ITEM_SYSTEM, "value": item}}],
    ).save()
    wait_for(
        lambda: api.reference("MedicationRequest", created.id).to_resource()["status"] == "completed",
        message="issue 1 completed at the GP",
    )
    assert repeats_release(node=gp, now=timezone.now() + timedelta(days=22)) == 1
    pid = created["groupIdentifier"]["value"]
    wait_for(lambda: len(issues_at(pharmacy, pid)) == 2, message="issue 2 at the pharmacy")
    assert prescription_page(node=pharmacy, prescription_id=pid).items[-1].issue == "Issue 2 of 3"
