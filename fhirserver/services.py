"""Writes to a node's FHIR store: create, update and delete, each one atomic."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from fhirserver import jsonio, prepared, reactions, search
from fhirserver.errors import FHIRError
from fhirserver.indexing import clear_index, index_resource, token_values
from fhirserver.models import UNIQUE_IDENTIFIER_TYPES, Resource, ResourceVersion, TokenIndex
from fhirserver.validation import ID_PATTERN, validate_resource
from nodes.models import ApiClient, Node


@dataclass(frozen=True)
class WriteResult:
    resource: Resource
    created: bool


def resource_create(
    *,
    node: Node,
    resource_type: str,
    content: dict,
    if_none_exist: str | None = None,
    logical_id: str | None = None,
    owner: ApiClient | None = None,
) -> WriteResult:
    """Store a new resource with a server-assigned id, unless If-None-Exist finds one; `owner`
    is the API client it belongs to, for an owned type (fhirserver/owners.py)."""
    validate_resource(content, resource_type=resource_type)
    if if_none_exist:
        existing = conditional_match(node, resource_type, if_none_exist)
        if existing is not None:
            return WriteResult(existing, created=False)
    try:
        with transaction.atomic():
            # A transaction assigns ids before writing, so its entries can refer to each other.
            record = Resource(
                node=node,
                resource_type=resource_type,
                logical_id=logical_id or str(uuid.uuid4()),
                owner=owner,
            )
            _write_version(record, content, method="POST")
    except IntegrityError:
        # A concurrent create with the same business identifier committed first.
        if if_none_exist:
            existing = conditional_match(node, resource_type, if_none_exist)
            if existing is not None:
                return WriteResult(existing, created=False)
        raise _duplicate(resource_type) from None
    return WriteResult(record, created=True)


def resource_update(
    *,
    node: Node,
    resource_type: str,
    logical_id: str,
    content: dict,
    if_match: str | None = None,
    owner: ApiClient | None = None,
) -> WriteResult:
    """Store a new version of a resource, or create it with this id (update as create, which
    gives it `owner`)."""
    if not ID_PATTERN.match(logical_id):
        raise FHIRError(400, "invalid", f"{logical_id!r} is not a valid FHIR id.")
    validate_resource(content, resource_type=resource_type, logical_id=logical_id)
    try:
        with transaction.atomic():
            record = (
                Resource.objects.select_for_update()
                .filter(node=node, resource_type=resource_type, logical_id=logical_id)
                .first()
            )
            created = record is None or record.deleted
            if record is not None:
                record.node = node  # the same node, loaded already
            if record is None:
                if if_match:
                    raise FHIRError(412, "conflict", f"{resource_type}/{logical_id} does not exist.")
                record = Resource(node=node, resource_type=resource_type, logical_id=logical_id)
            else:
                version_check(record, if_match)
            if created:
                record.owner = owner
            _write_version(record, content, method="PUT")
    except IntegrityError:
        if _holds_identifier_of_another(node, resource_type, logical_id, content):
            raise _duplicate(resource_type) from None
        raise FHIRError(
            409,
            "conflict",
            f"{resource_type}/{logical_id} was written by another request at the same time; retry.",
        ) from None
    return WriteResult(record, created=created)


def resource_delete(
    *, node: Node, resource_type: str, logical_id: str, if_match: str | None = None
) -> Resource:
    """Delete a resource: a new version with no content; reads then answer 410."""
    with transaction.atomic():
        record = (
            Resource.objects.select_for_update()
            .filter(node=node, resource_type=resource_type, logical_id=logical_id)
            .first()
        )
        if record is None:
            raise FHIRError(404, "not-found", f"{resource_type}/{logical_id} is not known here.")
        if record.deleted:
            return record
        version_check(record, if_match)
        record.version_id += 1
        record.last_updated = timezone.now()
        record.deleted = True
        record.text = ""
        record.save()
        clear_index(record)
        ResourceVersion.objects.create(
            resource=record,
            node_id=record.node_id,
            resource_type=record.resource_type,
            version_id=record.version_id,
            last_updated=record.last_updated,
            method="DELETE",
        )
        reactions.react_delete(record)
    return record


def _write_version(record: Resource, content: dict, *, method: str) -> None:
    """Give content its id and meta, save it as the current version, keep it, index it."""
    now = timezone.now()
    version_id = (record.version_id or 0) + 1
    meta = dict(content.get("meta") or {})
    meta.update(versionId=str(version_id), lastUpdated=now.isoformat(timespec="milliseconds"))
    body = {"resourceType": record.resource_type, "id": record.logical_id, "meta": meta}
    body.update((key, value) for key, value in content.items() if key not in body)
    record.version_id = version_id
    record.last_updated = now
    record.deleted = False
    record.text = jsonio.dumps(body)
    if record.pk is None:
        prepared.RESOURCE_INSERT.save(record)
    else:
        record.save()
    prepared.VERSION_INSERT.save(
        ResourceVersion(
            resource=record,
            node_id=record.node_id,
            resource_type=record.resource_type,
            version_id=version_id,
            last_updated=now,
            method=method,
            text=record.text,
        )
    )
    index_resource(record, content)
    reactions.react(record, body)


_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def version_check(record: Resource, if_match: str | None) -> None:
    if not if_match:
        return
    match = _ETAG.match(if_match)
    if match is None:
        raise FHIRError(400, "invalid", f'If-Match must be a version ETag such as W/"3", not {if_match!r}.')
    if int(match.group(1)) != record.version_id:
        raise FHIRError(
            412,
            "conflict",
            f"{record.resource_type}/{record.logical_id} is at version {record.version_id}, "
            f"not {match.group(1)}: read it again and reapply the change.",
        )


def conditional_match(node: Node, resource_type: str, query: str) -> Resource | None:
    """Return the one resource If-None-Exist matches, None for none, 412 for several."""
    params = search.parse_query_string(query)
    if not params:
        raise FHIRError(
            400, "invalid", "If-None-Exist must hold search parameters, e.g. identifier=system|value."
        )
    matches = list(search.matching(node=node, resource_type=resource_type, params=params, strict=True)[:2])
    if len(matches) > 1:
        raise FHIRError(
            412, "multiple-matches", f"If-None-Exist {query!r} matches more than one {resource_type}."
        )
    return matches[0] if matches else None


def _holds_identifier_of_another(node: Node, resource_type: str, logical_id: str, content: dict) -> bool:
    if resource_type not in UNIQUE_IDENTIFIER_TYPES:
        return False
    tokens = token_values(resource_type, content, node)
    return any(
        TokenIndex.objects.filter(
            node=node, resource_type=resource_type, param=param, system=system, code=code
        )
        .exclude(resource__logical_id=logical_id)
        .exists()
        for param, system, code in tokens
        if param == "identifier" and system
    )


def _duplicate(resource_type: str) -> FHIRError:
    return FHIRError(
        409,
        "duplicate",
        f"A {resource_type} with this business identifier already exists at this node; "
        "send If-None-Exist: identifier=system|value to get it back instead.",
        [f"{resource_type}.identifier"],
    )
