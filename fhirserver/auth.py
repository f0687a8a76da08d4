"""Who may use a node's FHIR API: the holders of a static bearer token of that node or of an
access token it issued (SMART Backend Services), each with its scopes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from fhirserver.scopes import Scopes
from nodes.models import AccessToken, ApiClient
from nodes.services import token_hash

LAST_USED_RESOLUTION = timedelta(minutes=1)


def client_of(authorization: str) -> ApiClient | None:
    """Return the client a bearer token belongs to, with `granted` (its Scopes) set; None without
    a header. Raise AuthenticationFailed (401) for a bad, unknown, revoked or expired token."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed("Send Authorization: Bearer <token>.")
    hashed = token_hash(token.strip())
    client = ApiClient.objects.select_related("node").filter(token_hash=hashed, revoked=False).first()
    now = timezone.now()
    if client is not None:
        client.granted = Scopes(client.scopes)
    else:
        issued = AccessToken.objects.select_related("client__node").filter(token_hash=hashed).first()
        if issued is None or issued.client.revoked:
            raise exceptions.AuthenticationFailed("The bearer token is not known here, or was revoked.")
        if issued.expires <= now:
            raise exceptions.AuthenticationFailed("The access token has expired: ask for a new one.")
        client = issued.client
        client.granted = Scopes(issued.scopes)
    # Record use at most once a minute: a write on every read would cost more than the read.
    if client.last_used is None or now - client.last_used > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used=now)
    return client


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
