from __future__ import annotations

from django.apps import AppConfig


class PrescribingConfig(AppConfig):
    """Prescriber screens and the prescribing workflow."""

    name = "prescribing"
