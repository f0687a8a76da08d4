"""The prescribing workflow: issue, cancel, re-nominate, and learn of dispenses."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from exchange.expiry import holder_ask, overdue
from exchange.models import SHARED_RECORDS, Message, Partner, Topology
from exchange.notifications import notify_event
from exchange.remote import broker_for, entries, partner_for, remote_create, remote_update
from fhirserver import jsonio, medication, services
from fhirserver.errors import FHIRError
from fhirserver.medication import ITEM_SYSTEM
from fhirserver.models import Resource
from fhirserver.selectors import dispenses_for_item, request_for_item
from medicines.selectors import medicine_get
from nodes.models import Node
from prescribing.models import PrescriptionSequence

# Topologies in which the prescriber sends the request to the pharmacy itself.
PUSHED_TO_PHARMACY = {Topology.PEER_TO_PEER, Topology.DISPENSER_HOSTED}


@dataclass(frozen=True)
class Repeat:
    """Electronic repeat dispensing: how many issues, how many days apart, valid until when."""

    issues: int
    interval_days: int
    validity_end: datetime


@dataclass(frozen=True)
class Item:
    code: str
    display: str
    quantity: float
    unit: str
    dosage: str
    unit_code: str = ""
    days_supply: int | None = None


@transaction.atomic
def prescription_issue(
    *,
    node: Node,
    nhs_number: str,
    items: list[Item],
    pharmacy_ods: str | None,
    course: str = "acute",
    patient_name: str = "",
    prescriber_name: str = "",
    repeat: Repeat | None = None,
) -> list[Resource]:
    """Issue a prescription of one MedicationRequest per item and send it along its route. With
    no pharmacy, the shared record holds it until a pharmacy finds it by its token. A repeat
    dispensing one (course "erd") sends its first issue now; the later ones are released when due
    (prescribing.repeats)."""
    if not items:
        raise FHIRError(422, "required", "A prescription needs at least one item.")
    if (course == "erd") != (repeat is not None):
        raise FHIRError(422, "required", "A repeat dispensing prescription says its issues and interval.")
    group_id, long_id, now = prescription_id_new(node), str(uuid.uuid4()), timezone.now()
    contents = [
        medication.request_build(
            item_id=str(uuid.uuid4()),
            group_id=group_id,
            long_id=long_id,
            nhs_number=nhs_number,
            prescriber_ods=node.ods_code,
            pharmacy_ods=pharmacy_ods,
            code=item.code,
            display=item.display,
            quantity=item.quantity,
            unit=item.unit,
            dosage=item.dosage,
            authored_on=now,
            unit_code=item.unit_code,
            days_supply=item.days_supply,
            course=course,
            patient_name=patient_name,
            prescriber_name=prescriber_name,
        )
        for item in items
    ]
    if repeat is not None:
        contents = [
            medication.with_repeat_dispensing(
                content,
                issues=repeat.issues,
                interval_days=repeat.interval_days,
                start=now,
                end=repeat.validity_end,
            )
            for content in contents
        ]
    return [request_issue(node=node, content=content).resource for content in contents]


@transaction.atomic
def request_issue(
    *, node: Node, content: dict, if_none_exist: str | None = None, logical_id: str | None = None
) -> services.WriteResult:
    """Issue one line item, an active MedicationRequest with its identifiers, along its route:
    the one way a request is issued, from the screens, the FHIR API or a command. Its nominated
    pharmacy (dispenseRequest.performer) must be a pharmacy in the directory; with none, the
    shared record holds it for the token. A request stored already is not sent again."""
    pharmacy = _nominated(node, content)
    if pharmacy is None:
        broker_for(node=node)  # refuses (422) a prescription no pharmacy could find
    content = _with_schedule(content)
    if medication.course(content) == "erd":
        _repeat_dispensing_check(content)
        if content.get("intent") == "original-order":
            content = medication.with_issue_stated(content)
    draft = Resource.objects.filter(node=node, resource_type="MedicationRequest", logical_id=logical_id or "")
    if draft.exists():  # a draft issued (updated to active)
        result = services.resource_update(
            node=node, resource_type="MedicationRequest", logical_id=logical_id, content=content
        )
        sent = True
    else:
        result = services.resource_create(
            node=node,
            resource_type="MedicationRequest",
            content=content,
            if_none_exist=if_none_exist,
            logical_id=logical_id,
        )
        sent = result.created
    if sent:
        _send(node, pharmacy, content, kind="request.create")
    return result


def _repeat_dispensing_check(request: dict) -> None:
    """Refuse a repeat dispensing request EPS would refuse: a schedule 2 or 3 controlled drug, or
    an original without its issues allowed, supply duration or validity period."""
    schedule = medication.controlled_drug_schedule(request)
    if schedule in ("2", "3"):
        raise FHIRError(
            422,
            "business-rule",
            f"{medication.medicine_name(request) or 'This medicine'} is a schedule {schedule} controlled "
            "drug: it cannot be prescribed for repeat dispensing.",
            ["MedicationRequest.courseOfTherapyType"],
        )
    if request.get("intent") != "original-order":
        return
    dispense_request = request.get("dispenseRequest", {})
    for name, wanted in (
        ("numberOfRepeatsAllowed", isinstance(dispense_request.get("numberOfRepeatsAllowed"), int)),
        ("expectedSupplyDuration", medication.supply_interval(request) is not None),
        ("validityPeriod", bool(dispense_request.get("validityPeriod", {}).get("end"))),
    ):
        if not wanted:
            raise FHIRError(
                422,
                "required",
                f"A repeat dispensing prescription needs dispenseRequest.{name}.",
                [f"MedicationRequest.dispenseRequest.{name}"],
            )


def _with_schedule(request: dict) -> dict:
    """Return the request stating its controlled-drug schedule where the catalogue has one (the
    rules of expiry and repeat dispensing follow it wherever the request goes)."""
    if medication.controlled_drug_schedule(request):
        return request
    codes = [c.get("code", "") for c in request.get("medicationCodeableConcept", {}).get("coding", [])]
    medicine = next((found for code in codes if code and (found := medicine_get(code=code))), None)
    if medicine is None or not medicine.controlled_drug_schedule:
        return request
    return medication.with_controlled_drug(request, medicine.controlled_drug_schedule)


def prescription_id_new(node: Node) -> str:
    """Return the next Prescription ID of this prescribing node."""
    return medication.prescription_id(ods_code=node.ods_code, sequence=_next_sequence(node))


@transaction.atomic
def prescription_cancel(*, node: Node, request: Resource, reason_code: str = "0001") -> Message | None:
    """Cancel along the prescription's route. Where another system holds the request, this one
    is cancelled when that system accepts; a refusal (say, already dispensed) is recorded on the
    request with the holder's reason (EPS status history, R-codes)."""
    content = jsonio.loads(request.text)
    erd = medication.course(content) == "erd"
    if erd:  # cancelling any issue of a repeat dispensing prescription cancels the issues to come
        _authorisation_end(node, content)
        request.refresh_from_db()  # the original itself may have changed
        content = jsonio.loads(request.text)
        if content["status"] == "completed":  # dispensed: only the issues to come are cancelled
            return None
    if content["status"] != "active":
        raise FHIRError(
            409,
            "business-rule",
            f"Only an active prescription can be cancelled; this one is {content['status']}.",
        )
    asked = Message.objects.filter(
        node=node,
        status=Message.Status.PENDING,
        kind__in=("request.cancel.fetch", "request.cancel"),
        context__request=request.logical_id,
    ).first()
    if asked is not None:  # asked already (a second click): the holder's answer is awaited
        return asked
    pharmacy = _nominated(node, content)
    if _topology(pharmacy) == Topology.PRESCRIBER_HOSTED:  # this node holds the record
        _cancel_here(node, request, reason_code)
        return _notify_request(node, pharmacy, content)
    holder = broker_for(node=node) if _topology(pharmacy) in SHARED_RECORDS else pharmacy
    cancelled = medication.cancelled(content, reason_code)
    return remote_update(
        node=node,
        partner=holder,
        key=medication.group_id(content),
        resource_type="MedicationRequest",
        identifier=(ITEM_SYSTEM, medication.item_id(content)),
        changes={"status": cancelled["status"], "statusReason": cancelled["statusReason"]},
        kind="request.cancel",
        then="prescribing.services.cancellation_accepted",
        otherwise="prescribing.services.cancellation_refused",
        context={"request": request.logical_id, "reason": reason_code},
    )


