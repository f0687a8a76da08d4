"""FHIR errors: one exception type, and the one DRF handler that turns errors into OperationOutcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

log = logging.getLogger(__name__)


@dataclass
class Issue:
    """One OperationOutcome.issue."""

    code: str
    diagnostics: str
    expression: list[str] = field(default_factory=list)
    severity: str = "error"
    details: dict | None = None  # a coding, e.g. an EPS cancellation outcome

    def as_fhir(self) -> dict:
        issue: dict = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.details:
            issue["details"] = {"coding": [self.details]}
        if self.expression:
            issue["expression"] = self.expression
        return issue


class FHIRError(Exception):
    """An error answered with an HTTP status and an OperationOutcome."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        expression: list[str] | None = None,
        *,
        issues: list[Issue] | None = None,
        details: dict | None = None,
    ) -> None:
        self.status = status
        self.issues = issues or [Issue(code, diagnostics, expression or [], details=details)]
        super().__init__(diagnostics)


def operation_outcome(issues: list[Issue]) -> dict:
    """Return an OperationOutcome resource for these issues."""
    return {"resourceType": "OperationOutcome", "issue": [issue.as_fhir() for issue in issues]}


# DRF's own exceptions, mapped to a FHIR issue code.
_DRF_CODES = {
    exceptions.ParseError: "invalid",
    exceptions.UnsupportedMediaType: "not-supported",
    exceptions.NotAcceptable: "not-supported",
    exceptions.MethodNotAllowed: "not-supported",
    exceptions.NotFound: "not-found",
    exceptions.NotAuthenticated: "login",
    exceptions.AuthenticationFailed: "login",
    exceptions.PermissionDenied: "forbidden",
    exceptions.Throttled: "throttled",
}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Answer every error raised in a FHIR view with an OperationOutcome."""
    if isinstance(exc, FHIRError):
        return Response(operation_outcome(exc.issues), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found")
    if isinstance(exc, exceptions.APIException):
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), "processing")
        issue = Issue(code, _detail_text(exc.detail))
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(operation_outcome([issue]), status=exc.status_code, headers=headers)
    log.exception("Unhandled error in a FHIR view")
    issue = Issue("exception", "The server met an unexpected error; nothing was stored.")
    return Response(operation_outcome([issue]), status=500)


def _detail_text(detail: object) -> str:
    if isinstance(detail, list):
        return "; ".join(_detail_text(item) for item in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_detail_text(value)}" for key, value in detail.items())
    return str(detail)
