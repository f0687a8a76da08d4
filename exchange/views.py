"""The notification endpoint every node exposes at /<node>/notifications."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from exchange.notifications import notification_receive, sender_of
from fhirserver.errors import Issue, operation_outcome
from fhirserver.views import FHIRView


class NotificationView(FHIRView):
    def post(self, request: Request, node: str) -> Response:
        sender = sender_of(node=self.node, client=request.auth)
        outcome = notification_receive(node=self.node, sender=sender, bundle=self.resource_body(request))
        return Response(
            operation_outcome([Issue("informational", f"Notification {outcome}.", severity="information")])
        )
