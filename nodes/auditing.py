"""Every screen a node's member views, or acts on, leaves an AuditEvent at the node: once per
page view (a screen's own htmx poll is not a view), with the user, the screen, the outcome and
the patient or prescription it was about."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from fhirserver import audit
from fhirserver.nhs import PRESCRIPTION_ID_SYSTEM


def screen_audit(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        member = getattr(request, "member", None)
        match = request.resolver_match
        polled = request.method == "GET" and request.headers.get("HX-Request") == "true"
        if member is None or match is None or polled:
            return response
        kwargs = match.kwargs
        node = member.node
        audit.record(
            audit.Access(
                node_id=node.pk,
                node_ods=node.ods_code,
                node_name=node.name,
                node_revision=node.search_revision,
                kind="screen",
                subtype=match.url_name or "screen",
                action="R" if request.method in ("GET", "HEAD") else "U",
                status=response.status_code,
                agent=audit.user_agent(request.user),
                address=request.META.get("REMOTE_ADDR", ""),
                patients=_patients(request, kwargs),
                identifiers=[(PRESCRIPTION_ID_SYSTEM, kwargs["prescription_id"].upper())]
                if "prescription_id" in kwargs
                else [],
                query=request.META.get("QUERY_STRING", ""),
                description=f"{request.method} {request.path} as {member.get_role_display().lower()}",
            )
        )
        return response

    return middleware


def _patients(request: HttpRequest, kwargs: dict) -> list[str]:
    """The NHS number a screen was about: in its URL, or searched for or registered in its form."""
    given = kwargs.get("nhs_number") or request.GET.get("nhs_number") or request.POST.get("nhs_number") or ""
    digits = "".join(str(given).split())
    return [digits] if digits.isascii() and digits.isdigit() and len(digits) == 10 else []
