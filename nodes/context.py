"""What every screen's template may use."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def screens(request: HttpRequest) -> dict:
    """The polling interval of screens that update themselves, and the member (if any)."""
    return {"poll_ms": settings.SCREEN_POLL_MILLISECONDS, "member": getattr(request, "member", None)}
