from __future__ import annotations

from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    """How nodes talk: directory and routes, outbox and delivery, notifications."""

    name = "exchange"
