"""Who may use a node's FHIR API: holders of that node's bearer tokens."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from nodes.models import ApiClient
from nodes.services import token_hash

LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Send Authorization: Bearer <token>.")
        client = (
            ApiClient.objects.select_related("node")
            .filter(token_hash=token_hash(token.strip()), revoked=False)
            .first()
        )
        if client is None:
            raise exceptions.AuthenticationFailed("The bearer token is not known here, or was revoked.")
        now = timezone.now()
        # Record use at most once a minute: a write on every read would cost more than the read.
        if client.last_used is None or now - client.last_used > LAST_USED_RESOLUTION:
            ApiClient.objects.filter(pk=client.pk).update(last_used=now)
        return (None, client)

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
