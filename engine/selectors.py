"""Reads for the engine's screens: what passed through it, what waits and what failed."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery

from engine.models import Connection, Relay
from exchange.models import Message, Partner
from nodes.models import Node

WAITING = Q(outcome=Relay.Outcome.QUEUED, message__status=Message.Status.PENDING)
FAILED = Q(outcome__in=[Relay.Outcome.REFUSED, Relay.Outcome.UNREACHABLE]) | Q(
    outcome=Relay.Outcome.QUEUED, message__status=Message.Status.DEAD
)
FORWARDED = Q(outcome=Relay.Outcome.PASSED) | Q(
    outcome=Relay.Outcome.QUEUED, message__status=Message.Status.DELIVERED
)
# The tabs of the traffic screen: (value, label, condition).
SHOWS = (
    ("", "All", Q()),
    ("waiting", "Waiting", WAITING),
    ("failed", "Failed", FAILED),
    ("forwarded", "Forwarded", FORWARDED),
)


@dataclass(frozen=True)
class Tab:
    show: str
    label: str
    count: int


def traffic_tabs(*, engine: Node) -> list[Tab]:
    relays = Relay.objects.filter(engine=engine)
    return [Tab(show, label, relays.filter(condition).count()) for show, label, condition in SHOWS]


def traffic(*, engine: Node, show: str = "") -> QuerySet[Relay]:
    """The engine's relays, newest first, filtered by one of SHOWS."""
    condition = next((c for s, _, c in SHOWS if s == show), Q())
    # A partner's API client is named by its ODS code: show the partner's name.
    partner = Partner.objects.filter(node=OuterRef("engine"), ods_code=OuterRef("sender")).values("name")[:1]
    return (
        Relay.objects.filter(engine=engine)
        .filter(condition)
        .select_related("connection", "destination", "message")
        .annotate(sender_name=Subquery(partner))
    )


def traffic_page(*, engine: Node, show: str = "", number=1, size: int = 50) -> Page:
    return Paginator(traffic(engine=engine, show=show), size).get_page(number)


def connections_at(*, engine: Node) -> QuerySet[Connection]:
    return Connection.objects.filter(engine=engine).select_related("client")
