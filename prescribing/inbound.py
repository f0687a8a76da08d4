"""What a prescribing node does when a resource is written to its FHIR store."""

from __future__ import annotations

from fhirserver.models import Resource
from nodes.models import Node
from prescribing.services import dispense_learnt


def dispense_stored(*, node: Node, record: Resource, content: dict) -> None:
    if node.kind == Node.Kind.PRESCRIBING:
        dispense_learnt(node=node, dispense=content)
