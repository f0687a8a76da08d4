"""Relaying through the engine. Reads, searches, conditional updates and a pharmacy's claim pass
straight through with the destination's answer as it came. A create or a notification is
passed through too when the destination answers at once; when it does not, the engine holds it
in its outbox and answers 202 Accepted with a Content-Location to poll: accepted means it will
arrive, once, in order. Each sending system's messages form one queue, so while some of its
messages wait, what it sends next waits behind them (and a synchronous call gets 503)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.models import Connection, Relay
from engine.rules import rules_apply
from exchange import http
from exchange.models import Attempt, Message, Partner
from exchange.remote import broker_for
from exchange.services import attempt_log, message_enqueue, partner_headers
from fhirserver import jsonio
from fhirserver.errors import FHIRError, Issue, operation_outcome
from nodes.models import ApiClient, Node

# What passes from the sender to the destination, and back.
SENT_HEADERS = (
    "content-type",
    "accept",
    "if-match",
    "if-none-exist",
    "if-none-match",
    "if-modified-since",
    "prefer",
)
ANSWER_HEADERS = ("location", "content-location", "etag", "last-modified", "content-type", "retry-after")


@dataclass
class Reply:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def outcome(cls, status: int, code: str, text: str, *, severity: str = "error", **headers: str) -> Reply:
        body = jsonio.dumps(operation_outcome([Issue(code, text, severity=severity)]))
        return cls(status, body, {"Content-Type": "application/fhir+json", **headers})


@dataclass
class Request:
    """What a sender asked the engine to relay."""

    engine: Node
    client: ApiClient | None
    method: str
    path: str  # after the FHIR base, or the notification's destination
    query: str
    headers: dict[str, str]
    body: bytes
    status_base: str  # where the sender polls a held message: {status_base}/{id}


def fhir_relay(request: Request) -> Reply:
    """Relay a FHIR interaction from a connected system to the engine's broker."""
    started = time.monotonic()
    connection = _connection(request)
    broker = broker_for(node=request.engine)
    url = f"{broker.fhir_base}/{request.path}".rstrip("/") + (f"?{request.query}" if request.query else "")
    body, notes = request.body, []
    if connection is not None and request.method in ("POST", "PUT") and request.body:
        body, notes = _ruled(request, connection, started)
    holdable = request.method == "POST" and _is_type(request.path) and not _is_claim(body)
    return _relay(request, connection, broker, url, body, notes, holdable=holdable, started=started)


def notification_relay(request: Request) -> Reply:
    """Relay a notification to a partner in the engine's directory (request.path:
    notifications/<its ODS code>)."""
    started = time.monotonic()
    ods_code = request.path.removeprefix("notifications/")
    destination = Partner.objects.filter(node=request.engine, ods_code=ods_code).first()
    if destination is None or not destination.notification_url:
        raise FHIRError(404, "not-found", f"{request.engine.name} relays no notifications to {ods_code!r}.")
    connection = Connection.objects.filter(client=request.client).first() if request.client else None
    return _relay(
        request,
        connection,
        destination,
        destination.notification_url,
        request.body,
        [],
        holdable=True,
        started=started,
    )


def _connection(request: Request) -> Connection | None:
    connection = (
        Connection.objects.filter(client=request.client, engine=request.engine)
        .select_related("engine")
        .first()
        if request.client is not None
        else None
    )
    if connection is None and settings.FHIR_AUTH_REQUIRED:
        raise FHIRError(
            403,
            "forbidden",
            f"Only the systems connected to {request.engine.name} use its FHIR API; an administrator "
            "connects a system in the admin (Engine, Connections).",
        )
    return connection


def _ruled(request: Request, connection: Connection, started: float) -> tuple[bytes, list[str]]:
    """Apply the connection's rules to the resource sent; a refusal is logged and raised."""
    try:
        content = jsonio.loads(request.body)
    except jsonio.JSONError:
        return request.body, []  # the destination answers what is not JSON
    parts = request.path.split("/")
    logical_id = parts[1] if request.method == "PUT" and len(parts) == 2 else None
    try:
        changed, notes = rules_apply(connection=connection, content=content, logical_id=logical_id)
    except FHIRError as exc:
        _log(
            request, connection, None, exc.status, Relay.Outcome.REFUSED, started, note=str(exc) or _said(exc)
        )
        raise
    return (jsonio.dumps(changed).encode() if notes else request.body), notes


def _said(exc: FHIRError) -> str:
    return " ".join(issue.diagnostics for issue in exc.issues)


def _is_type(path: str) -> bool:
    return bool(path) and "/" not in path and not path.startswith(("$", "_"))


def _is_claim(body: bytes) -> bool:
    """A pharmacy starting to dispense: the broker's answer (taken, or held by another) is
    what the pharmacist waits for, so it is never held to forward later."""
    try:
        content = jsonio.loads(body)
    except jsonio.JSONError:
        return False
    return (
        isinstance(content, dict)
        and content.get("resourceType") == "MedicationDispense"
        and (content.get("status") == "in-progress")
    )


