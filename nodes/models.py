from __future__ import annotations

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


class ApiClient(models.Model):
    """A system allowed to use one node's FHIR API, known by the hash of its bearer token."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="api_clients")
    name = models.CharField(max_length=200, help_text="Who holds the token, e.g. a partner's ODS code.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False)
    # What the client may start through the API (the guide's triggers); partners exchanging
    # resources need neither.
    may_prescribe = models.BooleanField(
        default=False, help_text="May issue and cancel prescriptions (MedicationRequest active, cancelled)."
    )
    may_dispense = models.BooleanField(
        default=False,
        help_text="May start, complete and decline dispensing (MedicationDispense in-progress, completed, "
        "declined).",
    )

    class Meta:
        verbose_name = "API client"
        constraints = [models.UniqueConstraint(fields=["node", "name"], name="one_client_name_per_node")]

    def __str__(self) -> str:
        return f"{self.name} at {self.node.slug}"
