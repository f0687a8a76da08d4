"""The notification endpoint every node exposes at /<node>/notifications."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from exchange.models import Subscription
from exchange.notifications import notification_parse, notification_receive, sender_of
from exchange.subscription_status import events_bundle, status_bundle
from exchange.subscriptions import CONTENTS
from fhirserver.errors import FHIRError, Issue, operation_outcome
from fhirserver.scopes import Need
from fhirserver.views import FHIRView

EVENTS_PAGE = 1000


class NotificationView(FHIRView):
    def post(self, request: Request, node: str) -> Response:
        sender = sender_of(node=self.node, client=request.auth)
        note = notification_parse(self.resource_body(request))
        # A notification brings (or announces) a version of its focus to store here.
        self.allow([Need(focus_type, "c") for focus_type in note.focus_types])
        outcome = notification_receive(node=self.node, sender=sender, note=note)
        return Response(
            operation_outcome([Issue("informational", f"Notification {outcome}.", severity="information")])
        )


class SubscriptionOperationView(FHIRView):
    def subscription(self, logical_id: str) -> Subscription:
        found = Subscription.objects.filter(
            node=self.node, resource__logical_id=logical_id, resource__deleted=False
        ).select_related("resource", "node")
        if not found:
            raise FHIRError(404, "not-found", f"Subscription/{logical_id} is not known here.")
        return found[0]


class SubscriptionStatusView(SubscriptionOperationView):
    """Subscription/[id]/$status (R4 Subscriptions Backport)."""

    def get(self, request: Request, node: str, logical_id: str) -> Response:
        return Response(status_bundle(subscription=self.subscription(logical_id)))


class SubscriptionEventsView(SubscriptionOperationView):
    """Subscription/[id]/$events?eventsSinceNumber=&eventsUntilNumber=&content= (Backport)."""

    def get(self, request: Request, node: str, logical_id: str) -> Response:
        subscription = self.subscription(logical_id)
        until = _number(request, "eventsUntilNumber", subscription.event_count)
        since = _number(request, "eventsSinceNumber", max(1, until - EVENTS_PAGE + 1))
        if until - since >= EVENTS_PAGE:
            raise FHIRError(400, "too-costly", f"Ask for at most {EVENTS_PAGE} events at a time.")
        content = request.query_params.get("content") or subscription.content or "id-only"
        if content not in CONTENTS:
            raise FHIRError(400, "invalid", f"content is one of {', '.join(CONTENTS)}.", ["content"])
        return Response(events_bundle(subscription=subscription, since=since, until=until, content=content))


def _number(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise FHIRError(400, "invalid", f"{name} is an event number, not {raw!r}.", [name])
    return int(raw)
