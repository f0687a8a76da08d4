"""What a node's screens show of its exchange with other nodes: its messages, what it received,
its subscriptions, and at a broker the shared record."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import simplejson
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.utils.dateparse import parse_datetime

from exchange.models import Attempt, Message, Partner, ReceivedEvent, Subscription
from exchange.subscriptions import FILTER_CRITERIA
from exchange.topics import topics_at
from fhirserver import jsonio, medication
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM, PRESCRIPTION_ID_SYSTEM
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item
from nodes.models import ApiClient, Node


def exchange_summary(*, node: Node) -> dict:
    """What every screen of a node shows of its exchange: undelivered and waiting messages."""
    return {"dead": messages_dead(node=node), "waiting": messages_waiting(node=node)}


def messages_dead(*, node: Node, limit: int = 20) -> QuerySet[Message]:
    """Return the node's newest messages that will not be retried (requeued from the admin)."""
    return Message.objects.filter(node=node, status=Message.Status.DEAD).order_by("-pk")[:limit]


def messages_waiting(*, node: Node) -> int:
    """Return how many of the node's messages are still to be delivered."""
    return Message.objects.filter(node=node, status=Message.Status.PENDING).count()


# What was sent: the node's outbox.

# The kinds of message the code base sends, in words; {to} is the partner's part ("the pharmacy").
KIND_WORDS = {
    "request.create": "Request sent to {to}",
    "request.renominate": "Re-nominated request sent to {to}",
    "request.cancel": "Cancellation sent to {to}",
    "request.complete": "Completion sent to {to}",
    "dispense.poll": "Asked {to} for its dispenses",
    "dispense.completed": "Dispense sent to {to}",
    "dispense.declined": "Decline sent to {to}",
    "notify.medication-request": "Told {to} of a prescription item",
    "notify.medication-dispense": "Told {to} of a dispense",
    "notify.recover": "Asked {to} for missed notifications",
    "fetch.medication-request": "Fetched a prescription item from {to}",
    "fetch.medication-dispense": "Fetched a dispense from {to}",
    "fetch.recovered": "Fetched a missed resource from {to}",
    "subscribe": "Subscription asked of {to}",
    "subscribe.again": "Subscription asked of {to} again",
    "subscription.handshake": "Subscription handshake sent to {to}",
    "subscription.event": "Subscription event sent to {to}",
    "subscription.heartbeat": "Subscription heartbeat sent to {to}",
}
PARTNER_PART = {
    Partner.Role.PHARMACY: "the pharmacy",
    Partner.Role.PRESCRIBER: "the prescriber",
    Partner.Role.BROKER: "the broker",
}
STATUSES = tuple(Message.Status.values)


def message_kind_words(*, message: Message) -> str:
    """Return what a message does, in words ("Request sent to the pharmacy")."""
    to = PARTNER_PART.get(message.partner.role, "the partner") if message.partner else "the endpoint"
    kind, fetch_first = message.kind, False
    if kind.endswith(".fetch") and kind.removesuffix(".fetch") in KIND_WORDS:
        kind, fetch_first = kind.removesuffix(".fetch"), True  # the GET half of a remote update
    words = KIND_WORDS.get(kind)
    if words is None:
        return message.kind
    words = words.format(to=to)
    events = message.context.get("events", 0) if kind == "subscription.event" else 0
    if events > 1:  # several events that waited went in one notification
        words = f"{words} ({events} events)"
    return f"{words}: reading its copy first" if fetch_first else words


def messages_sent(*, node: Node, status: str = "", key: str = "") -> QuerySet[Message]:
    """Return the node's outbox, newest first: of one status ("" for all), keys containing key."""
    sent = Message.objects.filter(node=node).select_related("partner").order_by("-pk")
    if status in STATUSES:
        sent = sent.filter(status=status)
    if key:
        sent = sent.filter(key__icontains=key)
    return sent


@dataclass(frozen=True)
class StatusCount:
    status: str  # "" for all
    label: str
    count: int


def messages_counts(*, node: Node, key: str = "") -> list[StatusCount]:
    """Return how many of the node's messages (keys containing key) there are in all and of each
    status."""
    sent = Message.objects.filter(node=node)
    if key:
        sent = sent.filter(key__icontains=key)
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(sent.values_list("status").annotate(n=Count("id")).order_by())
    return [StatusCount("", "All", sum(counts.values()))] + [
        StatusCount(status, label, counts[status]) for status, label in Message.Status.choices
    ]


@dataclass(frozen=True)
class SentRow:
    message: Message
    what: str


@dataclass(frozen=True)
class SentPage:
    rows: list[SentRow]
    page: Page  # its number, and whether there are newer (previous) and older (next) pages


def messages_sent_page(*, node: Node, status: str = "", key: str = "", number=1, size: int = 50) -> SentPage:
    """Return one page of the node's outbox, newest first, each message with its kind in words."""
    page = Paginator(messages_sent(node=node, status=status, key=key), size).get_page(number)
    return SentPage([SentRow(m, message_kind_words(message=m)) for m in page], page)


