"""The prescriber's screens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.selectors import messages_dead, messages_waiting
from nodes.models import Node
from nodes.selectors import membership_for_user
from prescribing.selectors import prescriptions


@login_required
def prescriptions_page(request: HttpRequest, node: str) -> HttpResponse:
    membership = membership_for_user(user=request.user, slug=node)
    if membership.node.kind != Node.Kind.PRESCRIBING:
        raise Http404("Not a prescribing node")
    context = {
        "node": membership.node,
        "prescriptions": prescriptions(node=membership.node),
        "dead": messages_dead(node=membership.node),
        "waiting": messages_waiting(node=membership.node),
    }
    return render(request, "prescribing/prescriptions.html", context)
