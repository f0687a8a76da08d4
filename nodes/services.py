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
    *, node: Node, name: str, token: str | None = None, scopes: str | None = None
) -> tuple[ApiClient, str]:
    """Create or re-key the named client of a node (with `scopes`, or keeping the ones it has);
    return it and its bearer token (shown only now)."""
    token = token or secrets.token_urlsafe(32)
    defaults: dict = {"token_hash": token_hash(token), "revoked": False}
    if scopes is not None:
        defaults["scopes"] = " ".join(scopes.split())
    client, _ = ApiClient.objects.update_or_create(node=node, name=name, defaults=defaults)
    return client, token
