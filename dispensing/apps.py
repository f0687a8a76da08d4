from __future__ import annotations

from django.apps import AppConfig


class DispensingConfig(AppConfig):
    """Pharmacist screens and the dispensing workflow."""

    name = "dispensing"
