"""Reads from a node's FHIR store."""

from __future__ import annotations

from django.db.models import Count
from django.utils.dateparse import parse_datetime

from fhirserver.errors import FHIRError
from fhirserver.models import Resource, ResourceVersion
from nodes.models import Node


def resource_current(*, node: Node, resource_type: str, logical_id: str) -> Resource:
    """Return the current version; 404 when unknown, 410 when deleted."""
    record = _record(node, resource_type, logical_id)
    if record.deleted:
        raise FHIRError(
            410, "deleted", f"{resource_type}/{logical_id} was deleted (version {record.version_id})."
        )
    return record


def resource_version(*, node: Node, resource_type: str, logical_id: str, version_id: str) -> ResourceVersion:
    """Return one version; 404 when there is no such version, 410 when it is a deletion."""
    record = _record(node, resource_type, logical_id)
    version = record.versions.filter(version_id=int(version_id)).first() if version_id.isdigit() else None
    if version is None:
        raise FHIRError(404, "not-found", f"{resource_type}/{logical_id} has no version {version_id!r}.")
    if not version.text:
        raise FHIRError(
            410, "deleted", f"Version {version_id} of {resource_type}/{logical_id} is its deletion."
        )
    return version


def resource_history(
    *, node: Node, resource_type: str, logical_id: str, since: str | None = None, count: str | None = None
) -> tuple[Resource, list[ResourceVersion]]:
    """Return a resource and its versions, newest first, deletions included."""
    record = _record(node, resource_type, logical_id)
    versions = record.versions.all()
    if since:
        moment = parse_datetime(since)
        if moment is None or moment.tzinfo is None:
            raise FHIRError(400, "invalid", "_since must be an instant with a time zone.", ["_since"])
        versions = versions.filter(last_updated__gt=moment)
    if count:
        if not count.isdigit():
            raise FHIRError(400, "invalid", "_count must be a whole number.", ["_count"])
        versions = versions[: int(count)]
    return record, list(versions)


def _record(node: Node, resource_type: str, logical_id: str) -> Resource:
    record = Resource.objects.filter(node=node, resource_type=resource_type, logical_id=logical_id).first()
    if record is None:
        raise FHIRError(404, "not-found", f"{resource_type}/{logical_id} is not known here.")
    return record


def resource_counts(*, node: Node) -> list[tuple[str, int]]:
    """Return how many live resources of each type the node holds."""
    rows = (
        Resource.objects.filter(node=node, deleted=False)
        .values("resource_type")
        .annotate(n=Count("id"))
        .order_by("resource_type")
    )
    return [(row["resource_type"], row["n"]) for row in rows]
