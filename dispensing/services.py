"""The dispensing workflow: the worklist, finding a prescription by its token, starting,
dispensing and returning it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from exchange import http
from exchange.models import SHARED_RECORDS, Partner, Topology
from exchange.notifications import notify_event
from exchange.remote import broker_for, partner_for, remote_create, remote_update
from exchange.services import attempt_log, partner_headers
from fhirserver import jsonio, medication, services
from fhirserver.errors import FHIRError
from fhirserver.medication import DISPENSE_SYSTEM
from fhirserver.models import Resource
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item, requests_for_prescription
from nodes.models import Node

# Topologies in which the pharmacy sends its dispense to the prescriber.
PUSHED_TO_PRESCRIBER = {Topology.PEER_TO_PEER, Topology.PRESCRIBER_HOSTED}
# Why an item is not dispensed (https://fhir.nhs.uk/CodeSystem/medicationdispense-status-reason), as
# EPS's own test tool lists them (NHSDigital/electronic-prescription-service-api,
# packages/tool/site/client/src/fhir/reference-data/valueSets.ts).
NOT_DISPENSED_REASONS = {
    "0001": "Not required as instructed by the patient",
    "0002": "Clinically unsuitable",
    "0003": "Owings note issued to patient",
    "0004": "Prescription cancellation",
    "0005": "Prescription cancellation due to death",
    "0006": "Illegal NHS prescription",
    "0007": "Prescribed out of scope item",
    "0008": "Item or prescription expired",
    "0009": "Not allowed on FP10",
    "0010": "Patient did not collect medication",
    "0011": "Patient purchased medication over the counter",
}
# The dispense statuses shared with the prescriber: a supply (or owing), or a return.
CLOSED = ("completed", "declined")


def worklist(*, node: Node) -> QuerySet[Resource]:
    """Return the active requests this pharmacy has still to dispense or finish (owed), oldest first."""
    requests = matching(
        node=node, resource_type="MedicationRequest", params=[("status", "active")], strict=True
    )
    todo = [record.pk for record in requests if not item_supply_here(node=node, request=record).done]
    return requests.filter(pk__in=todo).order_by("pk")


def dispenses_for(*, node: Node, request: Resource) -> QuerySet[Resource]:
    """Return the dispenses this node holds for a request."""
    return dispenses_for_item(node=node, item=medication.item_id(jsonio.loads(request.text)))


def item_supply_here(*, node: Node, request: Resource) -> medication.Supply:
    """Return what this pharmacy has supplied of an item, and its line status."""
    return medication.item_supply(
        jsonio.loads(request.text), [jsonio.loads(d.text) for d in _mine(node, request)]
    )


# One item: start (EPS With Dispenser), supply all or part, owe, amend, decline (returned).


def dispense_start(*, node: Node, request: Resource, dispense_id: str | None = None) -> Resource:
    """Start dispensing an item: a MedicationDispense in progress (EPS With Dispenser, line item
    0008; a polling prescriber sees it). Starting again an item this pharmacy has started, or
    supplied in part, returns its latest dispense."""
    _claim(node, request, jsonio.loads(request.text))  # refuses what cannot be dispensed
    mine = _mine(node, request)
    return mine[-1] if mine else _dispense(node, request, status="in-progress", dispense_id=dispense_id)


def dispense_complete(
    *,
    node: Node,
    request: Resource,
    days_supply: int | None = None,
    quantity: Decimal | float | None = None,
    note: str = "",
    dispense_id: str | None = None,
) -> Resource:
    """Hand the medicine over: all that is still owed (the default), or part of it (line status
    0003, the rest owed for a later supply), with an optional note; shared along the route."""
    supplied = _supplied(item_supply_here(node=node, request=request), quantity)
    return _dispense(
        node,
        request,
        status="completed",
        dispense_id=dispense_id,
        days_supply=days_supply,
        quantity=supplied,
        note=note.strip(),
    )


def dispense_owing(
    *, node: Node, request: Resource, note: str = "", dispense_id: str | None = None
) -> Resource:
    """Supply nothing now and owe it all (line status 0004): an owing slip for the patient."""
    if item_supply_here(node=node, request=request).supplied:
        raise FHIRError(
            409, "business-rule", "Part of this item has been supplied; supply the rest, or return it."
        )
    return _dispense(
        node, request, status="completed", dispense_id=dispense_id, quantity=0, note=note.strip()
    )


def dispense_amend(*, node: Node, request: Resource, quantity: Decimal | float, note: str = "") -> Resource:
    """Correct the quantity of this pharmacy's last supply of an item (a wrong quantity keyed): a
    new version of that dispense, sent along the route as the first one was."""
    with transaction.atomic():
        request = Resource.objects.select_for_update().get(pk=request.pk)
        content = jsonio.loads(request.text)
        if content["status"] not in ("active", "completed"):
            raise FHIRError(
                409, "business-rule", f"This prescription is {content['status']}; it cannot be amended."
            )
        supplies = _supplies(node, request)
        if not supplies:
            raise FHIRError(
                409, "business-rule", "Nothing has been supplied of this item, so there is nothing to amend."
            )
        last, prior = supplies[-1], [jsonio.loads(d.text) for d in supplies[:-1]]
        supply = medication.item_supply(content, prior)
        amended = {**jsonio.loads(last.text), "quantity": {**medication.prescribed_quantity(content)}}
        amended["quantity"]["value"] = _supplied(supply, quantity)
        if note.strip():
            amended["note"] = [{"text": note.strip()}]
        amended = _with_statuses(node, content, amended, prior)
        record = services.resource_update(
            node=node, resource_type="MedicationDispense", logical_id=last.logical_id, content=amended
        ).resource
        _share(node, _prescriber(node, content), content, amended, claimed=True, amended=True)
        return record


def last_supply(*, node: Node, request: Resource) -> Resource | None:
    """Return this pharmacy's last supply of an item (the one an amendment corrects), if any."""
    supplies = _supplies(node, request)
    return supplies[-1] if supplies else None


