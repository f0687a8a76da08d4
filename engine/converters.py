"""The `engine` path converter: a slug that names an integration engine node, so the engine's
own routes (relaying) come before every node's FHIR server without a kind check in each view.

It is asked on every request to a node, so each process keeps the engines' slugs for
ENGINE_ROUTES_CACHE_SECONDS: an engine added to a running deployment is routed as one by every
process within that."""

from __future__ import annotations

import time

from django.conf import settings

from nodes.models import Node

_engines: tuple[float, frozenset[str]] = (0.0, frozenset())  # (until, by the monotonic clock; slugs)


def engine_slugs() -> frozenset[str]:
    """The slugs of the integration engine nodes."""
    global _engines
    if settings.ENGINE_ROUTES_CACHE_SECONDS <= 0 or _engines[0] <= time.monotonic():
        slugs = Node.objects.filter(kind=Node.Kind.INTEGRATION_ENGINE).values_list("slug", flat=True)
        _engines = (time.monotonic() + settings.ENGINE_ROUTES_CACHE_SECONDS, frozenset(slugs))
    return _engines[1]


class EngineSlug:
    regex = "[-a-zA-Z0-9_]+"

    def to_python(self, value: str) -> str:
        if value not in engine_slugs():
            raise ValueError(value)  # not an engine: the next route (the node's FHIR server) serves it
        return value

    def to_url(self, value: str) -> str:
        return value