def _authorisation_end(node: Node, request: dict) -> None:
    """End a repeat dispensing prescription's authorisation now (on its original): no issue is
    released after it."""
    original = request_for_item(node=node, item=medication.original_item(request))
    if original is None:
        return
    content = jsonio.loads(original.text)
    ends = medication.authorisation_ends(content)
    now = timezone.now()
    if ends is None or ends > now:
        _save(node, original, medication.with_authorisation_ended(content, now))


def cancellation_accepted(*, message: Message, answer) -> None:
    """The holder accepted the cancellation: cancel the request here too (and tell the pharmacy)."""
    record = _request(message.node, message.context["request"])
    content = _cancel_here(message.node, record, message.context["reason"])
    pharmacy = _nominated(message.node, content)
    if pharmacy is not None and pharmacy.topology == Topology.SHARED_RECORD:
        _notify_request(message.node, pharmacy, content)


def cancellation_refused(*, message: Message, error: str, dead: bool) -> None:
    """The holder refused the cancellation: record its reason on the request, which stays as it is.
    A cancellation that never got an answer is not a refusal: its message shows as not delivered."""
    if not dead:
        return  # not refused yet: the holder is out of reach, and the outbox tries again
    found = re.search(r"R-\d{4}", error)
    code = found.group() if found else ("R-0008" if "has no resource" in error else "")
    if not code:
        return
    record = _request(message.node, message.context["request"])
    content = medication.with_status_history(jsonio.loads(record.text), code=code, when=timezone.now())
    _save(message.node, record, content)


