"""SMART Backend Services: a client proves who it is with a JWT signed by one of its keys
(`private_key_jwt`, RS384 or ES384) and gets a short-lived access token with the scopes it asked
for and holds. Every check is joserfc's or the database's; no cryptography here."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhirserver.scopes import Scopes
from nodes.models import AccessToken, ApiClient, AssertionUse, Node
from nodes.services import token_hash

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)
JWKS_CACHE_SECONDS = 300


@dataclass
class OAuthError(Exception):
    """An RFC 6749 error answer: invalid_request, invalid_client, invalid_scope, ..."""

    error: str
    description: str
    status: int = 400


def token_url(base: str) -> str:
    """The token endpoint of the node whose FHIR base is `base` (…/<node>/fhir)."""
    return base.removesuffix("/fhir") + "/oauth/token"


def smart_configuration(base: str) -> dict:
    return {
        "issuer": base,
        "token_endpoint": token_url(base),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.cruds", "system/*.read", "system/*.write"],
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }


def token_issue(*, node: Node, form: dict[str, str], endpoint: str) -> dict:
    """Check a client_credentials request and its client assertion; return the token answer."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials.")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise OAuthError(
            "invalid_request", f"Send client_assertion_type={ASSERTION_TYPE} and a signed client_assertion."
        )
    client, claims = _assertion_check(node, form["client_assertion"], endpoint)
    granted = Scopes(client.scopes).within(form.get("scope", ""))
    if not granted:
        raise OAuthError(
            "invalid_scope",
            f"No scope asked for is granted to this client (it holds: {client.scopes}).",
        )
    lifetime = settings.SMART_ACCESS_TOKEN_SECONDS
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                AssertionUse.objects.create(
                    client=client, jti=claims["jti"], expires=datetime.fromtimestamp(claims["exp"], UTC)
                )
        except IntegrityError:
            raise OAuthError("invalid_client", "This assertion (its jti) was used already.", 401) from None
        AccessToken.objects.create(
            client=client,
            token_hash=token_hash(token),
            scopes=granted,
            expires=now + timedelta(seconds=lifetime),
        )
    # What has expired is of no use to anyone: clear it as new tokens are made.
    AssertionUse.objects.filter(expires__lt=now - CLOCK_SKEW).delete()
    AccessToken.objects.filter(expires__lt=now).delete()
    return {"access_token": token, "token_type": "bearer", "expires_in": lifetime, "scope": granted}


def _assertion_check(node: Node, assertion: str, endpoint: str) -> tuple[ApiClient, dict]:
    try:  # the issuer names the client, and so the keys that must have signed it
        issuer = json.loads(jws.extract_compact(assertion.encode()).payload).get("iss")
    except (JoseError, ValueError, TypeError, AttributeError):
        raise OAuthError("invalid_client", "client_assertion is not a JWT (JWS compact).", 401) from None
    client = (
        ApiClient.objects.filter(node=node, client_id=issuer, revoked=False).first()
        if isinstance(issuer, str)
        else None
    )
    if client is None:
        raise OAuthError("invalid_client", f"No client {issuer!r} is registered at {node.slug}.", 401)
    keys = _keys(client)
    try:
        token = jwt.decode(assertion, keys, algorithms=ALGORITHMS)
    except JoseError:
        raise OAuthError(
            "invalid_client", "The assertion's signature matches none of this client's keys.", 401
        ) from None
    claims = token.claims
    now = timezone.now().timestamp()
    aud = claims.get("aud")
    if claims.get("sub") != client.client_id:
        raise OAuthError("invalid_client", "The assertion's sub must be its iss, the client_id.", 401)
    if endpoint not in (aud if isinstance(aud, list) else [aud]):
        raise OAuthError(
            "invalid_client", f"The assertion's aud must be the token endpoint, {endpoint}.", 401
        )
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise OAuthError("invalid_client", "The assertion needs an exp.", 401)
    if exp <= now - CLOCK_SKEW.total_seconds():
        raise OAuthError("invalid_client", "The assertion has expired.", 401)
    if exp > now + (MAX_ASSERTION_LIFETIME + CLOCK_SKEW).total_seconds():
        raise OAuthError("invalid_client", "The assertion's exp is more than 5 minutes ahead.", 401)
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise OAuthError("invalid_client", "The assertion needs a jti.", 401)
    return client, claims


def _keys(client: ApiClient) -> KeySet:
    """The client's public keys: its registered JWKS, else the one its jwks_uri publishes."""
    if client.jwks:
        return KeySet.import_key_set(client.jwks)
    if not client.jwks_uri:
        raise OAuthError("invalid_client", "This client has no keys registered (JWKS or jwks_uri).", 401)
    key = f"smart-jwks:{client.jwks_uri}"
    published = cache.get(key)
    if published is None:
        try:
            answer = requests.get(client.jwks_uri, timeout=5, headers={"Accept": "application/json"})
            answer.raise_for_status()
            published = answer.json()
            KeySet.import_key_set(published)
        except (requests.RequestException, ValueError, JoseError) as exc:
            raise OAuthError("invalid_client", f"The jwks_uri gave no JWK Set: {exc}.", 401) from None
        cache.set(key, published, JWKS_CACHE_SECONDS)
    return KeySet.import_key_set(published)


def jwks_problem(jwks: object) -> str:
    """Say what is wrong with a JWK Set of public keys, or return ""."""
    try:
        keys = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        return f"This is not a JWK Set: {exc}."
    if any(key.is_private for key in keys):
        return "Register public keys only: this JWK Set holds a private key."
    return ""
