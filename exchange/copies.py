"""Local copies of resources held by a partner, kept by business identifier."""

from __future__ import annotations

import logging

from exchange.models import Message
from exchange.remote import entries, next_page
from exchange.services import message_enqueue
from fhirserver import jsonio, services
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.search import matching
from nodes.models import Node

logger = logging.getLogger(__name__)


def copy_store(*, node: Node, resource: dict) -> Resource:
    """Store a partner's resource here: create it, or update the copy when it has changed. A copy
    is kept by its business identifier, so a resource without one is refused (422)."""
    identifiers = resource.get("identifier")
    identifier = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    if not isinstance(identifier, dict) or not identifier.get("system") or not identifier.get("value"):
        raise FHIRError(
            422,
            "required",
            "A resource shared between nodes needs a business identifier (system and value).",
            [f"{resource.get('resourceType')}.identifier"],
        )
    token = f"{identifier['system']}|{identifier['value']}"
    content = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    existing = matching(
        node=node, resource_type=resource["resourceType"], params=[("identifier", token)], strict=True
    ).first()
    if existing is None:
        return services.resource_create(
            node=node,
            resource_type=resource["resourceType"],
            content=content,
            if_none_exist=f"identifier={token}",
        ).resource
    current = {k: v for k, v in jsonio.loads(existing.text).items() if k not in ("id", "meta")}
    if current == content:
        return existing
    return services.resource_update(
        node=node,
        resource_type=resource["resourceType"],
        logical_id=existing.logical_id,
        content={**content, "id": existing.logical_id},
    ).resource


def copies_store(*, message: Message, answer) -> None:
    """Keep a copy of every resource a fetch (a searchset) brought back, and fetch its next page,
    if it has one at the same partner, in the same queue."""
    for resource in entries(answer.body):
        copy_store(node=message.node, resource=resource)
    following = next_page(answer.body)
    partner = message.partner
    if not following or following == message.url:  # the last page (or a partner that loops)
        return
    if partner is None or not following.startswith(f"{partner.fhir_base}/"):
        # Our token for the partner goes to the partner alone: the rest is not fetched, and said.
        logger.warning("%s: not following next page %s (not at the partner's base)", message, following)
        return
    message_enqueue(
        node=message.node,
        partner=partner,
        key=message.key,
        kind=message.kind,
        method="GET",
        url=following,
        on_success=message.on_success,
    )