def _supplies(node: Node, request: Resource) -> list[Resource]:
    return [d for d in _mine(node, request) if jsonio.loads(d.text)["status"] == "completed"]


def dispense_decline(
    *, node: Node, request: Resource, reason_code: str = "0002", dispense_id: str | None = None
) -> Resource:
    """Decline the request for an EPS not-dispensed reason (returned to the prescriber, who may
    send it elsewhere); an item supplied in part is closed, the rest not dispensed."""
    if reason_code not in NOT_DISPENSED_REASONS:
        raise FHIRError(
            422,
            "code-invalid",
            "Choose why the item is not dispensed.",
            ["MedicationDispense.statusReasonCodeableConcept"],
        )
    return _dispense(node, request, status="declined", dispense_id=dispense_id, reason_code=reason_code)


def dispense_expire(*, node: Node, request: Resource, now: datetime) -> Resource | None:
    """Expire an item whose record this pharmacy holds (peer-to-peer, dispenser-hosted) and that
    was not dispensed in time: the request stopped (EPS 0004 Expired in its status history), the
    rest not dispensed (line item 0006, reason 0008), told to the prescriber as a return is.
    None when it was dispensed in full meanwhile, or is not active."""
    with transaction.atomic():
        request = Resource.objects.select_for_update().get(pk=request.pk)
        content = jsonio.loads(request.text)
        mine = _mine(node, request)
        if content["status"] != "active" or medication.item_supply(content, _contents(mine)).done:
            return None
        services.resource_update(
            node=node,
            resource_type="MedicationRequest",
            logical_id=request.logical_id,
            content=medication.expired(content, now),
        )
        claim = next((d for d in mine if jsonio.loads(d.text)["status"] == "in-progress"), None)
        prior = [jsonio.loads(d.text) for d in mine if claim is None or d.pk != claim.pk]
        dispense = medication.dispense_build(
            request=content,
            dispense_id=str(uuid.uuid4()),
            status="declined",
            pharmacy_ods=node.ods_code,
            when=now,
            reason_code=medication.EXPIRED_REASON,
        )
        dispense = medication.with_line_status(dispense, medication.ITEM_EXPIRED)
        dispense = _with_statuses(node, content, dispense, prior)
        if claim is not None:
            previous = jsonio.loads(claim.text)
            dispense = {**dispense, "identifier": previous["identifier"]}
            record = services.resource_update(
                node=node, resource_type="MedicationDispense", logical_id=claim.logical_id, content=dispense
            ).resource
        else:
            record = services.resource_create(
                node=node, resource_type="MedicationDispense", content=dispense
            ).resource
        _share(node, _prescriber(node, content), content, dispense, claimed=claim is not None)
        return record


