"""Site-wide error pages: FHIR paths answer with an OperationOutcome, never an HTML page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.defaults import page_not_found, permission_denied, server_error

from fhirserver.errors import Issue, operation_outcome
from fhirserver.jsonio import dumps


def _is_fhir(request: HttpRequest) -> bool:
    parts = request.path.strip("/").split("/")
    return len(parts) >= 2 and parts[1] == "fhir"


def _outcome(status: int, code: str, text: str) -> HttpResponse:
    body = dumps(operation_outcome([Issue(code, text)]))
    return HttpResponse(body, status=status, content_type="application/fhir+json")


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_fhir(request):
        return _outcome(403, "forbidden", "This token may not do that at this node.")
    return permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_fhir(request):
        return _outcome(404, "not-found", f"Nothing is served at {request.path}.")
    return page_not_found(request, exception)


def error(request: HttpRequest) -> HttpResponse:
    if _is_fhir(request):
        return _outcome(500, "exception", "The server met an unexpected error; nothing was stored.")
    return server_error(request)
