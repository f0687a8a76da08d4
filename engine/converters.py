"""The `engine` path converter: a slug that names an integration engine node, so the engine's
own routes (relaying) come before every node's FHIR server without a kind check in each view."""

from __future__ import annotations

from nodes.models import Node


class EngineSlug:
    regex = "[-a-zA-Z0-9_]+"

    def to_python(self, value: str) -> str:
        if not Node.objects.filter(slug=value, kind=Node.Kind.INTEGRATION_ENGINE).exists():
            raise ValueError(value)  # not an engine: the next route (the node's FHIR server) serves it
        return value

    def to_url(self, value: str) -> str:
        return value
