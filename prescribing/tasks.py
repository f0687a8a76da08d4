from __future__ import annotations

from celery import shared_task

from nodes.models import Node
from prescribing import polling, repeats, services


@shared_task(ignore_result=True)
def poll_dispensers() -> int:
    return polling.dispensers_poll()


@shared_task(ignore_result=True)
def expire() -> int:
    return sum(services.expiries_apply(node=node) for node in Node.objects.filter(kind=Node.Kind.PRESCRIBING))


@shared_task(ignore_result=True)
def release_repeats() -> int:
    """Release the repeat dispensing issues that are due."""
    return sum(repeats.repeats_release(node=node) for node in Node.objects.filter(kind=Node.Kind.PRESCRIBING))
