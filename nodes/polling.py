"""Screens that update themselves: htmx polls a named partial until nothing on it can change."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FINISHED = 286  # htmx stops polling on this status


def polled_render(
    request: HttpRequest, template: str, partial: str, context: dict, *, final: bool
) -> HttpResponse:
    """Render the page, or for an htmx poll just its partial, answered 286 once `final`."""
    if not request.htmx:
        return render(request, template, context)
    response = render(request, f"{template}#{partial}", context)
    if final:
        response.status_code = FINISHED
    return response
