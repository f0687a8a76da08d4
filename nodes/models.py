from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

# The site's own top-level paths, which a node's slug must not hide.
RESERVED_SLUGS = frozenset({"admin", "accounts", "static", "fhir"})


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(f"{value!r} is a reserved path; choose another slug.")


class Node(models.Model):
    """One organisation's system; every stored resource belongs to exactly one."""

    class Kind(models.TextChoices):
        PRESCRIBING = "prescribing", "Prescribing system"
        DISPENSING = "dispensing", "Dispensing system"
        BROKER = "broker", "Message broker"
        # Between an organisation's own systems and the broker: relays, keeps no workflow.
        INTEGRATION_ENGINE = "integration-engine", "Integration engine"

    slug = models.SlugField(max_length=64, unique=True, validators=[validate_slug_not_reserved])
    kind = models.CharField(max_length=24, choices=Kind.choices)
    ods_code = models.CharField("ODS code", max_length=12, unique=True)
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    # Changes whenever the node's own search parameters change (fhirserver/custom_params.py), so
    # every process sees a new one with the node it loads; blank while it has none.
    search_revision = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["kind", "slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Membership(models.Model):
    """A user's right to work at a node; screens and queries are scoped by it."""

    class Role(models.TextChoices):
        PRESCRIBER = "prescriber", "Prescriber"
        PHARMACIST = "pharmacist", "Pharmacist"
        ADMINISTRATOR = "administrator", "Administrator"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "node"], name="one_membership_per_node")]

    def __str__(self) -> str:
        return f"{self.user} at {self.node.slug} ({self.role})"


def new_client_id() -> str:
    return secrets.token_hex(16)


class ApiClient(models.Model):
    """A system allowed to use one node's FHIR API, with the SMART scopes it holds. It proves
    who it is with a static bearer token (known by its hash) or, as SMART Backend Services do,
    with a JWT signed by a key of its JWKS, exchanged for a short-lived access token."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="api_clients")
    name = models.CharField(max_length=200, help_text="Who holds the token, e.g. a partner's ODS code.")
    client_id = models.CharField(
        max_length=64,
        unique=True,
        default=new_client_id,
        editable=False,
        help_text="The iss and sub of its signed assertions (SMART Backend Services).",
    )
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    scopes = models.TextField(
        blank=True,
        help_text="SMART scopes, space-separated: system/MedicationRequest.rs, system/*.read, "
        "system/Subscription.cruds. At a prescribing node MedicationRequest c and u are the right to "
        "prescribe; at a dispensing node MedicationDispense c and u the right to dispense.",
    )
    jwks = models.JSONField(
        "JWKS",
        null=True,
        blank=True,
        help_text='Its public keys, a JWK Set ({"keys": [...]}), RS384 or ES384.',
    )
    jwks_uri = models.URLField("JWKS URI", blank=True, help_text="Or where its JWK Set is published.")
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)

    class Meta:
        verbose_name = "API client"
        constraints = [models.UniqueConstraint(fields=["node", "name"], name="one_client_name_per_node")]

    def __str__(self) -> str:
        return f"{self.name} at {self.node.slug}"


class AccessToken(models.Model):
    """A short-lived token issued at the token endpoint, known by its hash, with the scopes granted."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="access_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.TextField()
    expires = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"access token of {self.client} until {self.expires:%H:%M:%S}"


class AssertionUse(models.Model):
    """A client assertion's jti, kept until the assertion expires: a second use is a replay, and
    the unique constraint refuses it in every web process at once."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="assertion_uses")
    jti = models.CharField(max_length=255)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "jti"], name="one_use_per_assertion")]

    def __str__(self) -> str:
        return f"assertion {self.jti} of {self.client}"
