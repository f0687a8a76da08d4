from __future__ import annotations

from django.apps import AppConfig


class EngineConfig(AppConfig):
    """The guide's integration engine: between an organisation's own systems and the broker,
    relaying both ways and applying the organisation's rules; no clinical workflow of its own."""

    name = "engine"
