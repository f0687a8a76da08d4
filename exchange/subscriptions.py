"""FHIR Subscriptions at any node: R4 criteria subscriptions, and topic-based ones in the R4
Subscriptions Backport style. A Subscription resource is indexed as it is written; every write is
matched against the node's subscriptions inside its own transaction, and each match is a numbered
event in the outbox, delivered in order and retried until it arrives."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from exchange.models import Message, Partner, Subscription, SubscriptionEvent
from exchange.services import message_enqueue
from exchange.subscription_status import notification_merge, notification_text
from exchange.topics import topics_at
from fhirserver import jsonio, services
from fhirserver.errors import FHIRError
from fhirserver.models import Resource, ResourceVersion
from fhirserver.prepared import Compiled
from fhirserver.registry import is_resource_type
from fhirserver.search import matching, parse_query_string
from nodes.models import Node

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT_PERIOD = BACKPORT + "backport-heartbeat-period"
CONTENTS = ("empty", "id-only", "full-resource")
PAYLOADS = ("", "application/fhir+json", "application/json")
HOOKS = {"on_success": "exchange.subscriptions.delivered", "on_failure": "exchange.subscriptions.failed"}
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# At most this many events of one subscription go in one notification. Events wait while the
# subscriber is slow or unreachable, and then one POST carries them all, not one each.
EVENTS_PER_NOTIFICATION = 50


def _sendable(value: str) -> bool:
    return all(32 <= ord(c) <= 255 and ord(c) != 127 for c in value)


# The Subscription resource's life: checked and indexed as written, handshake on activation.


def subscription_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Index a Subscription as it is written; activate it when it is new or requested again
    (topic-based: after a handshake), and stop its deliveries when it is turned off. A
    Subscription that cannot work is refused."""
    index = _index(node, content)
    row = Subscription.objects.filter(resource=record).first()
    asked = row is None or (
        content["status"] == Subscription.Status.REQUESTED and row.status != content["status"]
    )
    if row is None:
        row = Subscription.objects.create(resource=record, node=node, **index)
    else:
        Subscription.objects.filter(pk=row.pk).update(**index)
        row.refresh_from_db()
    if row.status == Subscription.Status.OFF:
        _stop(row, "The subscription was turned off.")
    elif asked and row.topic:
        _enqueue(row, "subscription.handshake", notification_text(row, "handshake"))
    elif asked:  # R4 has no handshake: the server sets it active once it is stored
        transaction.on_commit(lambda: _activate(row.pk))


def subscription_deleted(*, node: Node, record: Resource) -> None:
    """A deleted Subscription sends nothing more."""
    row = Subscription.objects.filter(resource=record).first()
    if row is not None:
        Subscription.objects.filter(pk=row.pk).update(status=Subscription.Status.OFF)
        _stop(row, "The subscription was deleted.")


def _stop(row: Subscription, why: str) -> None:
    Message.objects.filter(node=row.node_id, key=row.key, status=Message.Status.PENDING).update(
        status=Message.Status.DEAD, last_error=why
    )


def _activate(pk: int) -> None:
    with transaction.atomic():
        row = Subscription.objects.filter(pk=pk).first()
        record = Resource.objects.select_for_update().get(pk=row.resource_id) if row else None
        row = Subscription.objects.filter(pk=pk, status=Subscription.Status.REQUESTED).first()
        if row is not None and not record.deleted:
            row.resource = record
            _status_set(row, Subscription.Status.ACTIVE, "")