def _cancel_here(node: Node, record: Resource, reason_code: str) -> dict:
    current = jsonio.loads(record.text)
    if current["status"] == "cancelled":  # a second acceptance (the cancel sent twice) changes nothing
        return current
    content = medication.cancelled(current, reason_code)
    content = medication.with_status_history(content, code="R-0001", when=timezone.now())
    _save(node, record, content)
    return content


@transaction.atomic
def prescription_renominate(*, node: Node, request: Resource, pharmacy_ods: str) -> Resource:
    """Send a prescription its pharmacy returned (declined) to another pharmacy. The shared
    record follows: it holds the request for a pharmacy that reads it there, and the request is
    withdrawn from it (stopped) when it moves to one that does not."""
    content = jsonio.loads(request.text)
    if medication.is_expired(content):
        raise FHIRError(409, "business-rule", "This prescription has expired; it cannot be re-nominated.")
    if content["status"] != "active" or not medication.returned(content):
        raise FHIRError(
            409, "business-rule", "Only a prescription its pharmacy has returned can be re-nominated."
        )
    pharmacy = _pharmacy(node, pharmacy_ods)
    if _declined_by(node, content, pharmacy_ods):
        raise FHIRError(409, "business-rule", f"{pharmacy.name} has declined this prescription already.")
    previous = _nominated(node, content)
    updated = medication.renominated(content, pharmacy_ods)
    record = _save(node, request, updated)
    shared = {
        "node": node,
        "partner": broker_for(node=node)
        if SHARED_RECORDS & {pharmacy.topology, _topology(previous)}
        else None,
        "key": medication.group_id(content),
        "resource_type": "MedicationRequest",
        "identifier": (ITEM_SYSTEM, medication.item_id(content)),
        "kind": "request.renominate",
    }
    if pharmacy.topology in SHARED_RECORDS:  # then a shared-record pharmacy is told (the token)
        tell = pharmacy.topology == Topology.SHARED_RECORD
        remote_update(
            **shared,
            changes={k: v for k, v in updated.items() if k not in ("id", "meta")},
            create_missing=True,
            then="exchange.notifications.notify_after" if tell else "",
            context={"notify": _request_event(pharmacy, updated)},
        )
        return record
    _send(node, pharmacy, updated, kind="request.renominate")
    if _topology(previous) in SHARED_RECORDS:
        remote_update(**shared, changes={"status": "stopped", "dispenseRequest": updated["dispenseRequest"]})
    return record


