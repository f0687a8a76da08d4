"""The pharmacist's screens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dispensing.selectors import worklist_rows
from exchange.selectors import exchange_summary
from nodes.models import Node
from nodes.selectors import membership_for_user


@login_required
def worklist_page(request: HttpRequest, node: str) -> HttpResponse:
    here = membership_for_user(user=request.user, slug=node, kind=Node.Kind.DISPENSING).node
    context = {"node": here, "worklist": worklist_rows(node=here), **exchange_summary(node=here)}
    return render(request, "dispensing/worklist.html", context)