def message_at(*, node: Node, message_id: int) -> Message | None:
    """Return one of the node's messages (None for another node's or none)."""
    return Message.objects.filter(node=node, pk=message_id).select_related("partner").first()


def message_attempts(*, message: Message) -> list[Attempt]:
    """Return the message's delivery attempts, first first."""
    return list(message.attempt_log.order_by("number", "pk"))


# Headers whose values are secrets: shown as hidden.
SECRET_HEADERS = {"authorization", "cookie", "x-api-key"}


def message_headers(*, message: Message) -> list[tuple[str, str]]:
    """Return the headers the message is sent with, secrets hidden."""
    return [
        (name, "(hidden)" if name.lower() in SECRET_HEADERS else str(value))
        for name, value in sorted(message.headers.items())
    ]


@dataclass(frozen=True)
class Body:
    text: str  # pretty JSON when it is JSON, else as sent; "" for none
    length: int  # characters in the body as sent
    truncated: bool


def message_body(*, message: Message, limit: int = 20_000) -> Body:
    """Return the message's body for reading: JSON indented, cut at limit characters."""
    text = message.body
    with contextlib.suppress(jsonio.JSONError):  # not JSON: shown as sent
        text = simplejson.dumps(jsonio.loads(text), indent=2, use_decimal=True, ensure_ascii=False)
    return Body(text=text[:limit], length=len(message.body), truncated=len(text) > limit)


# What was received: notifications, and which partners call this node's FHIR API.

EVENT_WORDS = {
    "medication-request": "A prescription item became active, was cancelled or was re-nominated",
    "medication-dispense": "A dispense changed status",
    "missed": "Missed: its resource was fetched to catch up",
}


@dataclass(frozen=True)
class ReceivedRow:
    event: ReceivedEvent
    what: str


def events_received(*, node: Node, limit: int = 50) -> list[ReceivedRow]:
    """Return the newest notification events the node received (or recovered) from partners."""
    received = ReceivedEvent.objects.filter(node=node).select_related("partner").order_by("-received", "-pk")
    return [ReceivedRow(event, EVENT_WORDS.get(event.event, event.event)) for event in received[:limit]]


@dataclass(frozen=True)
class ApiCaller:
    name: str  # the partner's name, else the client's
    holder: str  # who holds the token (a partner's ODS code)
    last_used: datetime | None
    revoked: bool


def api_callers(*, node: Node) -> list[ApiCaller]:
    """Return the holders of tokens to this node's FHIR API and when each last used it (to the
    minute); the API does not record who wrote what."""
    partners = dict(Partner.objects.filter(node=node).values_list("ods_code", "name"))
    clients = ApiClient.objects.filter(node=node).order_by("-last_used", "name")
    return [
        ApiCaller(
            name=partners.get(client.name, client.name),
            holder=client.name,
            last_used=client.last_used,
            revoked=client.revoked,
        )
        for client in clients
    ]


# A node's Subscription resources, as their index and their text hold them.

STATUS_TAGS = {"requested": "blue", "active": "green", "error": "red", "off": "grey"}


@dataclass(frozen=True)
class SubscriptionView:
    logical_id: str
    status: str
    tag: str  # the NHS.UK tag colour for the status
    topic: str  # the topic's canonical, "" for R4 criteria
    topic_description: str
    criteria: str  # R4 criteria, as a search (Type?params)
    filters: list[str]
    content: str
    endpoint: str
    subscriber: str  # the endpoint's partner in this node's directory, "" when none
    events: int
    last_sent: datetime | None
    error: str
    key: str  # the outbox key of its messages
    waiting: int  # its messages still to be delivered


def subscriptions_at(*, node: Node) -> list[SubscriptionView]:
    """Return the node's live subscriptions, oldest first."""
    rows = list(
        Subscription.objects.filter(node=node, resource__deleted=False)
        .select_related("resource")
        .order_by("pk")
    )
    subscribers = dict(Partner.objects.filter(node=node).values_list("notification_url", "name"))
    keys = [row.key for row in rows]
    waiting = dict(
        Message.objects.filter(node=node, key__in=keys, status=Message.Status.PENDING)
        .values_list("key")
        .annotate(n=Count("id"))
        .order_by()
    )
    topics = topics_at(node)
    views = []
    for row in rows:
        content = jsonio.loads(row.resource.text) if row.resource.text else {}
        topic = topics.get(row.topic)
        views.append(
            SubscriptionView(
                logical_id=row.resource.logical_id,
                status=row.status,
                tag=STATUS_TAGS.get(row.status, "grey"),
                topic=row.topic,
                topic_description=topic.description if topic else "",
                criteria="" if row.topic else f"{row.resource_type}?{row.criteria}",
                filters=[
                    extension.get("valueString", "")
                    for extension in (content.get("_criteria") or {}).get("extension", [])
                    if extension.get("url") == FILTER_CRITERIA
                ],
                content=row.content or row.payload or "empty",
                endpoint=row.endpoint,
                subscriber=subscribers.get(row.endpoint, ""),
                events=row.event_count,
                last_sent=row.last_sent,
                error=str(content.get("error") or ""),
                key=row.key,
                waiting=waiting.get(row.key, 0),
            )
        )
    return views


