"""Celery tasks: thin, each takes an id or nothing and calls a service."""

from __future__ import annotations

from celery import shared_task

from exchange import services, subscriptions


@shared_task(ignore_result=True)
def deliver(message_id: int) -> None:
    services.message_deliver(message_id=message_id)


@shared_task(ignore_result=True)
def sweep() -> int:
    """Queue what is due in the outbox, and the heartbeats of quiet subscriptions."""
    return services.messages_sweep() + subscriptions.heartbeats_send()
