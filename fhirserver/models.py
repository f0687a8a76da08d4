"""Storage: the resource as received is the truth; every version is kept; search is indexed."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from nodes.models import Node

# Resource types whose business identifier (system|value) is unique per node.
UNIQUE_IDENTIFIER_TYPES = ("MedicationRequest", "MedicationDispense")


class Resource(models.Model):
    """The current version of one resource at one node."""

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="resources")
    resource_type = models.CharField(max_length=64)
    logical_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    # The JSON text served on read: the resource as received, with id and meta set by us.
    # Empty while deleted.
    text = models.TextField(blank=True)
    # The API client that created it, for the types it owns (FHIR_OWNED_TYPES: fhirserver/owners.py).
    owner = models.ForeignKey(
        "nodes.ApiClient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "resource_type", "logical_id"], name="unique_logical_id")
        ]
        indexes = [models.Index(fields=["node", "resource_type", "last_updated"])]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.logical_id}"


class ResourceVersion(models.Model):
    """One version of a resource, kept forever; a delete is a version with no text."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="versions")
    # The resource's node and type again, so type and system history read one table.
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    resource_type = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    method = models.CharField(max_length=8)  # POST, PUT or DELETE
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["-version_id"]
        constraints = [models.UniqueConstraint(fields=["resource", "version_id"], name="unique_version")]
        indexes = [
            models.Index(fields=["node", "resource_type", "last_updated"]),
            models.Index(fields=["node", "last_updated"]),
        ]

    def __str__(self) -> str:
        return f"{self.resource}/_history/{self.version_id}"


class TokenIndex(models.Model):
    """A token search value (e.g. identifier system|code) of a live resource, written with it."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="tokens")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    system = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["node", "resource_type", "param", "code", "system"])]
        constraints = [
            # A retry or a race never stores a second copy of one prescription item or dispense.
            models.UniqueConstraint(
                fields=["node", "resource_type", "param", "system", "code"],
                condition=Q(param="identifier", resource_type__in=UNIQUE_IDENTIFIER_TYPES) & ~Q(system=""),
                name="unique_business_identifier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.param}={self.system}|{self.code}"


class StringIndex(models.Model):
    """A string search value: folded for the default and :contains, as given for :exact."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="strings")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    normalised = models.CharField(max_length=255)
    exact = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["node", "resource_type", "param", "normalised"])]

    def __str__(self) -> str:
        return f"{self.param}={self.exact}"


class DateIndex(models.Model):
    """A date search value as the half-open range [low, high) it covers."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="dates")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    low = models.DateTimeField()
    high = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["node", "resource_type", "param", "low"]),
            models.Index(fields=["node", "resource_type", "param", "high"]),
        ]

    def __str__(self) -> str:
        return f"{self.param}=[{self.low.isoformat()}, {self.high.isoformat()})"


class ReferenceIndex(models.Model):
    """What a reference points at: Type/id, an absolute URL, and/or a business identifier."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="references")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=255, blank=True)
    id_system = models.CharField(max_length=255, blank=True)
    id_value = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["node", "resource_type", "param", "target_id", "target_type"]),
            models.Index(fields=["node", "resource_type", "param", "id_value", "id_system"]),
            models.Index(fields=["node", "target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        target = f"{self.target_type}/{self.target_id}" if self.target_id else self.url
        return f"{self.param}={target or f'{self.id_system}|{self.id_value}'}"


class NumberIndex(models.Model):
    """A number search value."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="numbers")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    value = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["node", "resource_type", "param", "value"])]

    def __str__(self) -> str:
        return f"{self.param}={self.value}"


class QuantityIndex(models.Model):
    """A quantity search value: the number with its unit system, code and unit text."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="quantities")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
    # The element of a composite parameter a row is a component of (rows of one share it).
    group = models.BigIntegerField(null=True, blank=True)
    value = models.FloatField()
    system = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=255, blank=True)
    unit = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["node", "resource_type", "param", "value"])]

    def __str__(self) -> str:
        return f"{self.param}={self.value}|{self.system}|{self.code}"


class CustomSearchParameter(models.Model):
    """An active SearchParameter resource a client wrote to a node, as its searches use it
    (fhirserver/custom_params.py): kept in step with the resource inside its write."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource = models.OneToOneField(Resource, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=255)
    code = models.CharField(max_length=64)
    base = models.JSONField()  # resource types
    type = models.CharField(max_length=16)
    expression = models.TextField()
    target = models.JSONField(default=list)
    description = models.TextField(blank=True)
    # When its definition last changed: resources written before then are found by it only
    # once indexed again (complete says that has happened, or that there were none).
    changed = models.DateTimeField()
    complete = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} on {', '.join(self.base)}"


class ReindexJob(models.Model):
    """A node's resources (of one type, or all) indexed again in the background ($reindex)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64, blank=True)  # blank: every type
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    last_pk = models.BigIntegerField(default=0)  # where a resumed job goes on from
    # The last resource it covers: those written after it started are indexed as they are written.
    upto_pk = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"reindex {self.resource_type or 'all'} at {self.node_id}: {self.processed}/{self.total}"