def _contents(records: list[Resource]) -> list[dict]:
    return [jsonio.loads(record.text) for record in records]


# A whole prescription (its line items), as the pharmacist's screens act on it.


def prescription_requests(*, node: Node, prescription_id: str) -> list[Resource]:
    """Return this pharmacy's requests of a prescription; 404 when it holds none."""
    records = list(requests_for_prescription(node=node, prescription_id=prescription_id))
    if not records:
        raise FHIRError(404, "not-found", f"This pharmacy holds no prescription {prescription_id}.")
    return records


def prescription_start(*, node: Node, prescription_id: str) -> list[Resource]:
    """Start dispensing every active item of a prescription not yet dispensed or returned here;
    refuse when there is none. Each item's start is whole (at the broker first in the shared
    record): a refusal leaves that item as it was."""
    records = prescription_requests(node=node, prescription_id=prescription_id)
    open_items = [record for record in records if _open(node, record)]
    if not open_items:
        raise FHIRError(409, "business-rule", _nothing_open(records, "started"))
    return [dispense_start(node=node, request=record) for record in open_items]


def prescription_return(*, node: Node, prescription_id: str, reason_code: str) -> list[Resource]:
    """Return (decline) every item of a prescription still open here, for one EPS reason."""
    if reason_code not in NOT_DISPENSED_REASONS:
        raise FHIRError(
            422,
            "code-invalid",
            "Choose why the prescription is not dispensed.",
            ["MedicationDispense.statusReasonCodeableConcept"],
        )
    records = prescription_requests(node=node, prescription_id=prescription_id)
    open_items = [record for record in records if _open(node, record)]
    if not open_items:
        raise FHIRError(409, "business-rule", _nothing_open(records, "returned"))
    return [dispense_decline(node=node, request=record, reason_code=reason_code) for record in open_items]


def _open(node: Node, record: Resource) -> bool:
    """True for an active item this pharmacy has not finished (dispensed in full, or returned)."""
    if jsonio.loads(record.text).get("status") != "active":
        return False
    return not item_supply_here(node=node, request=record).done


def _nothing_open(records: list[Resource], done: str) -> str:
    statuses = {jsonio.loads(record.text).get("status") for record in records}
    if statuses == {"cancelled"}:
        return "The prescriber has cancelled this prescription; it cannot be dispensed."
    return f"Nothing on this prescription can be {done}: every item is dispensed, returned or closed."


def _mine(node: Node, record: Resource) -> list[Resource]:
    """This pharmacy's own dispenses for a request, oldest first (a copy may travel with others')."""
    return [
        d
        for d in dispenses_for(node=node, request=record).order_by("pk")
        if medication.performer_ods(jsonio.loads(d.text)) == node.ods_code
    ]


def _supplied(supply: medication.Supply, quantity: Decimal | float | None) -> int | float:
    """Check a quantity to supply against what is owed; return it as JSON takes it (all that is
    owed when none is given)."""
    owing = supply.owing if supply.owing is not None else supply.prescribed
    if quantity is None:
        if owing is None:
            raise FHIRError(422, "required", "Give the quantity supplied.", ["MedicationDispense.quantity"])
        return medication.json_number(owing)
    quantity = Decimal(str(quantity))
    if not quantity > 0:
        raise FHIRError(
            422, "invalid", "The quantity supplied must be more than 0.", ["MedicationDispense.quantity"]
        )
    if owing is not None and quantity > owing:
        limit = "prescribed" if not supply.supplied else "still owed"
        raise FHIRError(
            422,
            "invalid",
            f"The quantity supplied cannot be more than {limit} ({supply.text(owing)}).",
            ["MedicationDispense.quantity"],
        )
    return medication.json_number(quantity)