def _declined_by(node: Node, request: dict, pharmacy_ods: str) -> bool:
    params = [("status", "declined"), ("performer:identifier", f"{medication.ODS_SYSTEM}|{pharmacy_ods}")]
    return dispenses_for_item(node=node, item=medication.item_id(request), params=params).exists()


def _send(node: Node, pharmacy: Partner | None, content: dict, *, kind: str) -> None:
    """Make the request known along the pharmacy's route (DESIGN.md, the five topologies)."""
    key, identifier = medication.group_id(content), (ITEM_SYSTEM, medication.item_id(content))
    if pharmacy is None:  # no nomination: the shared record holds it for whoever has the token
        broker = broker_for(node=node)
        remote_create(node=node, partner=broker, key=key, content=content, identifier=identifier, kind=kind)
    elif pharmacy.topology in PUSHED_TO_PHARMACY:
        remote_create(node=node, partner=pharmacy, key=key, content=content, identifier=identifier, kind=kind)
    elif pharmacy.topology == Topology.PRESCRIBER_HOSTED:
        _notify_request(node, pharmacy, content)
    elif pharmacy.topology in SHARED_RECORDS:
        broker = broker_for(node=node)
        remote_create(node=node, partner=broker, key=key, content=content, identifier=identifier, kind=kind)
        if pharmacy.topology == Topology.SHARED_RECORD:  # with events, the broker tells the pharmacy
            _notify_request(node, pharmacy, content)  # the electronic token, after the broker has it
    else:
        raise FHIRError(501, "not-supported", f"The {pharmacy.topology} topology is not built yet.")


def _notify_request(node: Node, pharmacy: Partner, content: dict) -> Message:
    return notify_event(node=node, key=medication.group_id(content), event=_request_event(pharmacy, content))


def _request_event(pharmacy: Partner, content: dict) -> dict:
    """The notification telling a pharmacy about a request, as notify_after keeps it."""
    return {
        "partner": pharmacy.pk,
        "event": "medication-request",
        "focus_type": "MedicationRequest",
        "focus": [ITEM_SYSTEM, medication.item_id(content)],
    }


def _request(node: Node, logical_id: str) -> Resource:
    return Resource.objects.get(node=node, resource_type="MedicationRequest", logical_id=logical_id)


def _save(node: Node, record: Resource, content: dict) -> Resource:
    return services.resource_update(
        node=node, resource_type="MedicationRequest", logical_id=record.logical_id, content=content
    ).resource


def _nominated(node: Node, request: dict) -> Partner | None:
    """Return the request's nominated pharmacy, or None for a prescription with none."""
    ods_code = medication.nominated_ods(request)
    if not ods_code:
        return None
    try:
        return _pharmacy(node, ods_code)
    except FHIRError as exc:
        raise FHIRError(
            exc.status, "business-rule", str(exc), ["MedicationRequest.dispenseRequest.performer"]
        ) from exc


def _topology(pharmacy: Partner | None) -> str:
    """A prescription with no nominated pharmacy travels by the shared record (its token)."""
    return pharmacy.topology if pharmacy is not None else Topology.SHARED_RECORD


def _pharmacy(node: Node, ods_code: str) -> Partner:
    partner = partner_for(node=node, ods_code=ods_code)
    if partner.role != Partner.Role.PHARMACY:
        raise FHIRError(422, "business-rule", f"{partner.name} is not a pharmacy.")
    return partner


def _next_sequence(node: Node) -> int:
    PrescriptionSequence.objects.get_or_create(node=node)
    PrescriptionSequence.objects.filter(node=node).update(last=F("last") + 1)
    return PrescriptionSequence.objects.get(node=node).last


# Learning of dispenses: pushed to this node's FHIR API, or polled from a dispenser-hosted pharmacy.