def _index(node: Node, content: dict) -> dict:
    """Return the index fields of a Subscription, or refuse it (422, with the path at fault)."""
    channel = content.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise _refused("Only rest-hook channels are supported.", "Subscription.channel.type")
    endpoint = channel.get("endpoint") or ""
    if not endpoint.startswith(("http://", "https://")):
        raise _refused("A rest-hook needs an http(s) endpoint.", "Subscription.channel.endpoint")
    host = urlsplit(endpoint).hostname or ""
    if host not in settings.SUBSCRIPTION_ENDPOINT_HOSTS:
        raise _refused(
            f"Notifications may go only to {', '.join(settings.SUBSCRIPTION_ENDPOINT_HOSTS)} "
            f"(SUBSCRIPTION_ENDPOINT_HOSTS), not to {host!r}.",
            "Subscription.channel.endpoint",
        )
    if channel.get("payload") and urlsplit(endpoint).path.startswith(f"/{node.slug}/fhir"):
        raise _refused("A subscription cannot write to its own node.", "Subscription.channel.endpoint")
    headers = {}
    for index, header in enumerate(channel.get("header") or []):
        name, colon, value = header.partition(":")
        if not colon or not HEADER_NAME.fullmatch(name.strip()) or not _sendable(value.strip()):
            raise _refused(
                "A header is 'Name: value', the name a token and the value printable Latin-1.",
                f"Subscription.channel.header[{index}]",
            )
        headers[name.strip()] = value.strip()
    payload = channel.get("payload") or ""
    if payload not in PAYLOADS:
        raise _refused(f"The payload may be empty or one of {PAYLOADS[1:]}.", "Subscription.channel.payload")
    criteria = content.get("criteria") or ""
    fields = {"status": content["status"], "endpoint": endpoint, "headers": headers, "payload": payload}
    if criteria.startswith(("http://", "https://")):
        return {**fields, **_topic_index(node, content, criteria, channel)}
    resource_type, _, query = criteria.partition("?")
    if not is_resource_type(resource_type):
        raise _refused(
            "The criteria must be a search, e.g. MedicationRequest?status=active.", "Subscription.criteria"
        )
    _check_search(node, resource_type, query, "Subscription.criteria")
    return {**fields, "resource_type": resource_type, "criteria": query, "topic": "", "content": ""}


def _topic_index(node: Node, content: dict, url: str, channel: dict) -> dict:
    topics = topics_at(node)
    topic = topics.get(url)
    if topic is None:
        known = "; ".join(f"{t.url}: {t.description}" for t in topics.values()) or "none"
        raise _refused(f"No topic {url!r} here; the topics are {known}.", "Subscription.criteria")
    filters = [
        extension.get("valueString", "")
        for extension in (content.get("_criteria") or {}).get("extension", [])
        if extension.get("url") == FILTER_CRITERIA
    ]
    queries = []
    for criterion in filters:
        resource_type, _, query = criterion.partition("?")
        if resource_type != topic.resource_type:
            raise _refused(f"This topic's filters are on {topic.resource_type}.", "Subscription.criteria")
        for name, _ in parse_query_string(query):
            if name.split(".")[0].split(":")[0] not in topic.filters:
                raise _refused(
                    f"The topic cannot be filtered by {name!r}; it can by {', '.join(topic.filters)}.",
                    "Subscription.criteria",
                )
        _check_search(node, resource_type, query, "Subscription.criteria")
        queries.append(query)
    content_code = next(
        (
            extension.get("valueCode")
            for extension in (content.get("channel", {}).get("_payload") or {}).get("extension", [])
            if extension.get("url") == PAYLOAD_CONTENT
        ),
        "id-only",
    )
    if content_code not in CONTENTS:
        raise _refused(
            f"The payload content is one of {', '.join(CONTENTS)}.", "Subscription.channel.payload"
        )
    heartbeat = next(
        (e.get("valueUnsignedInt") for e in channel.get("extension", []) if e.get("url") == HEARTBEAT_PERIOD),
        None,
    )
    return {
        "resource_type": topic.resource_type,
        "topic": url,
        "criteria": "&".join(queries),
        "content": content_code,
        "heartbeat_seconds": heartbeat,
    }


def _check_search(node: Node, resource_type: str, query: str, path: str) -> None:
    try:
        matching(node=node, resource_type=resource_type, params=parse_query_string(query), strict=True)
    except FHIRError as exc:
        raise _refused(str(exc), path) from exc


def _refused(diagnostics: str, path: str) -> FHIRError:
    return FHIRError(422, "invalid", diagnostics, [path])


