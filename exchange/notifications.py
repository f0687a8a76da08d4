"""Notifications between nodes in one format everywhere: an R4 Subscriptions Backport style
history Bundle whose first entry is a SubscriptionStatus Parameters, carrying an event number and
the focus resource's business identifier. Receivers drop repeats and catch up on gaps."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from exchange.models import Message, NotificationStream, Partner, ReceivedEvent, Topology
from exchange.remote import broker_for, remote_search
from exchange.services import message_enqueue
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.nhs import ODS_SYSTEM
from nodes.models import ApiClient, Node

TOPIC_BASE = "https://dmed.example/fhir/SubscriptionTopic/"
# What a receiver fetches when it has missed events, by the focus resource type.
RECOVERY_FOR = {
    "MedicationRequest": "intended-dispenser:identifier",
    "MedicationDispense": "prescription.requester:identifier",
}


def notify(
    *, node: Node, partner: Partner, key: str, event: str, focus_type: str, focus: tuple[str, str]
) -> Message:
    """Send the partner the next numbered event about a resource, through the outbox."""
    stream, _ = NotificationStream.objects.get_or_create(node=node, partner=partner)
    NotificationStream.objects.filter(pk=stream.pk).update(last_event=F("last_event") + 1)
    stream.refresh_from_db()
    number = str(stream.last_event)
    system, value = focus
    status = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "subscription",
                "valueReference": {"reference": f"urn:dmed:{node.ods_code}:{partner.ods_code}"},
            },
            {"name": "topic", "valueCanonical": TOPIC_BASE + event},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": number},
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": number},
                    {"name": "timestamp", "valueInstant": timezone.now().isoformat(timespec="milliseconds")},
                    {
                        "name": "focus",
                        "valueReference": {
                            "type": focus_type,
                            "identifier": {"system": system, "value": value},
                        },
                    },
                ],
            },
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": timezone.now().isoformat(timespec="milliseconds"),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": status,
                "request": {"method": "GET", "url": "Subscription/status"},
                "response": {"status": "200"},
            }
        ],
    }
    return message_enqueue(
        node=node,
        partner=partner,
        key=key,
        kind=f"notify.{event}",
        method="POST",
        url=partner.notification_url,
        body=jsonio.dumps(bundle),
    )


def notify_after(*, message: Message, answer) -> None:
    """Send the notification a message's context holds, once that message is delivered (a
    remote_update's PUT is queued only when its GET returns, so a notification queued beside it
    would overtake it)."""
    spec = message.context["notify"]
    notify(
        node=message.node,
        partner=Partner.objects.get(pk=spec["partner"]),
        key=message.key,
        event=spec["event"],
        focus_type=spec["focus_type"],
        focus=tuple(spec["focus"]),
    )


def sender_of(*, node: Node, client: ApiClient) -> Partner:
    """Return the directory entry of the partner holding this token (named by its ODS code)."""
    if client is None:
        raise FHIRError(401, "login", "A notification must carry its sender's bearer token.")
    partner = Partner.objects.filter(node=node, ods_code=client.name).first()
    if partner is None:
        raise FHIRError(
            403, "forbidden", "Notifications are taken only from partners in this node's directory."
        )
    return partner


@transaction.atomic
def notification_receive(*, node: Node, sender: Partner, bundle: dict) -> str:
    """Take a notification: drop a repeat, catch up on a gap, fetch the focus. Return what happened."""
    number, event, focus_type, focus = _parse(bundle)
    seen = ReceivedEvent.objects.filter(node=node, partner=sender)
    highest = seen.aggregate(n=Max("number"))["n"] or 0
    try:
        with transaction.atomic():
            ReceivedEvent.objects.create(node=node, partner=sender, number=number, event=event)
    except IntegrityError:
        # Notifications about different prescriptions may overtake each other: one taken for
        # missed is still acted on when it arrives. A true repeat is dropped.
        late = seen.filter(number=number, event="missed").update(event=event, recovered=False)
        if not late:
            return "duplicate"
    source = _source(node, sender)
    outcome = "received"
    if number > highest + 1:
        missed = set(range(highest + 1, number)) - set(
            seen.filter(number__lt=number).values_list("number", flat=True)
        )
        if missed:
            ReceivedEvent.objects.bulk_create(
                ReceivedEvent(node=node, partner=sender, number=n, event="missed", recovered=True)
                for n in sorted(missed)
            )
            param = RECOVERY_FOR[focus_type]
            remote_search(
                node=node,
                partner=source,
                key=f"recover-{sender.ods_code}",
                resource_type=focus_type,
                params=[(param, f"{ODS_SYSTEM}|{node.ods_code}")],
                kind="notify.recover",
                on_success="exchange.copies.copies_store",
            )
            outcome = f"gap of {len(missed)} recovered"
    system, value = focus
    remote_search(
        node=node,
        partner=source,
        key=value,
        resource_type=focus_type,
        params=[("identifier", f"{system}|{value}")],
        kind=f"fetch.{event}",
        on_success="exchange.copies.copies_store",
    )
    return outcome


def _source(node: Node, sender: Partner) -> Partner:
    """Where the focus lives: the broker for the shared record, else the sender itself."""
    if sender.topology == Topology.SHARED_RECORD:
        return broker_for(node=node)
    return sender


def _parse(bundle: dict) -> tuple[int, str, str, tuple[str, str]]:
    try:
        if (bundle["resourceType"], bundle["type"]) != ("Bundle", "history"):
            raise ValueError("not a history Bundle")
        status = bundle["entry"][0]["resource"]
        params = {p["name"]: p for p in status["parameter"]}
        event = params["topic"]["valueCanonical"].removeprefix(TOPIC_BASE)
        parts = {p["name"]: p for p in params["notification-event"]["part"]}
        number = int(parts["event-number"]["valueString"])
        focus = parts["focus"]["valueReference"]
        if focus["type"] not in RECOVERY_FOR:
            raise ValueError(f"no notifications about {focus['type']}")
        return number, event, focus["type"], (focus["identifier"]["system"], focus["identifier"]["value"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise FHIRError(
            400,
            "invalid",
            "A notification is a history Bundle whose first entry is a SubscriptionStatus "
            "with a notification-event (event-number, focus identifier).",
        ) from exc
