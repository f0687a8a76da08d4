"""Steps of a prescription's journey across the demo's nodes, for the end-to-end tests."""

from __future__ import annotations

import json

from dispensing import expiry as pharmacy_expiry
from exchange.expiry import broker_expire
from exchange.models import Message, Partner
from exchange.services import message_deliver
from fhirserver.medication import item_id, status_history
from fhirserver.models import Resource
from fhirserver.selectors import request_for_item
from nodes.models import Node
from prescribing import services as prescribing
from tests.exchange.partner import FlakyPartner

PARACETAMOL = prescribing.Item(
    "39720311000001101", "Paracetamol 500mg soluble tablets", 60, "tablet", "Two four times a day"
)


def status(record: Resource) -> str:
    record.refresh_from_db()
    return json.loads(record.text)["status"]


def held_at(node: Node, request: Resource) -> Resource | None:
    """Return the pharmacy's (or broker's) copy of a prescriber's request, once it has arrived."""
    return request_for_item(node=node, item=item_id(json.loads(request.text)))


def dispenses_at(node: Node) -> list[dict]:
    return [
        json.loads(r.text) for r in Resource.objects.filter(node=node, resource_type="MedicationDispense")
    ]


def issue(nodes, pharmacy: str, items=(PARACETAMOL,)) -> list[Resource]:
    return prescribing.prescription_issue(
        node=nodes["gp"], nhs_number="9449304130", items=list(items), pharmacy_ods=nodes[pharmacy].ods_code
    )


def history(record: Resource) -> list[str]:
    """The cancellation outcomes (EPS R-codes) recorded on a request."""
    record.refresh_from_db()
    return status_history(json.loads(record.text))


def cut_off(node: Node, partner: Node, live_server_url: str) -> FlakyPartner:
    """Route what `node` sends `partner` through a front that is down until started."""
    front = FlakyPartner(live_server_url)
    entry = Partner.objects.get(node=node, ods_code=partner.ods_code)
    entry.fhir_base = entry.fhir_base.replace(live_server_url, front.url)
    entry.notification_url = entry.notification_url.replace(live_server_url, front.url)
    entry.save()
    return front


def subscribed(broker: Node) -> bool:
    """True once the demo's subscribers (the shared-record-events pharmacy, the gp, and the
    trust through its engine) are subscribed at the broker."""
    from exchange.models import Subscription

    subscriptions = Subscription.objects.filter(node=broker)
    active = subscriptions.filter(status=Subscription.Status.ACTIVE)
    return subscriptions.count() == 3 and active.count() == 3


def deliver_all() -> None:
    """Deliver every pending message (but polls), in order, as the worker would."""
    for _ in range(20):
        pending = Message.objects.filter(status=Message.Status.PENDING).exclude(kind="dispense.poll")
        if not pending.exists():
            return
        for message in pending.order_by("pk"):
            message_deliver(message_id=message.pk)
    raise AssertionError("messages still pending after 20 rounds")


def expiry_tasks_at(moment) -> None:
    """Run the beat's expiry tasks as if it were `moment`: the holders first, then the others ask."""
    for broker in Node.objects.filter(kind=Node.Kind.BROKER):
        broker_expire(node=broker, now=moment)
    for pharmacy in Node.objects.filter(kind=Node.Kind.DISPENSING):
        pharmacy_expiry.expiries_apply(node=pharmacy, now=moment)
    for gp in Node.objects.filter(kind=Node.Kind.PRESCRIBING):
        prescribing.expiries_apply(node=gp, now=moment)
