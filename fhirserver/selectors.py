"""Reads from a node's FHIR store."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils.dateparse import parse_datetime

from fhirserver import prepared
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
    number = int(version_id) if version_id.isascii() and version_id.isdigit() else None
    version = record.versions.filter(version_id=number).first() if number is not None else None
    if version is None:
        raise FHIRError(404, "not-found", f"{resource_type}/{logical_id} has no version {version_id!r}.")
    if not version.text:
        raise FHIRError(
            410, "deleted", f"Version {version_id} of {resource_type}/{logical_id} is its deletion."
        )
    return version


def history_page(
    *,
    node: Node,
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: str | None = None,
    count: str | None = None,
    cursor: str | None = None,
) -> tuple[list[ResourceVersion], str | None]:
    """Return versions newest first (of a node, a type or one resource) and the next page's cursor.
    A node's history leaves out its AuditEvents (one per request: they would bury every change);
    AuditEvent/_history and a search show them."""
    versions = ResourceVersion.objects.filter(node=node).select_related("resource")
    if resource_type:
        versions = versions.filter(resource_type=resource_type)
    else:
        versions = versions.exclude(resource_type="AuditEvent")
    if logical_id:
        versions = versions.filter(resource=_record(node, resource_type, logical_id))
    if since:
        # A + in a query string arrives as a space: put the time zone's sign back.
        moment = parse_datetime(since.replace(" ", "+"))
        if moment is None or moment.tzinfo is None:
            raise FHIRError(400, "invalid", "_since must be an instant with a time zone.", ["_since"])
        versions = versions.filter(last_updated__gt=moment)
    if cursor:
        if not (cursor.isascii() and cursor.isdigit()):
            raise FHIRError(400, "invalid", "_cursor comes from a history Bundle's next link.", ["_cursor"])
        versions = versions.filter(pk__lt=int(cursor))
    size = settings.FHIR_SEARCH_DEFAULT_COUNT
    if count:
        if not (count.isascii() and count.isdigit()):
            raise FHIRError(400, "invalid", "_count must be a whole number.", ["_count"])
        size = min(int(count), settings.FHIR_SEARCH_MAX_COUNT)
    page = list(versions.order_by("-pk")[: size + 1])
    next_cursor = str(page[size - 1].pk) if len(page) > size and size else None
    return page[:size], next_cursor


def _record(node: Node, resource_type: str, logical_id: str) -> Resource:
    record = prepared.resource_by_id(node, resource_type, logical_id)
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


# A prescription item's resources at a node, found by its line-item identifier.


def request_for_item(*, node: Node, item: str) -> Resource | None:
    """Return the node's MedicationRequest for a line item, if it holds one."""
    from fhirserver.medication import ITEM_SYSTEM
    from fhirserver.search import matching

    if not item:
        return None
    params = [("identifier", f"{ITEM_SYSTEM}|{item}")]
    return matching(node=node, resource_type="MedicationRequest", params=params, strict=True).first()


def dispenses_for_item(*, node: Node, item: str, params: list[tuple[str, str]] = ()) -> QuerySet[Resource]:
    """Return the node's MedicationDispenses for a line item (matching any further parameters)."""
    from fhirserver.medication import ITEM_SYSTEM
    from fhirserver.search import matching

    every = [("prescription:identifier", f"{ITEM_SYSTEM}|{item}"), *params]
    return matching(node=node, resource_type="MedicationDispense", params=every, strict=True)


def requests_for_prescription(*, node: Node, prescription_id: str) -> QuerySet[Resource]:
    """Return the node's MedicationRequests of one prescription (its items), in the order made."""
    from fhirserver.nhs import PRESCRIPTION_ID_SYSTEM
    from fhirserver.search import matching

    params = [("group-identifier", f"{PRESCRIPTION_ID_SYSTEM}|{prescription_id.upper()}")]
    return matching(node=node, resource_type="MedicationRequest", params=params, strict=True).order_by("pk")