def dispense_learnt(*, node: Node, dispense: dict) -> None:
    """A dispense reached this prescriber (a supply, a return, or an amended supply). The request
    is completed when the pharmacy's supplies together are all that was prescribed, or the item is
    finally not dispensed; a part supply leaves it active, owed. A cancellation the pharmacy had
    not yet learnt of did not take (R-0004). Declined by the nominated pharmacy with nothing
    supplied: the request stays active, marked returned, to be re-nominated."""
    request = request_for_item(node=node, item=medication.prescribed_item(dispense))
    if request is None or dispense.get("status") not in ("completed", "declined"):
        return
    content = jsonio.loads(request.text)
    pharmacy_ods = medication.performer_ods(dispense)
    theirs = [
        jsonio.loads(d.text)
        for d in dispenses_for_item(node=node, item=medication.item_id(content))
        if medication.performer_ods(jsonio.loads(d.text)) == pharmacy_ods
    ]
    supply = medication.item_supply(content, theirs)
    if supply.status == medication.ITEM_EXPIRED:  # the pharmacy holding the record expired it
        _expire_here(node, request, timezone.now())
        return
    if supply.status == medication.ITEM_NOT_DISPENSED and not supply.supplied:
        if content["status"] == "active" and pharmacy_ods == medication.nominated_ods(content):
            _save(node, request, medication.marked_returned(content, True))
        return
    if content["status"] == "completed" and not supply.done:  # an amended supply: the rest is owed again
        _completion_shared(node, _save(node, request, {**content, "status": "active"}), "active")
        return
    if not supply.done or content["status"] not in ("active", "cancelled"):
        return
    if content["status"] == "cancelled":
        content = medication.with_status_history(content, code="R-0004", when=timezone.now())
    record = _save(node, request, {**medication.marked_returned(content, False), "status": "completed"})
    _completion_shared(node, record, "completed")


def _completion_shared(node: Node, record: Resource, status: str) -> None:
    """In the shared record, its copy of the request follows this one (completed, or owed again)."""
    content = jsonio.loads(record.text)
    nominated = medication.nominated_ods(content)
    pharmacy = Partner.objects.filter(node=node, ods_code=nominated).first() if nominated else None
    if not nominated or (pharmacy is not None and pharmacy.topology in SHARED_RECORDS):
        remote_update(
            node=node,
            partner=broker_for(node=node),
            key=medication.group_id(content),
            resource_type="MedicationRequest",
            identifier=(ITEM_SYSTEM, medication.item_id(content)),
            changes={"status": status},
            kind="request.complete" if status == "completed" else "request.reopen",
        )


# Expiry: where this prescriber holds the record (prescriber-hosted) it decides, and tells the
# pharmacy as it tells a cancellation; elsewhere it asks the holder once the request is due to expire.


def expiries_apply(*, node: Node, now=None) -> int:
    """Expire, or ask about, this prescriber's active requests past their expiry; return how many."""
    now = now or timezone.now()
    count = 0
    for record, content in overdue(node=node, now=now):
        pharmacy = _nominated(node, content)
        topology = _topology(pharmacy)
        if topology == Topology.PRESCRIBER_HOSTED:
            theirs = [
                jsonio.loads(d.text)
                for d in dispenses_for_item(node=node, item=medication.item_id(content))
                if medication.performer_ods(jsonio.loads(d.text)) == pharmacy.ods_code
            ]
            if medication.item_supply(content, theirs).status == medication.FULLY_DISPENSED:
                continue
            with transaction.atomic():
                _notify_request(node, pharmacy, _expire_here(node, record, now))
            count += 1
        else:  # the shared record, or the pharmacy the request was sent to, holds it
            holder = broker_for(node=node) if topology in SHARED_RECORDS else pharmacy
            count += bool(
                holder_ask(
                    node=node,
                    holder=holder,
                    request=content,
                    on_success="prescribing.services.holder_answered",
                    now=now,
                )
            )
    return count


def holder_answered(*, message: Message, answer) -> None:
    """The holder's copy of a request due to expire: follow it if it expired."""
    for resource in entries(answer.body):
        record = request_for_item(node=message.node, item=medication.item_id(resource))
        if record is not None and medication.is_expired(resource):
            _expire_here(message.node, record, timezone.now())


def _expire_here(node: Node, record: Resource, when) -> dict:
    current = jsonio.loads(record.text)
    if current["status"] != "active":  # expired already, or completed or cancelled meanwhile
        return current
    content = medication.expired(current, when)
    _save(node, record, content)
    return content