# Recording a dispense here and sharing it along the route.


def _dispense(
    node: Node, request: Resource, *, status: str, dispense_id: str | None = None, **details
) -> Resource:
    """Record a dispense here. In the shared record, a dispense that is not the completion of this
    pharmacy's claim is made at the broker first, while the pharmacist waits and outside any
    transaction here: the broker refuses a claim on an item another pharmacy holds (409) or that
    was cancelled (422), and the pharmacist must know at once."""
    content = jsonio.loads(request.text)
    dispense_id = dispense_id or str(uuid.uuid4())
    if _prescriber(node, content).topology in SHARED_RECORDS and _claim(node, request, content) is None:
        prior = [jsonio.loads(d.text) for d in _mine(node, request)]
        dispense = _build(node, content, prior, dispense_id=dispense_id, status=status, **details)
        claim_at_broker(node=node, broker=broker_for(node=node), dispense=dispense)
    with transaction.atomic():
        return _record(node, request, status=status, dispense_id=dispense_id, **details)


def _claim(node: Node, request: Resource, content: dict) -> Resource | None:
    """Refuse an item that is not active or that this pharmacy has finished; return its claim (the
    dispense in progress a supply or a return completes), if it has one."""
    if content["status"] != "active":
        said = "expired" if medication.is_expired(content) else content["status"]
        raise FHIRError(409, "business-rule", f"This prescription is {said}; it cannot be dispensed.")
    mine = _mine(node, request)
    supply = medication.item_supply(content, [jsonio.loads(d.text) for d in mine])
    if supply.done:
        done = "dispensed" if supply.status == medication.FULLY_DISPENSED else "returned"
        raise FHIRError(409, "business-rule", f"This prescription item has been {done} already.")
    return next((d for d in mine if jsonio.loads(d.text)["status"] == "in-progress"), None)


def _build(node: Node, request: dict, prior: list[dict], *, dispense_id: str, status: str, **details) -> dict:
    """Return the MedicationDispense for a request, with the quantity supplied this time and a note,
    after the `prior` dispenses of this pharmacy."""
    quantity, note = details.pop("quantity", None), details.pop("note", "")
    dispense = medication.dispense_build(
        request=request,
        dispense_id=dispense_id,
        status=status,
        pharmacy_ods=node.ods_code,
        when=timezone.now(),
        **details,
    )
    # dispense_build supplies what was prescribed; the pharmacist may have supplied less.
    if status == "completed" and quantity is not None:
        dispense["quantity"] = {**dispense["quantity"], "value": quantity}
    if note:
        dispense["note"] = [{"text": note}]
    return _with_statuses(node, request, dispense, prior) if status in CLOSED else dispense


def _with_statuses(node: Node, request: dict, dispense: dict, prior: list[dict]) -> dict:
    """Return the dispense stating its item's line status after it, and its prescription's
    business status (EPS dispense notification: 0003 while anything is owed)."""
    # The new supply's line status follows from the quantities, not from what dispense_build says.
    supply = medication.item_supply(request, [*prior, {k: v for k, v in dispense.items() if k != "type"}])
    if dispense["status"] == "completed":
        dispense = medication.with_line_status(dispense, supply.status)
    item = medication.item_id(request)
    siblings = requests_for_prescription(node=node, prescription_id=medication.group_id(request))
    supplies = [supply] + [
        item_supply_here(node=node, request=sibling)
        for sibling in siblings
        if medication.item_id(jsonio.loads(sibling.text)) != item
        and jsonio.loads(sibling.text)["status"] in ("active", "completed")
    ]
    return medication.with_business_status(dispense, medication.prescription_business_status(supplies))


