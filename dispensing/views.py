"""The pharmacist's screens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dispensing.selectors import worklist_rows
from exchange.selectors import messages_dead, messages_waiting
from nodes.models import Node
from nodes.selectors import membership_for_user


@login_required
def worklist_page(request: HttpRequest, node: str) -> HttpResponse:
    membership = membership_for_user(user=request.user, slug=node)
    if membership.node.kind != Node.Kind.DISPENSING:
        raise Http404("Not a dispensing node")
    context = {
        "node": membership.node,
        "worklist": worklist_rows(node=membership.node),
        "dead": messages_dead(node=membership.node),
        "waiting": messages_waiting(node=membership.node),
    }
    return render(request, "dispensing/worklist.html", context)
