"""The exchange's screens: what a node sent and received, and at a broker its shared record."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.selectors import exchange_summary
from nodes.access import Role, member_view
from nodes.models import Node

EVERYONE = (Role.PRESCRIBER, Role.PHARMACIST, Role.ADMINISTRATOR)


@member_view("", see=EVERYONE, act=(Role.ADMINISTRATOR,))
def messages_page(request: HttpRequest, node: Node) -> HttpResponse:
    return render(request, "exchange/messages.html", {"node": node, **exchange_summary(node=node)})


@member_view(Node.Kind.BROKER, see=EVERYONE)
def shared_record_page(request: HttpRequest, node: Node) -> HttpResponse:
    return render(request, "exchange/messages.html", {"node": node, **exchange_summary(node=node)})
