"""Notifications between nodes in one format everywhere: an R4 Subscriptions Backport style
history Bundle whose first entry is a SubscriptionStatus Parameters, carrying an event number and
the focus resource's business identifier. Receivers drop repeats and catch up on gaps."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from exchange.copies import copy_store
from exchange.models import Message, NotificationStream, Partner, ReceivedEvent, Topology
from exchange.remote import broker_for, remote_search
from exchange.services import message_enqueue
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.nhs import ODS_SYSTEM
from nodes.models import ApiClient, Node

TOPIC_BASE = "https://dmed.example/fhir/SubscriptionTopic/"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
STATUS_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
)
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
    system, value = focus
    status = status_parameters(
        subscription=f"urn:dmed:{node.ods_code}:{partner.ods_code}",
        topic=TOPIC_BASE + event,
        status="active",
        kind="event-notification",
        events_since=stream.last_event,
        events=[
            event_part(
                number=stream.last_event,
                focus={"type": focus_type, "identifier": {"system": system, "value": value}},
            )
        ],
    )
    return message_enqueue(
        node=node,
        partner=partner,
        key=key,
        kind=f"notify.{event}",
        method="POST",
        url=partner.notification_url,
        body=jsonio.dumps(notification_bundle(status)),
    )


# The one format (R4 Subscriptions Backport): a history Bundle whose first entry is a
# SubscriptionStatus Parameters, then, for id-only and full-resource content, the focus entries.


def status_parameters(
    *,
    subscription: str,
    topic: str,
    status: str,
    kind: str,
    events_since: int,
    events: list[dict] = (),
    error: str = "",
) -> dict:
    """Return a SubscriptionStatus (R4 backport Parameters) of a type: handshake, heartbeat,
    event-notification, query-status or query-event."""
    parameters = [
        {"name": "subscription", "valueReference": {"reference": subscription}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since)},
        *events,
    ]
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]}, "parameter": parameters}


def event_part(*, number: int, focus: dict | None, timestamp: str = "") -> dict:
    """Return one notification-event of a SubscriptionStatus (no focus for empty content)."""
    when = timestamp or timezone.now().isoformat(timespec="milliseconds")
    parts = [
        {"name": "event-number", "valueString": str(number)},
        {"name": "timestamp", "valueInstant": when},
    ]
    if focus is not None:
        parts.append({"name": "focus", "valueReference": focus})
    return {"name": "notification-event", "part": parts}


def notification_bundle(
    status: dict, entries: list[dict] = (), *, status_url: str = "Subscription/$status"
) -> dict:
    """Return the history Bundle that carries a SubscriptionStatus and its focus entries."""
    return {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": timezone.now().isoformat(timespec="milliseconds"),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": status,
                "request": {"method": "GET", "url": status_url},
                "response": {"status": "200"},
            },
            *entries,
        ],
    }


def notify_after(*, message: Message, answer) -> None:
    """Send the notification a message's context holds, once that message is delivered (a
    remote_update's PUT is queued only when its GET returns, so a notification queued beside it
    would overtake it)."""
    notify_event(node=message.node, key=message.key, event=message.context["notify"])


def notify_event(*, node: Node, key: str, event: dict) -> Message:
    """Send a notification described as a (JSON) event: partner pk, event, focus type, focus."""
    return notify(
        node=node,
        partner=Partner.objects.get(pk=event["partner"]),
        key=key,
        event=event["event"],
        focus_type=event["focus_type"],
        focus=tuple(event["focus"]),
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


@dataclass
class Event:
    """One notification-event: its number in the stream and the resource it is about."""

    number: int
    focus_type: str
    focus: tuple[str, str]
    resource: dict | None = None  # the focus, when sent with full-resource content


@dataclass
class Notification:
    """What a receiver reads from a notification Bundle."""

    kind: str  # handshake | heartbeat | event-notification
    stream: str  # the sender's Subscription reference: event numbers count per stream
    events_since: int
    event: str = ""  # the topic's name
    events: list[Event] = field(default_factory=list)  # in event-number order

    @property
    def focus_types(self) -> list[str]:
        """The types of resource the notification brings or announces."""
        return sorted({event.focus_type for event in self.events})


@transaction.atomic
def notification_receive(*, node: Node, sender: Partner, note: Notification) -> str:
    """Take a notification (read by notification_parse): each of its events in order, dropping
    a repeat, catching up on a gap, taking or fetching the focus. Return what happened."""
    seen = ReceivedEvent.objects.filter(node=node, partner=sender, subscription=note.stream)
    if note.kind != "event-notification":  # a handshake, or a heartbeat that may show a gap
        highest = seen.aggregate(n=Max("number"))["n"] or 0
        if note.kind == "heartbeat" and note.events_since > highest:
            return f"{note.kind}; {_recover(node, sender, note, seen, highest, note.events_since + 1)}"
        return note.kind
    return "; ".join(_event_receive(node, sender, note, event, seen) for event in note.events)


def _event_receive(node: Node, sender: Partner, note: Notification, event: Event, seen) -> str:
    """Take one event of a notification, after the ones before it in the same Bundle."""
    highest = seen.aggregate(n=Max("number"))["n"] or 0
    late = False
    try:
        with transaction.atomic():
            ReceivedEvent.objects.create(
                node=node, partner=sender, subscription=note.stream, number=event.number, event=note.event
            )
    except IntegrityError:
        # Notifications about different prescriptions may overtake each other: one taken for
        # missed is still acted on when it arrives. A true repeat is dropped.
        late = seen.filter(number=event.number, event="missed").update(event=note.event, recovered=False)
        if not late:
            return "duplicate"
    outcome = "received"
    if event.number > highest + 1:
        outcome = _recover(node, sender, note, seen, highest, event.number, event.focus_type)
    if event.resource is not None and not late and event.number > highest:
        copy_store(node=node, resource=event.resource)  # in order: this is the newest we know
    else:
        _fetch(node, _source(node, sender), event.focus_type, event.focus, kind=f"fetch.{note.event}")
    return outcome


def _recover(
    node: Node, sender: Partner, note: Notification, seen, highest: int, upto: int, focus_type: str = ""
) -> str:
    """Mark events highest+1 .. upto-1 missed and fetch what they were about (a stream without
    $events: everything of focus_type the sender holds for this node)."""
    missed = set(range(highest + 1, upto)) - set(
        seen.filter(number__lt=upto).values_list("number", flat=True)
    )
    if not missed:
        return "nothing missed"
    ReceivedEvent.objects.bulk_create(
        ReceivedEvent(
            node=node, partner=sender, subscription=note.stream, number=n, event="missed", recovered=True
        )
        for n in sorted(missed)
    )
    source = _source(node, sender)
    subscription_id = note.stream.rsplit("Subscription/", 1)[-1]
    if "Subscription/" in note.stream and FHIR_ID.fullmatch(subscription_id):  # ask which they were
        message_enqueue(
            node=node,
            partner=source,
            key=f"recover-{sender.ods_code}",
            kind="notify.recover",
            method="GET",
            url=f"{source.fhir_base}/Subscription/{subscription_id}/$events?"
            + urlencode({"eventsSinceNumber": min(missed), "eventsUntilNumber": max(missed)}),
            on_success="exchange.notifications.events_recovered",
        )
    else:  # a stream without $events: fetch everything the sender holds for this node
        remote_search(
            node=node,
            partner=source,
            key=f"recover-{sender.ods_code}",
            resource_type=focus_type,
            params=[(RECOVERY_FOR[focus_type], f"{ODS_SYSTEM}|{node.ods_code}")],
            kind="notify.recover",
            on_success="exchange.copies.copies_store",
        )
    return f"gap of {len(missed)} recovered"


def events_recovered(*, message: Message, answer) -> None:
    """The sender's $events answered: fetch the current state of each event's focus."""
    try:
        status = jsonio.loads(answer.body)["entry"][0]["resource"]
        events = [p for p in status["parameter"] if p["name"] == "notification-event"]
        focuses = [{q["name"]: q for q in event["part"]}["focus"]["valueReference"] for event in events]
        wanted = {(f["type"], f["identifier"]["system"], f["identifier"]["value"]) for f in focuses}
    except (jsonio.JSONError, KeyError, IndexError, TypeError) as exc:
        raise FHIRError(502, "invalid", "The partner's $events answer is not a SubscriptionStatus.") from exc
    for focus_type, system, value in sorted(wanted):
        _fetch(message.node, message.partner, focus_type, (system, value), kind="fetch.recovered")


def _event_parse(part: dict, resource: dict | None) -> Event:
    parts = {p["name"]: p for p in part["part"]}
    focus = parts["focus"]["valueReference"]
    if focus["type"] not in RECOVERY_FOR:
        raise ValueError(f"no notifications about {focus['type']}")
    if resource is not None and resource.get("resourceType") != focus["type"]:
        raise ValueError("the resource sent is not the focus")
    return Event(
        number=int(parts["event-number"]["valueString"]),
        focus_type=focus["type"],
        focus=(focus["identifier"]["system"], focus["identifier"]["value"]),
        resource=resource,
    )


def _fetch(node: Node, source: Partner, focus_type: str, focus: tuple[str, str], *, kind: str) -> None:
    system, value = focus
    remote_search(
        node=node,
        partner=source,
        key=value,
        resource_type=focus_type,
        params=[("identifier", f"{system}|{value}")],
        kind=kind,
        on_success="exchange.copies.copies_store",
    )


def _source(node: Node, sender: Partner) -> Partner:
    """Where the focus lives: the broker for the shared record, else the sender itself."""
    if sender.topology == Topology.SHARED_RECORD:
        return broker_for(node=node)
    return sender


def notification_parse(bundle: dict) -> Notification:
    """Read a notification Bundle. An event-notification may carry several events (Backport:
    consecutive event numbers, eventsSinceSubscriptionStart the highest); with full-resource
    content, the entries after the status are their focuses, one an event, in the same order."""
    try:
        if (bundle["resourceType"], bundle["type"]) != ("Bundle", "history"):
            raise ValueError("not a history Bundle")
        status = bundle["entry"][0]["resource"]
        params = {p["name"]: p for p in status["parameter"]}
        note = Notification(
            kind=params["type"]["valueCode"],
            stream=params["subscription"]["valueReference"]["reference"],
            events_since=int(params.get("events-since-subscription-start", {}).get("valueString") or 0),
            event=params["topic"]["valueCanonical"].removeprefix(TOPIC_BASE),
        )
        if note.kind in ("handshake", "heartbeat"):
            return note
        if note.kind != "event-notification":
            raise ValueError(f"not a notification: {note.kind}")
        parts = [p for p in status["parameter"] if p["name"] == "notification-event"]
        resources = [e["resource"] for e in bundle["entry"][1:] if "resource" in e]
        if not parts or (resources and len(resources) != len(parts)):
            raise ValueError("a notification has events, and a resource for each or for none")
        note.events = sorted(
            (_event_parse(part, resources[i] if resources else None) for i, part in enumerate(parts)),
            key=lambda event: event.number,
        )
        return note
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise FHIRError(
            400,
            "invalid",
            "A notification is a history Bundle whose first entry is a SubscriptionStatus: a "
            "handshake, a heartbeat, or a notification-event (event-number, focus identifier).",
        ) from exc