def _relay(
    request: Request,
    connection: Connection | None,
    destination: Partner,
    url: str,
    body: bytes,
    notes: list[str],
    *,
    holdable: bool,
    started: float,
) -> Reply:
    key = queue_key(request.client)
    behind = Message.objects.filter(node=request.engine, key=key, status=Message.Status.PENDING).exists()
    headers = partner_headers(
        destination, {k: v for k, v in request.headers.items() if k.lower() in SENT_HEADERS}
    )
    log = {"connection": connection, "destination": destination, "started": started, "note": " ".join(notes)}
    if behind and holdable:
        return _hold(request, destination, url, headers, body, log=log)
    if behind:
        _log(request, connection, destination, 503, Relay.Outcome.BEHIND, started, note=log["note"])
        return Reply.outcome(
            503,
            "transient",
            f"{request.engine.name} is still forwarding earlier messages from this system; "
            "ask again shortly.",
            **{"Retry-After": "1"},
        )
    answer = http.send(request.method, url, headers=headers, body=body, wait=settings.ENGINE_WAIT_SECONDS)
    if holdable and answer.retryable:
        return _hold(request, destination, url, headers, body, log=log, tried=answer)
    attempt_log(node_id=request.engine.pk, method=request.method, url=url, answer=answer)
    if answer.status is None:
        timed_out = "timeout" in answer.error.lower()
        status = 504 if timed_out else 502
        _log(request, connection, destination, status, Relay.Outcome.UNREACHABLE, started, note=answer.error)
        return Reply.outcome(
            status,
            "timeout" if timed_out else "transient",
            f"{destination.name} could not be reached: {answer.error}",
        )
    _log(request, connection, destination, answer.status, Relay.Outcome.PASSED, started, note=log["note"])
    return Reply(answer.status, answer.body, _answer_headers(answer.headers))


def queue_key(client: ApiClient | None) -> str:
    """One outbox queue per sending system: its messages leave in the order they came."""
    return f"from-{client.pk if client else 'anyone'}"


def _hold(
    request: Request, destination: Partner, url: str, headers: dict, body: bytes, *, log: dict, tried=None
) -> Reply:
    """Keep the message to forward, counting a first try already made, and answer 202."""
    with transaction.atomic():
        message = message_enqueue(
            node=request.engine,
            partner=destination,
            key=queue_key(request.client),
            kind="relay.notify" if destination.notification_url == url else f"relay.{request.method.lower()}",
            method=request.method,
            url=url,
            headers=headers,
            body=body.decode(),
            on_success="engine.relay.forwarded",
            context={"client": request.client.pk if request.client else None},
        )
        if tried is not None:
            attempt_log(
                node_id=request.engine.pk, method=request.method, url=url, answer=tried, message=message
            )
            delay = settings.EXCHANGE_RETRY_BASE_SECONDS
            Message.objects.filter(pk=message.pk).update(
                attempts=1,
                last_error=tried.problem[:2000],
                response_status=tried.status,
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
            )
            message.refresh_from_db()
        _log(
            request,
            log["connection"],
            destination,
            202,
            Relay.Outcome.QUEUED,
            log["started"],
            note=log["note"],
            message=message,
        )
    return _pending_reply(message, f"{request.status_base}/{message.pk}")


def forwarded(*, message: Message, answer: http.Answer) -> None:
    """The destination took a held message: keep its answer for the sender's poll."""
    message.context["answer"] = {
        "status": answer.status,
        "headers": _answer_headers(answer.headers),
        "body": answer.body,
    }


def relayed_status(*, engine: Node, client: ApiClient | None, message_id: int, here: str) -> Reply:
    """What became of a held message, for the system that sent it: 202 while it waits, then the
    destination's answer as it came (or, if the engine gave up, why)."""
    message = Message.objects.filter(node=engine, pk=message_id).select_related("partner").first()
    if message is None or message.context.get("client") != (client.pk if client else None):
        raise FHIRError(404, "not-found", f"{engine.name} holds no message {message_id} from this system.")
    if message.status == Message.Status.PENDING:
        return _pending_reply(message, here)
    if message.status == Message.Status.DELIVERED:
        answer = message.context.get("answer", {})
        return Reply(answer.get("status", 200), answer.get("body", ""), answer.get("headers", {}))
    last = Attempt.objects.filter(message=message).order_by("-number", "-pk").first()
    if last is not None and last.status_code and 400 <= last.status_code < 500:
        try:
            jsonio.loads(last.error)
            return Reply(last.status_code, last.error, {"Content-Type": "application/fhir+json"})
        except jsonio.JSONError:
            return Reply.outcome(last.status_code, "processing", message.last_error)
    to = message.partner.name if message.partner else "its destination"
    return Reply.outcome(
        502 if message.response_status else 504,
        "transient" if message.response_status else "timeout",
        f"{engine.name} gave up forwarding this to {to} after {message.attempts} attempt(s): "
        f"{message.last_error}. Its administrator can requeue it.",
    )


def _pending_reply(message: Message, here: str) -> Reply:
    wait = max(1, int((message.next_attempt_at - timezone.now()).total_seconds()) + 1)
    to = message.partner.name if message.partner else "its destination"
    tried = (
        f"; {message.attempts} attempt(s) so far, the last: {message.last_error}" if message.attempts else ""
    )
    return Reply.outcome(
        202,
        "informational",
        f"Accepted: {message.node.name} holds this and forwards it to {to}{tried}. "
        "Poll this location for the answer.",
        severity="information",
        **{"Content-Location": here, "Retry-After": str(wait)},
    )


def _answer_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() in ANSWER_HEADERS}


def _log(
    request: Request,
    connection: Connection | None,
    destination: Partner | None,
    status: int,
    outcome: str,
    started: float,
    *,
    note: str = "",
    message: Message | None = None,
) -> None:
    Relay.objects.create(
        engine=request.engine,
        sender=request.client.name if request.client else "",
        connection=connection,
        destination=destination,
        method=request.method,
        path=(request.path + (f"?{request.query}" if request.query else ""))[:1000],
        status=status,
        outcome=outcome,
        note=note,
        message=message,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
