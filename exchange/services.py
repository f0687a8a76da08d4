"""The outbox: messages written with the change that causes them, delivered after commit."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from exchange import http
from exchange.models import Attempt, Message, Partner
from fhirserver.errors import FHIRError
from nodes.models import Node

log = logging.getLogger(__name__)

FHIR_HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def message_enqueue(
    *,
    node: Node,
    key: str,
    kind: str,
    method: str,
    url: str,
    partner: Partner | None = None,
    body: str = "",
    headers: dict[str, str] | None = None,
    on_success: str = "",
    on_failure: str = "",
    context: dict | None = None,
) -> Message:
    """Write a message in the caller's transaction; it is sent once that commits."""
    now = timezone.now()
    message = Message.objects.create(
        node=node,
        partner=partner,
        key=key,
        kind=kind,
        method=method,
        url=url,
        headers=partner_headers(partner, headers),
        body=body,
        on_success=on_success,
        on_failure=on_failure,
        context=context or {},
        next_attempt_at=now,
        expires_at=now + timedelta(seconds=settings.EXCHANGE_MAX_AGE_SECONDS),
        queued_at=now,
    )
    transaction.on_commit(lambda: _schedule(message.pk))
    return message


def partner_headers(partner: Partner | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of a request to a partner: FHIR JSON, its bearer token, then any others."""
    headers = dict(FHIR_HEADERS)
    if partner is not None and partner.token:
        headers["Authorization"] = f"Bearer {partner.token}"
    return headers | (extra or {})


def attempt_log(*, node_id: int, method: str, url: str, answer: http.Answer, message=None, number=1) -> None:
    """Record one try at a partner: what was sent and what came back."""
    Attempt.objects.create(
        message=message,
        node_id=node_id,
        number=number,
        method=method,
        url=url,
        status_code=answer.status,
        duration_ms=answer.duration_ms,
        error=answer.error or ("" if answer.ok else answer.body[:2000]),
    )


def _schedule(message_id: int) -> None:
    from exchange.tasks import deliver

    try:
        deliver.delay(message_id)
    except Exception:  # the broker is down: beat's sweep will find the row, as never queued
        log.warning("Could not queue message %s; the sweep will deliver it", message_id, exc_info=True)
        Message.objects.filter(pk=message_id).update(queued_at=None)


# How many messages of one key a task delivers in a row before handing the rest to another task.
IN_A_ROW = 50


def message_deliver(*, message_id: int) -> None:
    """Try once to deliver a message, if it is due and first in line for its key; once it is
    delivered, go on with the next of its key (a queue of one prescription's or one
    subscription's messages drains without a round trip through the broker for each)."""
    for _ in range(IN_A_ROW):
        message = _deliver_once(message_id)
        following = _following(message) if message and message.status == Message.Status.DELIVERED else None
        if following is None:
            return
        message_id = following
    _schedule(message_id)


def _deliver_once(message_id: int) -> Message | None:
    message = _claim(message_id)
    if message is None:
        return None
    answer = http.send(message.method, message.url, headers=message.headers, body=message.body)
    with transaction.atomic():
        attempt_log(
            node_id=message.node_id,
            method=message.method,
            url=message.url,
            answer=answer,
            message=message,
            number=message.attempts + 1,
        )
        # Meanwhile the message may have been stopped (its subscription turned off): keep that.
        current = Message.objects.select_for_update().get(pk=message.pk)
        message.attempts = current.attempts + 1
        message.leased_until = None
        message.response_status = answer.status
        if current.status != Message.Status.PENDING:
            message.status, message.last_error = current.status, current.last_error
        elif answer.status == 202 and message.context.get(AWAITS):
            _retry_later(message, "Accepted; the answer is not in yet.", at_most=_retry_after(answer))
        elif answer.status == 202 and answer.headers.get("Content-Location"):
            _await(message, answer)
        elif answer.ok:
            _succeed(message, answer)
        elif answer.retryable:
            _retry_later(message, answer.problem)
        else:
            _die(message, answer.problem)
        message.save()
    return message


def _claim(message_id: int) -> Message | None:
    """Lease the message to this worker, so a second worker leaves it alone until the lease ends."""
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.status != Message.Status.PENDING:
            return None
        if message.next_attempt_at > now or (message.leased_until and message.leased_until > now):
            return None
        earlier = Message.objects.filter(
            node_id=message.node_id, key=message.key, status=Message.Status.PENDING, pk__lt=message.pk
        )
        if earlier.exists():
            return None  # order: the earlier message goes first and schedules this one after it
        message.leased_until = now + timedelta(seconds=settings.EXCHANGE_LEASE_SECONDS)
        message.save(update_fields=["leased_until"])
    return message


# A message polling for the answer to another (context: the other's id).
AWAITS = "awaits"


def _await(message: Message, answer: http.Answer) -> None:
    """An intermediary (an integration engine) took the message and will forward it: the
    message is delivered to it, and its answer is polled at the Content-Location it gave. The
    poll keeps the message's key, so what follows waits for the answer, in order."""
    message.status = Message.Status.DELIVERED
    message.delivered_at = timezone.now()
    message.last_error = ""
    message_enqueue(
        node=message.node,
        partner=message.partner,
        key=message.key,
        kind=f"{message.kind}.await",
        method="GET",
        url=answer.headers["Content-Location"],
        on_success=message.on_success,
        on_failure=message.on_failure,
        context={**message.context, AWAITS: message.pk},
    )


def _retry_after(answer: http.Answer) -> float | None:
    value = answer.headers.get("Retry-After", "")
    return float(value) if value.isascii() and value.isdigit() else None


def _answered(message: Message) -> Message:
    """The message the handlers wait on: the one a poll awaits the answer to, else itself."""
    if not message.context.get(AWAITS):
        return message
    original = Message.objects.get(pk=message.context[AWAITS])
    original.response_status = message.response_status
    return original


def _succeed(message: Message, answer: http.Answer) -> None:
    if message.on_success:
        try:
            with transaction.atomic():
                import_string(message.on_success)(message=_answered(message), answer=answer)
        except FHIRError as exc:
            _die(message, f"Delivered, but the answer could not be used: {exc}")
            return
        except Exception as exc:  # a fault of ours: the message is dead, visibly, not retried forever
            log.exception("Message %s: its on_success failed", message.pk)
            _die(message, f"Delivered, but handling the answer failed: {type(exc).__name__}: {exc}")
            return
    message.status = Message.Status.DELIVERED
    message.delivered_at = timezone.now()
    message.last_error = ""


def _retry_later(message: Message, error: str, *, at_most: float | None = None) -> None:
    now = timezone.now()
    message.last_error = error[:2000]
    if now >= message.expires_at:
        _die(message, error)
        return
    _failed(message, dead=False)
    delay = min(
        settings.EXCHANGE_RETRY_BASE_SECONDS * 2 ** (message.attempts - 1),
        settings.EXCHANGE_RETRY_CAP_SECONDS,
    ) * random.uniform(0.5, 1.5)
    if at_most is not None:  # the partner said when to ask again
        delay = min(delay, at_most)
    message.next_attempt_at = now + timedelta(seconds=delay)


def _die(message: Message, error: str) -> None:
    message.status = Message.Status.DEAD
    message.last_error = error[:2000]
    _failed(message, dead=True)


def _failed(message: Message, *, dead: bool) -> None:
    """Tell the service that wanted the message of a failed attempt (say, a refused
    cancellation, or a subscription whose endpoint is down)."""
    if not message.on_failure:
        return
    try:
        with transaction.atomic():
            import_string(message.on_failure)(message=_answered(message), error=message.last_error, dead=dead)
    except Exception:  # the failure stands; what it should have told is in the log
        log.exception("Message %s: its on_failure failed", message.pk)


def _following(message: Message) -> int | None:
    """Return the next pending message of the same key, if any."""
    return (
        Message.objects.filter(node_id=message.node_id, key=message.key, status=Message.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def messages_sweep() -> int:
    """Queue every message that is due, first in line for its key and with no task that will
    send it; return how many. A message's task may still be waiting in Celery's queue behind
    others: queuing it again at every sweep would add a task a message a sweep while the worker
    is behind, and the worker fall further behind (1,000 prescriptions at once did that: 15,000
    tasks waited). So a message is queued again only when it was never queued (or queueing
    failed), came due after it was (a retry), lost its worker (its lease ran out), or was queued
    EXCHANGE_REQUEUE_SECONDS ago (its task lost with a broker)."""
    now = timezone.now()
    needs_a_task = (
        Q(queued_at__isnull=True)
        | Q(queued_at__lt=F("next_attempt_at"))
        | Q(leased_until__isnull=False)  # pending and not leased now: its lease ran out
        | Q(queued_at__lt=now - timedelta(seconds=settings.EXCHANGE_REQUEUE_SECONDS))
    )
    due = (
        Message.objects.filter(needs_a_task, status=Message.Status.PENDING, next_attempt_at__lte=now)
        .exclude(leased_until__gt=now)
        .order_by("pk")
        .values_list("pk", "node_id", "key")[: settings.EXCHANGE_SWEEP_BATCH]
    )
    seen: set[tuple[int, str]] = set()
    chosen = []
    for pk, node_id, key in due:
        if (node_id, key) not in seen:
            seen.add((node_id, key))
            chosen.append(pk)
    # A lease that ran out is cleared with it (not one a worker has just taken meanwhile).
    Message.objects.filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now), pk__in=chosen).update(
        queued_at=now, leased_until=None
    )
    for pk in chosen:
        _schedule(pk)
    return len(chosen)


@transaction.atomic
def message_requeue(*, message: Message) -> None:
    """Give a dead message a fresh life: due now, retried again for the full period."""
    now = timezone.now()
    message.status = Message.Status.PENDING
    message.next_attempt_at = now
    message.expires_at = now + timedelta(seconds=settings.EXCHANGE_MAX_AGE_SECONDS)
    message.leased_until = None
    message.queued_at = now
    message.save()
    transaction.on_commit(lambda: _schedule(message.pk))