def _record(node: Node, request: Resource, *, status: str, dispense_id: str, **details) -> Resource:
    request = Resource.objects.select_for_update().get(pk=request.pk)
    content = jsonio.loads(request.text)
    claim = _claim(node, request, content)
    prior = [jsonio.loads(d.text) for d in _mine(node, request) if claim is None or d.pk != claim.pk]
    dispense = _build(node, content, prior, dispense_id=dispense_id, status=status, **details)
    if claim is not None:  # the claim becomes the supply (or the return), keeping its identifier
        previous = jsonio.loads(claim.text)
        dispense = {**dispense, "id": previous["id"], "identifier": previous["identifier"]}
        record = services.resource_update(
            node=node, resource_type="MedicationDispense", logical_id=previous["id"], content=dispense
        ).resource
    else:
        record = services.resource_create(
            node=node, resource_type="MedicationDispense", content=dispense
        ).resource
    if status in CLOSED:
        _share(node, _prescriber(node, content), content, dispense, claimed=claim is not None)
    return record


def _prescriber(node: Node, request: dict) -> Partner:
    prescriber = partner_for(node=node, ods_code=medication.requester_ods(request))
    if prescriber.role != Partner.Role.PRESCRIBER:
        raise FHIRError(422, "business-rule", f"{prescriber.name} is not a prescriber.")
    return prescriber


def _share(
    node: Node, prescriber: Partner, request: dict, dispense: dict, *, claimed: bool, amended: bool = False
) -> None:
    """Let the prescriber learn of a supply, a return or an amended supply, as its topology says."""
    clean = {k: v for k, v in dispense.items() if k not in ("id", "meta")}
    key, identifier = medication.group_id(request), (DISPENSE_SYSTEM, dispense["identifier"][0]["value"])
    kind = "dispense.amend" if amended else f"dispense.{dispense['status']}"
    if prescriber.topology == Topology.DISPENSER_HOSTED:
        return  # the prescriber polls this pharmacy
    if prescriber.topology in PUSHED_TO_PRESCRIBER and amended:  # the whole dispense, replaced
        remote_update(
            node=node,
            partner=prescriber,
            key=key,
            resource_type="MedicationDispense",
            identifier=identifier,
            changes=clean,
            create_missing=True,
            kind=kind,
        )
    elif prescriber.topology in PUSHED_TO_PRESCRIBER:
        remote_create(node=node, partner=prescriber, key=key, content=clean, identifier=identifier, kind=kind)
    elif prescriber.topology in SHARED_RECORDS:
        # The shared record takes the dispense, then the prescriber is told (by the broker's
        # subscription, with events; by this pharmacy, without).
        broker, tell = broker_for(node=node), prescriber.topology == Topology.SHARED_RECORD
        event = {
            "partner": prescriber.pk,
            "event": "medication-dispense",
            "focus_type": "MedicationDispense",
            "focus": list(identifier),
        }
        if claimed:  # update the claim at the broker
            changes = {k: v for k, v in clean.items() if k not in ("identifier", "resourceType")}
            remote_update(
                node=node,
                partner=broker,
                key=key,
                resource_type="MedicationDispense",
                identifier=identifier,
                changes=changes,
                kind=kind,
                then="exchange.notifications.notify_after" if tell else "",
                context={"notify": event},
            )
        elif tell:  # the broker took the dispense while the pharmacist waited (_dispense)
            notify_event(node=node, key=key, event=event)
    else:
        raise FHIRError(501, "not-supported", f"The {prescriber.topology} topology is not built yet.")


def claim_at_broker(*, node: Node, broker: Partner, dispense: dict) -> None:
    """POST the claim to the shared record now; refuse here what the broker refuses."""
    clean = {k: v for k, v in dispense.items() if k not in ("id", "meta")}
    identifier = dispense["identifier"][0]
    headers = partner_headers(
        broker, {"If-None-Exist": f"identifier={identifier['system']}|{identifier['value']}"}
    )
    url = f"{broker.fhir_base}/MedicationDispense"
    answer = http.send("POST", url, headers=headers, body=jsonio.dumps(clean))
    attempt_log(node_id=node.pk, method="POST", url=url, answer=answer)
    if answer.ok:
        return
    if answer.status in (409, 422):
        raise FHIRError(
            answer.status,
            "conflict" if answer.status == 409 else "business-rule",
            http.outcome_diagnostics(answer.body) or "The shared record refused the claim.",
        )
    raise FHIRError(
        503,
        "transient",
        f"The broker could not take the claim now ({answer.status or answer.error}); try again.",
    )
