"""The one outbound HTTP helper for node-to-node calls: always a timeout, and a verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests
import simplejson
from django.conf import settings

# 4xx answers worth another try: a timeout, a conflict that may clear, a rate limit.
RETRYABLE_4XX = {408, 409, 429}


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: str
    headers: dict[str, str]
    duration_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Connection failures, timeouts, 5xx and 408/409/429 are transient; other answers final
        (status 0: the request could not be sent at all)."""
        return self.status is None or self.status >= 500 or self.status in RETRYABLE_4XX

    @property
    def problem(self) -> str:
        """What went wrong, as people read it: the connection error, or the status with the
        OperationOutcome's diagnostics (else the start of the body)."""
        if self.error:
            return self.error
        return f"HTTP {self.status}: {outcome_diagnostics(self.body) or self.body[:500]}"


def outcome_diagnostics(body: str) -> str:
    """Return the diagnostics of an OperationOutcome's issues ("" when the body is not one)."""
    try:
        outcome = simplejson.loads(body)
        issues = outcome["issue"] if outcome.get("resourceType") == "OperationOutcome" else []
        return " ".join(str(issue["diagnostics"]) for issue in issues if issue.get("diagnostics"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""


_session = requests.Session()


def send(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: str | bytes = "", wait: float = 0
) -> Answer:
    """Send one request and return what came back, never raising for network trouble (wait:
    seconds to wait for the answer, when shorter than the exchange's read timeout)."""
    started = time.monotonic()
    read_timeout = min(wait, settings.EXCHANGE_READ_TIMEOUT) if wait else settings.EXCHANGE_READ_TIMEOUT
    try:
        response = _session.request(
            method,
            url,
            headers=headers or {},
            data=(body.encode() if isinstance(body, str) else body) or None,
            timeout=(settings.EXCHANGE_CONNECT_TIMEOUT, read_timeout),
        )
    except requests.RequestException as exc:
        return Answer(None, "", {}, _ms(started), f"{type(exc).__name__}: {exc}"[:2000])
    except (ValueError, UnicodeError) as exc:  # a request that cannot be sent at all: final
        return Answer(0, "", {}, _ms(started), f"Not sendable: {type(exc).__name__}: {exc}"[:2000])
    return Answer(response.status_code, response.text, dict(response.headers), _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