# The broker's shared record: its MedicationRequests by prescription, with their dispenses.

CLAIMS = ("in-progress", "completed")
DISPENSE_WORDS = {"in-progress": "Being dispensed", "completed": "Dispensed", "declined": "Declined"}


@dataclass(frozen=True)
class SharedDispense:
    identifier: str
    pharmacy: str
    status: str
    words: str
    handed_over: datetime | None
    quantity: str
    updated: datetime


@dataclass
class SharedItem:
    item_id: str
    medicine: str
    quantity: str
    dosage: str
    status: str
    returned: bool
    nominated: str  # the nominated pharmacy, "" for none (found by its token)
    dispensing: str  # the pharmacy holding a claim or a completed dispense, "" for none
    dispenses: list[SharedDispense] = field(default_factory=list)


@dataclass
class SharedPrescription:
    prescription_id: str
    nhs_number: str
    patient_name: str
    prescriber: str
    authored: datetime | None
    items: list[SharedItem]


def shared_record_search(
    *, node: Node, prescription_id: str = "", nhs_number: str = "", limit: int = 20
) -> list[SharedPrescription]:
    """Return the node's prescriptions (newest first) with this Prescription ID, for this NHS
    number, or else the newest ones."""
    requests = Resource.objects.filter(node=node, resource_type="MedicationRequest", deleted=False)
    if prescription_id:
        params = [("group-identifier", f"{PRESCRIPTION_ID_SYSTEM}|{prescription_id.upper()}")]
        requests = matching(node=node, resource_type="MedicationRequest", params=params, strict=True)
    elif nhs_number:
        params = [("subject:identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]
        requests = matching(node=node, resource_type="MedicationRequest", params=params, strict=True)
    # A bounded scan of the newest items finds the newest prescriptions; their other items follow.
    return _prescriptions(node, requests.order_by("-pk")[: limit * 20], limit)


def _prescriptions(node: Node, records: Iterable[Resource], limit: int) -> list[SharedPrescription]:
    groups: dict[str, dict[int, dict]] = {}
    for record in records:
        content = jsonio.loads(record.text)
        pid = medication.group_id(content)
        if pid not in groups and len(groups) == limit:
            break
        groups.setdefault(pid, {})[record.pk] = content
    wanted = [f"{PRESCRIPTION_ID_SYSTEM}|{pid}" for pid in groups]
    if wanted:
        params = [("group-identifier", ",".join(wanted))]
        for record in matching(node=node, resource_type="MedicationRequest", params=params, strict=True):
            content = jsonio.loads(record.text)
            groups.setdefault(medication.group_id(content), {})[record.pk] = content
    names = _pharmacy_names(node)
    return [
        _prescription(node, pid, [items[pk] for pk in sorted(items)], names) for pid, items in groups.items()
    ]


def _prescription(node: Node, pid: str, contents: list[dict], names: dict[str, str]) -> SharedPrescription:
    first = contents[0]
    subject = first.get("subject", {})
    return SharedPrescription(
        prescription_id=pid,
        nhs_number=subject.get("identifier", {}).get("value", ""),
        patient_name=subject.get("display", ""),
        prescriber=_named(names, medication.requester_ods(first)),
        authored=parse_datetime(first.get("authoredOn", "")),
        items=[_item(node, content, names) for content in contents],
    )


def _item(node: Node, content: dict, names: dict[str, str]) -> SharedItem:
    item = medication.item_id(content)
    dispenses = []
    if item:
        for record in dispenses_for_item(node=node, item=item).order_by("pk"):
            dispense = jsonio.loads(record.text)
            dispenses.append(
                SharedDispense(
                    identifier=next((i.get("value", "") for i in dispense.get("identifier", [])), ""),
                    pharmacy=_named(names, medication.performer_ods(dispense)),
                    status=dispense.get("status", ""),
                    words=DISPENSE_WORDS.get(dispense.get("status", ""), dispense.get("status", "")),
                    handed_over=parse_datetime(dispense.get("whenHandedOver", "")),
                    quantity=medication.quantity_text(dispense.get("quantity", {})),
                    updated=record.last_updated,
                )
            )
    holding = [d for d in dispenses if d.status in CLAIMS]
    return SharedItem(
        item_id=item,
        medicine=medication.medicine_name(content),
        quantity=medication.quantity_text(medication.prescribed_quantity(content)),
        dosage=medication.dosage_text(content),
        status=content.get("status", ""),
        returned=medication.returned(content),
        nominated=_named(names, medication.nominated_ods(content)),
        dispensing=holding[-1].pharmacy if holding else "",
        dispenses=dispenses,
    )


def _pharmacy_names(node: Node) -> dict[str, str]:
    return dict(Partner.objects.filter(node=node).values_list("ods_code", "name"))


def _named(names: dict[str, str], ods: str) -> str:
    """Return "Name (ODS)" for an organisation in the node's directory, else its ODS code."""
    if not ods:
        return ""
    return f"{names[ods]} ({ods})" if ods in names else ods
