"""The prescriber's screens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.selectors import exchange_summary
from nodes.models import Node
from nodes.selectors import membership_for_user
from prescribing.selectors import prescriptions


@login_required
def prescriptions_page(request: HttpRequest, node: str) -> HttpResponse:
    here = membership_for_user(user=request.user, slug=node, kind=Node.Kind.PRESCRIBING).node
    context = {"node": here, "prescriptions": prescriptions(node=here), **exchange_summary(node=here)}
    return render(request, "prescribing/prescriptions.html", context)
