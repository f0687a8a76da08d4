"""Writes about nodes: API clients and their tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction

from nodes.models import ApiClient, Node


def token_hash(token: str) -> str:
    """Return the stored form of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_client_issue(
    *,
    node: Node,
    name: str,
    token: str | None = None,
    may_prescribe: bool = False,
    may_dispense: bool = False,
) -> tuple[ApiClient, str]:
    """Create or re-key the named client of a node, with what it may start through the API;
    return it and its token (shown only now)."""
    token = token or secrets.token_urlsafe(32)
    client, _ = ApiClient.objects.update_or_create(
        node=node,
        name=name,
        defaults={
            "token_hash": token_hash(token),
            "revoked": False,
            "may_prescribe": may_prescribe,
            "may_dispense": may_dispense,
        },
    )
    return client, token
