"""Who may use a node's FHIR API: the holders of a static bearer token of that node or of an
access token it issued (SMART Backend Services), each with its scopes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from fhirserver.scopes import Scopes
from nodes.models import AccessToken, ApiClient
from nodes.services import token_hash

LAST_USED_RESOLUTION = timedelta(minutes=1)
NEVER = datetime.max.replace(tzinfo=UTC)


# Token hash -> (until when, by the monotonic clock; the client with its scopes): a token's
# lookup is kept for FHIR_AUTH_CACHE_SECONDS, so a revocation or a change of scopes takes effect
# within that; an access token is never kept past its expiry. Unknown tokens are never kept.
_KNOWN: dict[str, tuple[float, ApiClient]] = {}
_KNOWN_SIZE = 10_000


def client_of(authorization: str) -> ApiClient | None:
    """Return the client a bearer token belongs to, with `granted` (its Scopes) set; None without
    a header. Raise AuthenticationFailed (401) for a bad, unknown, revoked or expired token."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed("Send Authorization: Bearer <token>.")
    hashed = token_hash(token.strip())
    known = _KNOWN.get(hashed) if settings.FHIR_AUTH_CACHE_SECONDS > 0 else None
    if known is not None and known[0] > time.monotonic():
        client = known[1]
    else:
        client, expires = _looked_up(hashed)
        lifetime = min(settings.FHIR_AUTH_CACHE_SECONDS, (expires - timezone.now()).total_seconds())
        if lifetime > 0:
            if len(_KNOWN) >= _KNOWN_SIZE:
                _KNOWN.clear()
            _KNOWN[hashed] = (time.monotonic() + lifetime, client)
    # Record use at most once a minute: a write on every read would cost more than the read.
    now = timezone.now()
    if client.last_used is None or now - client.last_used > LAST_USED_RESOLUTION:
        client.last_used = now
        ApiClient.objects.filter(pk=client.pk).update(last_used=now)
    return client


def _looked_up(hashed: str) -> tuple[ApiClient, datetime]:
    """The client of a token hash with its granted scopes, and when the token expires."""
    client = ApiClient.objects.select_related("node").filter(token_hash=hashed, revoked=False).first()
    if client is not None:
        client.granted = Scopes(client.scopes)
        return client, NEVER
    issued = AccessToken.objects.select_related("client__node").filter(token_hash=hashed).first()
    if issued is None or issued.client.revoked:
        raise exceptions.AuthenticationFailed("The bearer token is not known here, or was revoked.")
    if issued.expires <= timezone.now():
        raise exceptions.AuthenticationFailed("The access token has expired: ask for a new one.")
    client = issued.client
    client.granted = Scopes(issued.scopes)
    return client, issued.expires


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        client = client_of(request.headers.get("Authorization", ""))
        return None if client is None else (None, client)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="dmed"'


class HoldsNodeToken(BasePermission):
    """Allow a request whose token belongs to the node in the URL (or any, when auth is off)."""

    message = "This bearer token is not valid for this node."

    def has_permission(self, request, view) -> bool:
        if getattr(view, "public", False) or not settings.FHIR_AUTH_REQUIRED:
            return True
        client = request.auth
        if client is None:
            raise exceptions.NotAuthenticated("This FHIR API needs Authorization: Bearer <token>.")
        return client.node_id == view.node.pk
