"""The exchange's screens: a node's messages and subscriptions, and at a broker its shared record."""

from __future__ import annotations

from django.urls import path

from exchange import screens

urlpatterns = [
    path("messages", screens.messages_page, name="messages"),
    path("messages/<int:message_id>", screens.message_page, name="message"),
    path("messages/<int:message_id>/requeue", screens.message_requeue_view, name="message-requeue"),
    path("subscriptions", screens.subscriptions_page, name="subscriptions"),
    path("shared-record", screens.shared_record_page, name="shared-record"),
]
