"""The pharmacist's screens."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dispensing.selectors import worklist_rows
from exchange.selectors import exchange_summary
from nodes.access import Role, member_view
from nodes.models import Node

pharmacy_view = member_view(Node.Kind.DISPENSING, see=(Role.ADMINISTRATOR,), act=(Role.PHARMACIST,))


@pharmacy_view
def worklist_page(request: HttpRequest, node: Node) -> HttpResponse:
    context = {"node": node, "worklist": worklist_rows(node=node), **exchange_summary(node=node)}
    return render(request, "dispensing/worklist.html", context)


@pharmacy_view
def find_page(request: HttpRequest, node: Node) -> HttpResponse:
    return render(request, "dispensing/worklist.html", {"node": node, "worklist": []})


@pharmacy_view
def dispensed_page(request: HttpRequest, node: Node) -> HttpResponse:
    return render(request, "dispensing/worklist.html", {"node": node, "worklist": []})
