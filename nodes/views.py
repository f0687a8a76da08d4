from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from fhirserver.selectors import resource_counts
from nodes.selectors import membership_for_user, nodes_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "nodes/home.html", {"nodes": nodes_for_user(user=request.user)})


@login_required
def node_home(request: HttpRequest, node: str) -> HttpResponse:
    membership = membership_for_user(user=request.user, slug=node)
    context = {
        "node": membership.node,
        "membership": membership,
        "fhir_base": request.build_absolute_uri(f"/{membership.node.slug}/fhir"),
        "counts": resource_counts(node=membership.node),
    }
    return render(request, "nodes/node_home.html", context)
