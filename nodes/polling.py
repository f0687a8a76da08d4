"""Screens that update themselves: htmx polls a named partial until nothing on it can change.

Each poll says which version of the partial it shows (`seen`, a digest of its content); the
server answers 204 (htmx swaps nothing) while that is still the current one, so a focused link
or button is not replaced under the user every few seconds; 286 stops the polling for good."""

from __future__ import annotations

import hashlib

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

FINISHED = 286  # htmx stops polling on this status
UNCHANGED = 204  # htmx swaps nothing


def polled_render(
    request: HttpRequest, template: str, partial: str, context: dict, *, final: bool
) -> HttpResponse:
    """Render the page, or for an htmx poll just its partial: 204 while the poller has it as it
    is, 286 (with the last version) once `final`. Templates put `seen` in the poll's URL."""
    # The digest leaves out what differs at every render though nothing changed (a form's masked CSRF token).
    shown = render_to_string(
        f"{template}#{partial}", {**context, "seen": "", "csrf_token": ""}, request=request
    )
    seen = hashlib.sha256(shown.encode()).hexdigest()[:16]
    if not request.htmx:
        return render(request, template, {**context, "seen": seen})
    if request.GET.get("seen") == seen and not final:
        return HttpResponse(status=UNCHANGED)
    response = render(request, f"{template}#{partial}", {**context, "seen": seen})
    if final:
        response.status_code = FINISHED
    return response