# Matching: inside the transaction of every write at a node.


def _watching(node_id: int, resource_type: str, off: str) -> QuerySet:
    return (
        Subscription.objects.filter(node_id=node_id, resource_type=resource_type, resource__deleted=False)
        .exclude(status=off)
        .values_list("pk")[:1]
    )


# Whether any live subscription at a node watches a type: asked on every write, and most nodes
# have none, so it is compiled once (prepared.Compiled) rather than by the ORM each time.
WATCHING = Compiled(_watching, 0, "MedicationRequest", Subscription.Status.OFF.value)


def resource_written(*, node: Node, record: Resource, content: dict) -> None:
    """Turn a write into an event for every subscription of this node that it matches."""
    if record.resource_type == "Subscription" or not WATCHING.rows(
        node.pk, record.resource_type, Subscription.Status.OFF.value
    ):
        return
    subscriptions = list(
        Subscription.objects.filter(node=node, resource_type=record.resource_type, resource__deleted=False)
        .exclude(status=Subscription.Status.OFF)
        .order_by("pk")
    )
    if not subscriptions:
        return
    # The node's topics are read only when a topic subscription may be triggered (one query).
    topics = topics_at(node) if any(s.topic for s in subscriptions) else {}
    previous: dict | None = None
    if record.version_id > 1:
        older = ResourceVersion.objects.filter(resource=record, version_id=record.version_id - 1).first()
        previous = jsonio.loads(older.text) if older and older.text else None
    for subscription in subscriptions:
        if subscription.topic:
            topic = topics.get(subscription.topic)
            if topic is None or topic.resource_type != record.resource_type:
                continue  # the topic is gone (its subscriptions were off when it went)
            if not topic.triggered(previous, content):
                continue
        if subscription.criteria:
            params = parse_query_string(subscription.criteria)
            # Only this resource's index rows are read (within): the write holds the database's
            # one writer meanwhile, so this must not grow with every resource the criteria match.
            candidates = matching(
                node=node, resource_type=record.resource_type, params=params, strict=False, within=record.pk
            )
            if not candidates.exists():
                continue
        _event(subscription, record, content)


def _event(subscription: Subscription, record: Resource, content: dict) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(event_count=F("event_count") + 1)
    subscription.refresh_from_db(fields=["event_count"])
    event = SubscriptionEvent.objects.create(
        subscription=subscription,
        number=subscription.event_count,
        focus_type=record.resource_type,
        focus_id=record.logical_id,
        focus_version=record.version_id,
        timestamp=record.last_updated,
    )
    if subscription.topic:
        body = notification_text(
            subscription, "event-notification", [(event, record.text)], subscription.content
        )
        _notify(subscription, body)
    elif subscription.payload:  # R4: PUT the resource to [endpoint]/[type]/[id]
        url = f"{subscription.endpoint.rstrip('/')}/{record.resource_type}/{record.logical_id}"
        _enqueue(subscription, "subscription.event", record.text, method="PUT", url=url)
    else:  # R4 with no payload: a POST with no body
        _enqueue(subscription, "subscription.event", "")


def _notify(subscription: Subscription, body: str) -> None:
    """Queue an event notification, or add its event to the subscription's notification still
    waiting to go (numbers stay consecutive: the waiting one is the last of the subscription's
    queue)."""
    waiting = _waiting_notification(subscription)
    if waiting is None:
        _enqueue(subscription, "subscription.event", body, events=1)
        return
    waiting.body = notification_merge(waiting.body, body)
    waiting.context = {**waiting.context, "events": waiting.context["events"] + 1}
    waiting.save(update_fields=["body", "context"])


