"""The prescriber's screens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.selectors import exchange_summary
from nodes.access import Role, member_view
from nodes.models import Node
from prescribing.selectors import prescriptions

prescriber_view = member_view(Node.Kind.PRESCRIBING, see=(Role.ADMINISTRATOR,), act=(Role.PRESCRIBER,))


@prescriber_view
def prescriptions_page(request: HttpRequest, node: Node) -> HttpResponse:
    context = {"node": node, "prescriptions": prescriptions(node=node), **exchange_summary(node=node)}
    return render(request, "prescribing/prescriptions.html", context)
