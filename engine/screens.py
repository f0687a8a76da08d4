"""The engine's screen: what passed through it, what waits, what failed (requeued from the
message's own screen, by an administrator)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from engine import selectors
from nodes.access import Role, can, member_view
from nodes.models import Node
from nodes.polling import polled_render


@member_view(Node.Kind.INTEGRATION_ENGINE, see=(Role.ADMINISTRATOR,))
def traffic_page(request: HttpRequest, node: Node) -> HttpResponse:
    show = request.GET.get("show", "")
    show = show if show in {s for s, _, _ in selectors.SHOWS} else ""
    context = {
        "node": node,
        "show": show,
        "tabs": selectors.traffic_tabs(engine=node),
        "page": selectors.traffic_page(engine=node, show=show, number=request.GET.get("page")),
        "connections": selectors.connections_at(engine=node),
        "can_act": can(request.member, Role.ADMINISTRATOR),
    }
    return polled_render(request, "engine/traffic.html", "traffic", context, final=False)
