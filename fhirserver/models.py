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
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    method = models.CharField(max_length=8)  # POST, PUT or DELETE
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["-version_id"]
        constraints = [models.UniqueConstraint(fields=["resource", "version_id"], name="unique_version")]

    def __str__(self) -> str:
        return f"{self.resource}/_history/{self.version_id}"


class TokenIndex(models.Model):
    """A token search value (e.g. identifier system|code) of a live resource, written with it."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="tokens")
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)
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
