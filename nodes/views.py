from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from fhirserver.selectors import resource_counts
from nodes.access import Role, member_view
from nodes.audit_trail import AuditSearchForm, audit_trail
from nodes.selectors import membership_for_user, nodes_for_user

# Where a member of each kind of node starts.
START = {
    "prescribing": "patients",
    "dispensing": "worklist",
    "broker": "shared-record",
    "integration-engine": "engine-traffic",
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The member's systems; a member of one goes straight to where its work starts."""
    nodes = list(nodes_for_user(user=request.user))
    if len(nodes) == 1:
        return redirect(START[nodes[0].kind], nodes[0].slug)
    return render(request, "nodes/home.html", {"nodes": nodes})


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


@member_view("", see=(Role.ADMINISTRATOR,))
def audit_page(request: HttpRequest, node) -> HttpResponse:
    """The node's audit trail: who saw or changed what, through the screens and the API."""
    form = AuditSearchForm(request.GET or None)
    rows = audit_trail(node=node, **form.cleaned_data) if form.is_valid() else []
    if not form.is_bound:
        rows = audit_trail(node=node)
    return render(request, "nodes/audit.html", {"node": node, "form": form, "rows": rows})