def _waiting_notification(subscription: Subscription) -> Message | None:
    """The last message of the subscription's queue, if it is an event notification no worker
    holds (a leased one is being sent as it is: an event added now would be marked delivered
    unsent), with room for another event. Locked, so a worker waits to claim it; one locked
    already is left alone (a new notification goes behind it) rather than waited for: a worker
    holding it may be waiting for this subscription's row, which this write has updated, and
    waiting would deadlock (PostgreSQL found one under the demo's scenario)."""
    waiting = Message.objects.filter(
        node=subscription.node_id, key=subscription.key, status=Message.Status.PENDING
    )
    newest = waiting.order_by("-pk").values_list("pk", flat=True).first()
    last = waiting.select_for_update(skip_locked=True).filter(pk=newest).first() if newest else None
    if (
        last is None
        or last.kind != "subscription.event"
        or last.leased_until is not None
        or not 0 < last.context.get("events", 0) < EVENTS_PER_NOTIFICATION
    ):
        return None
    return last


def _enqueue(
    subscription: Subscription,
    kind: str,
    body: str,
    *,
    method: str = "POST",
    url: str = "",
    events: int = 0,
) -> None:
    """Queue a delivery. To an endpoint in this node's directory it carries the token the
    directory holds for that partner, so subscribers need not put a secret in the resource."""
    partner = Partner.objects.filter(node=subscription.node, notification_url=subscription.endpoint).first()
    message_enqueue(
        node=subscription.node,
        partner=partner,
        key=subscription.key,
        kind=kind,
        method=method,
        url=url or subscription.endpoint,
        headers=subscription.headers,
        body=body,
        context={"subscription": subscription.pk, **({"events": events} if events else {})},
        **HOOKS,
    )


# What a subscription's deliveries tell about it.


def delivered(*, message: Message, answer) -> None:
    """A delivery arrived: the subscription is active (again)."""
    subscription = _locked(message)
    if subscription is None:
        return
    Subscription.objects.filter(pk=subscription.pk).update(last_sent=timezone.now())
    if subscription.status in (Subscription.Status.REQUESTED, Subscription.Status.ERROR):
        _status_set(subscription, Subscription.Status.ACTIVE, "")


def failed(*, message: Message, error: str, dead: bool) -> None:
    """A delivery failed (it will be retried unless dead): the subscription is in error."""
    subscription = _locked(message)
    if subscription is None or subscription.status == Subscription.Status.ERROR:
        return
    why = f"HTTP {message.response_status}" if message.response_status else error.split(":")[0]
    _status_set(subscription, Subscription.Status.ERROR, f"Delivery to the endpoint failed: {why}.")


def _locked(message: Message) -> Subscription | None:
    """The message's subscription, its resource locked first (as a client's update locks it),
    or None when it is gone or off."""
    subscription = Subscription.objects.filter(pk=message.context["subscription"]).first()
    if subscription is None:
        return None
    record = Resource.objects.select_for_update().get(pk=subscription.resource_id)
    subscription.refresh_from_db()
    if record.deleted or subscription.status == Subscription.Status.OFF:
        return None
    subscription.resource = record
    return subscription


def _status_set(subscription: Subscription, status: str, error: str) -> None:
    """Write the server's view of the subscription into its resource, keeping the rest as is."""
    record = subscription.resource
    content = {k: v for k, v in jsonio.loads(record.text).items() if k != "error"}
    content["status"] = status
    if error:
        content["error"] = error
    services.resource_update(
        node=subscription.node, resource_type="Subscription", logical_id=record.logical_id, content=content
    )


def heartbeats_send() -> int:
    """Queue a heartbeat for each active topic subscription quiet for its heartbeat period."""
    now, queued = timezone.now(), 0
    due = Subscription.objects.filter(
        status=Subscription.Status.ACTIVE, heartbeat_seconds__gt=0, resource__deleted=False
    ).exclude(topic="")
    for subscription in due.select_related("node", "resource"):
        if subscription.last_sent and subscription.last_sent > now - timedelta(
            seconds=subscription.heartbeat_seconds
        ):
            continue
        if Message.objects.filter(
            node=subscription.node, key=subscription.key, status=Message.Status.PENDING
        ).exists():
            continue
        _enqueue(subscription, "subscription.heartbeat", notification_text(subscription, "heartbeat"))
        queued += 1
    return queued
