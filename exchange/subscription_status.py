"""What a subscription says of itself: the SubscriptionStatus of its notifications (handshake,
heartbeat, event-notification), of $status (query-status) and of $events (query-event), in the
R4 Subscriptions Backport's Bundles."""

from __future__ import annotations

from django.conf import settings

from exchange.models import Subscription, SubscriptionEvent
from exchange.notifications import event_part, notification_bundle, status_parameters
from fhirserver import jsonio, medication
from fhirserver.models import ResourceVersion
from nodes.models import Node

BUSINESS_IDENTIFIERS = {
    "MedicationRequest": medication.ITEM_SYSTEM,
    "MedicationDispense": medication.DISPENSE_SYSTEM,
}


def status_bundle(*, subscription: Subscription) -> dict:
    """$status: a searchset of one SubscriptionStatus of type query-status."""
    status = _status(subscription, "query-status", [], "empty")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": status, "search": {"mode": "match"}}],
    }


def events_bundle(*, subscription: Subscription, since: int, until: int, content: str) -> str:
    """$events: the events numbered since..until, as a query-event history Bundle."""
    events = subscription.events.filter(number__gte=since, number__lte=until).order_by("number")
    return notification_text(subscription, "query-event", [(e, _version_text(e)) for e in events], content)


def notification_text(
    subscription: Subscription,
    kind: str,
    events: list[tuple[SubscriptionEvent, str]] = (),
    content: str = "empty",
) -> str:
    """Return a notification Bundle; events come with the text of the version each was about."""
    entries = []
    for event, text in events if content != "empty" else ():
        created = event.focus_version == 1
        entry = {
            "fullUrl": f"{_base(subscription.node)}/{event.focus_type}/{event.focus_id}",
            "request": {
                "method": "POST" if created else "PUT",
                "url": f"{event.focus_type}/{event.focus_id}",
            },
            "response": {"status": "201" if created else "200"},
        }
        if content == "full-resource":
            entry["resource"] = jsonio.RawJSON(text)
        entries.append(entry)
    status = _status(subscription, kind, events, content)
    url = f"Subscription/{subscription.resource.logical_id}/$status"
    return jsonio.dumps(notification_bundle(status, entries, status_url=url))


def notification_merge(earlier: str, later: str) -> str:
    """Return one event notification carrying the events of two, the earlier's first (Backport:
    several notification-events in one Bundle): the later's status, whose
    eventsSinceSubscriptionStart is the highest, and both's focus entries in the same order."""
    first, second = jsonio.loads(earlier), jsonio.loads(later)
    status = second["entry"][0]["resource"]["parameter"]
    events = [p for p in first["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    at = next(i for i, p in enumerate(status) if p["name"] == "notification-event")
    status[at:at] = events
    second["entry"][1:1] = first["entry"][1:]
    return jsonio.dumps(second)


def _status(
    subscription: Subscription, kind: str, events: list[tuple[SubscriptionEvent, str]], content: str = "empty"
) -> dict:
    """The SubscriptionStatus; with empty content its events name no focus (Backport IG)."""
    error = ""
    if subscription.status == Subscription.Status.ERROR:
        error = jsonio.loads(subscription.resource.text).get("error", "")
    return status_parameters(
        subscription=f"Subscription/{subscription.resource.logical_id}",
        topic=subscription.topic or f"{subscription.resource_type}?{subscription.criteria}",
        status=subscription.status,
        kind=kind,
        events_since=subscription.event_count,
        events=[
            event_part(
                number=event.number,
                timestamp=event.timestamp.isoformat(),
                focus=_focus(event, text) if content != "empty" else None,
            )
            for event, text in events
        ],
        error=error,
    )


def _focus(event: SubscriptionEvent, text: str) -> dict:
    """The focus reference, with the business identifier receivers look resources up by."""
    focus = {"reference": f"{event.focus_type}/{event.focus_id}", "type": event.focus_type}
    system = BUSINESS_IDENTIFIERS.get(event.focus_type)
    if system:
        found = [i for i in jsonio.loads(text).get("identifier", []) if i.get("system") == system]
        if found:
            focus["identifier"] = {"system": system, "value": found[0]["value"]}
    return focus


def _version_text(event: SubscriptionEvent) -> str:
    version = ResourceVersion.objects.filter(
        node_id=event.subscription.node_id,
        resource_type=event.focus_type,
        resource__logical_id=event.focus_id,
        version_id=event.focus_version,
    ).first()
    return version.text if version else "{}"


def _base(node: Node) -> str:
    return f"{settings.DMED_PUBLIC_URL}/{node.slug}/fhir"
