"""Celery tasks: thin, each takes an id or nothing and calls a service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from exchange import expiry, services, subscriptions
from nodes.models import Node


@shared_task(ignore_result=True)
def deliver(message_id: int) -> None:
    services.message_deliver(message_id=message_id)


@shared_task(ignore_result=True)
def sweep() -> int:
    """Queue what is due in the outbox, and the heartbeats of quiet subscriptions."""
    return services.messages_sweep() + subscriptions.heartbeats_send()


@shared_task(ignore_result=True)
def expire_shared() -> int:
    """Expire what the shared records hold that was not dispensed in time."""
    now = timezone.now()
    return sum(
        expiry.broker_expire(node=node, now=now) for node in Node.objects.filter(kind=Node.Kind.BROKER)
    )
