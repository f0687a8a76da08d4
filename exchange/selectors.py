"""What a node's screens show of its exchange with other nodes."""

from __future__ import annotations

from django.db.models import QuerySet

from exchange.models import Message
from nodes.models import Node


def exchange_summary(*, node: Node) -> dict:
    """What every screen of a node shows of its exchange: undelivered and waiting messages."""
    return {"dead": messages_dead(node=node), "waiting": messages_waiting(node=node)}


def messages_dead(*, node: Node, limit: int = 20) -> QuerySet[Message]:
    """Return the node's newest messages that will not be retried (requeued from the admin)."""
    return Message.objects.filter(node=node, status=Message.Status.DEAD).order_by("-pk")[:limit]


def messages_waiting(*, node: Node) -> int:
    """Return how many of the node's messages are still to be delivered."""
    return Message.objects.filter(node=node, status=Message.Status.PENDING).count()
