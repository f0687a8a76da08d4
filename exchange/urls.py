"""The exchange's screens: a node's messages, and at a broker its shared record."""

from __future__ import annotations

from django.urls import path

from exchange import screens

urlpatterns = [
    path("messages", screens.messages_page, name="messages"),
    path("shared-record", screens.shared_record_page, name="shared-record"),
]
