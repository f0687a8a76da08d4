from __future__ import annotations

from celery import shared_task

from dispensing import expiry
from nodes.models import Node


@shared_task(ignore_result=True)
def expire() -> int:
    return sum(expiry.expiries_apply(node=node) for node in Node.objects.filter(kind=Node.Kind.DISPENSING))
