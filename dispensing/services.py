"""The dispensing workflow: the worklist, claim, complete and decline."""

from __future__ import annotations

import uuid

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
from fhirserver.medication import DISPENSE_SYSTEM, ITEM_SYSTEM
from fhirserver.models import Resource
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item
from nodes.models import Node

# Topologies in which the pharmacy sends its dispense to the prescriber.
PUSHED_TO_PRESCRIBER = {Topology.PEER_TO_PEER, Topology.PRESCRIBER_HOSTED}


def worklist(*, node: Node) -> QuerySet[Resource]:
    """Return the active requests this pharmacy holds and has not declined, oldest first."""
    requests = matching(
        node=node, resource_type="MedicationRequest", params=[("status", "active")], strict=True
    )
    declined = matching(
        node=node, resource_type="MedicationDispense", params=[("status", "declined")], strict=True
    )
    items = sorted({medication.prescribed_item(jsonio.loads(d.text)) for d in declined})
    if items:
        tokens = ",".join(f"{ITEM_SYSTEM}|{item}" for item in items)
        returned = matching(
            node=node, resource_type="MedicationRequest", params=[("identifier", tokens)], strict=True
        )
        requests = requests.exclude(pk__in=returned.values("pk"))
    return requests.order_by("pk")


def dispenses_for(*, node: Node, request: Resource) -> QuerySet[Resource]:
    """Return this pharmacy's dispenses for a request."""
    return dispenses_for_item(node=node, item=medication.item_id(jsonio.loads(request.text)))


def dispense_claim(*, node: Node, request: Resource) -> Resource:
    """Take the request on: a MedicationDispense in progress (a polling prescriber sees it).
    Claiming again what this pharmacy has claimed returns that claim."""
    existing = _dispensable(node, request, jsonio.loads(request.text))
    if existing:
        return existing[0]
    return _dispense(node, request, status="in-progress")


def dispense_complete(*, node: Node, request: Resource, days_supply: int | None = None) -> Resource:
    """Hand the medicine over: the dispense is completed and shared along the route."""
    return _dispense(node, request, status="completed", days_supply=days_supply)


def dispense_decline(*, node: Node, request: Resource, reason_code: str = "0002") -> Resource:
    """Decline the request (returned to the prescriber, who may send it elsewhere)."""
    return _dispense(node, request, status="declined", reason_code=reason_code)


def _dispense(node: Node, request: Resource, *, status: str, **details) -> Resource:
    """Record a dispense here. In the shared record, a dispense that is not the completion of this
    pharmacy's claim is made at the broker first, while the pharmacist waits and outside any
    transaction here: the broker refuses a claim on an item another pharmacy holds (409) or that
    was cancelled (422), and the pharmacist must know at once."""
    content = jsonio.loads(request.text)
    dispense_id = str(uuid.uuid4())
    if _prescriber(node, content).topology in SHARED_RECORDS and not _dispensable(node, request, content):
        dispense = medication.dispense_build(
            request=content,
            dispense_id=dispense_id,
            status=status,
            pharmacy_ods=node.ods_code,
            when=timezone.now(),
            **details,
        )
        claim_at_broker(node=node, broker=broker_for(node=node), dispense=dispense)
    with transaction.atomic():
        return _record(node, request, status=status, dispense_id=dispense_id, **details)


def _dispensable(node: Node, request: Resource, content: dict) -> list[Resource]:
    """Refuse a request that is not active or already dispensed; return its open dispenses."""
    if content["status"] != "active":
        raise FHIRError(
            409, "business-rule", f"This prescription is {content['status']}; it cannot be dispensed."
        )
    existing = [
        r for r in dispenses_for(node=node, request=request) if jsonio.loads(r.text)["status"] != "declined"
    ]
    if existing and jsonio.loads(existing[0].text)["status"] == "completed":
        raise FHIRError(409, "business-rule", "This prescription item has been dispensed already.")
    return existing


def _record(
    node: Node, request: Resource, *, status: str, days_supply=None, reason_code=None, dispense_id=None
) -> Resource:
    request = Resource.objects.select_for_update().get(pk=request.pk)
    content = jsonio.loads(request.text)
    existing = _dispensable(node, request, content)
    dispense = medication.dispense_build(
        request=content,
        dispense_id=dispense_id or str(uuid.uuid4()),
        status=status,
        pharmacy_ods=node.ods_code,
        when=timezone.now(),
        days_supply=days_supply,
        reason_code=reason_code,
    )
    if existing:  # a claim becomes the completed dispense, keeping its identifier
        previous = jsonio.loads(existing[0].text)
        dispense = {**dispense, "id": previous["id"], "identifier": previous["identifier"]}
        record = services.resource_update(
            node=node, resource_type="MedicationDispense", logical_id=previous["id"], content=dispense
        ).resource
    else:
        record = services.resource_create(
            node=node, resource_type="MedicationDispense", content=dispense
        ).resource
    if status in ("completed", "declined"):
        _share(node, _prescriber(node, content), content, dispense, claimed=bool(existing))
    return record


def _prescriber(node: Node, request: dict) -> Partner:
    prescriber = partner_for(node=node, ods_code=medication.requester_ods(request))
    if prescriber.role != Partner.Role.PRESCRIBER:
        raise FHIRError(422, "business-rule", f"{prescriber.name} is not a prescriber.")
    return prescriber


def _share(node: Node, prescriber: Partner, request: dict, dispense: dict, *, claimed: bool) -> None:
    """Let the prescriber learn of a completed or declined dispense, as its topology says."""
    clean = {k: v for k, v in dispense.items() if k not in ("id", "meta")}
    key, identifier = medication.group_id(request), (DISPENSE_SYSTEM, dispense["identifier"][0]["value"])
    kind = f"dispense.{dispense['status']}"
    if prescriber.topology == Topology.DISPENSER_HOSTED:
        return  # the prescriber polls this pharmacy
    if prescriber.topology in PUSHED_TO_PRESCRIBER:
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
            _diagnostics(answer.body) or "The shared record refused the claim.",
        )
    raise FHIRError(
        503,
        "transient",
        f"The broker could not take the claim now ({answer.status or answer.error}); try again.",
    )


def _diagnostics(body: str) -> str:
    try:
        return jsonio.loads(body)["issue"][0]["diagnostics"]
    except (jsonio.JSONError, KeyError, IndexError, TypeError):
        return ""
