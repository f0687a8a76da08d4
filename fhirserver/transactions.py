"""Batch and transaction Bundles posted to a node's base (FHIR R4 http.html#transaction)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus

from django.db import transaction
from django.utils import timezone

from fhirserver import bundles, scopes, search, selectors, triggers
from fhirserver.errors import FHIRError, operation_outcome
from fhirserver.jsonio import RawJSON
from fhirserver.models import Resource, ResourceVersion
from fhirserver.registry import is_resource_type
from fhirserver.validation import validate_resource
from nodes.models import Node

METHODS = ("GET", "POST", "PUT", "DELETE")
# Valid Bundle.entry.request.method codes that this server does not implement: 405, not 400.
UNSUPPORTED_METHODS = ("HEAD", "PATCH")


@dataclass(frozen=True)
class Entry:
    """One request of a Bundle, checked and with its URL taken apart."""

    index: int
    method: str
    url: str
    resource_type: str
    logical_id: str | None = None
    version_id: str | None = None
    query: list[tuple[str, str]] | None = None  # set for a search
    resource: dict | None = None
    full_url: str | None = None
    if_match: str | None = None
    if_none_exist: str | None = None


def bundle_process(*, node: Node, bundle: dict, base: str, caller: triggers.Caller | None = None) -> dict:
    """Carry out a batch or transaction Bundle and return its response Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FHIRError(
            400,
            "invalid",
            "POST to the base takes a Bundle of type batch or transaction.",
            ["resourceType"],
        )
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FHIRError(
            400,
            "not-supported",
            f"A Bundle posted to the base must be of type batch or transaction, not {kind!r}.",
            ["Bundle.type"],
        )
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise FHIRError(400, "structure", "Bundle.entry must be an array.", ["Bundle.entry"])
    caller = caller or triggers.Caller(None, in_bundle=True)
    if kind == "batch":
        entries = batch_process(node=node, raw_entries=raw_entries, base=base, caller=caller)
    else:
        entries = transaction_process(node=node, raw_entries=raw_entries, base=base, caller=caller)
    response: dict = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": f"{kind}-response",
        "meta": {"lastUpdated": timezone.now().isoformat(timespec="milliseconds")},
    }
    if entries:  # FHIR JSON has no empty arrays
        response["entry"] = entries
    return response


def batch_process(*, node: Node, raw_entries: list, base: str, caller: triggers.Caller) -> list[dict]:
    """Carry out each entry on its own; a failure answers in its entry and stops nothing else."""
    answered = []
    for index, raw in enumerate(raw_entries):
        try:
            entry = entry_parse(raw=raw, index=index, base=base)
            _allowed(node, entry, caller)
            with transaction.atomic():
                # Each entry is a write of its own: what one shares is not the next one's.
                answered.append(
                    _perform(
                        node=node,
                        entry=entry,
                        base=base,
                        caller=triggers.Caller(caller.client, in_bundle=True),
                        if_none_exist=entry.if_none_exist,
                    )
                )
        except FHIRError as exc:
            answered.append(
                {"response": {"status": _status(exc.status), "outcome": operation_outcome(exc.issues)}}
            )
    return answered


def transaction_process(*, node: Node, raw_entries: list, base: str, caller: triggers.Caller) -> list[dict]:
    """Carry out every entry or none, in FHIR's order, answering in the request's order."""
    entries = [entry_parse(raw=raw, index=index, base=base) for index, raw in enumerate(raw_entries)]
    _check_distinct(entries)
    for entry in entries:  # one entry out of the client's scopes refuses the whole transaction
        with _failing_at(entry):
            _allowed(node, entry, caller)
    by_method = {method: [e for e in entries if e.method == method] for method in METHODS}
    answered: dict[int, dict] = {}
    # FHIR's processing order is DELETE, POST, PUT, GET, so reads see the writes; all in one
    # atomic block, so any failure leaves nothing behind.
    with transaction.atomic():
        for entry in by_method["DELETE"]:
            with _failing_at(entry):
                answered[entry.index] = _perform(node=node, entry=entry, base=base, caller=caller)
        # Conditional creates are matched after the deletes, which come first in FHIR's order.
        identities = _identities(node=node, entries=by_method["POST"])
        _check_not_also_written(identities, entries)
        references = {
            entry.full_url: f"{entry.resource_type}/{identities[entry.index][0]}"
            for entry in by_method["POST"]
            if entry.full_url
        }
        references |= {
            entry.full_url: f"{entry.resource_type}/{entry.logical_id}"
            for entry in by_method["PUT"]
            if entry.full_url
        }
        for entry in by_method["POST"] + by_method["PUT"]:
            with _failing_at(entry):
                references |= _conditional_references(node=node, value=entry.resource, caller=caller)
        for entry in by_method["POST"]:
            logical_id, existing = identities[entry.index]
            content = references_rewrite(value=entry.resource, references=references)
            with _failing_at(entry):
                if existing is not None:
                    answered[entry.index] = _written(existing, 200, base)
                else:
                    answered[entry.index] = _perform(
                        node=node,
                        entry=dataclasses.replace(entry, resource=content),
                        base=base,
                        caller=caller,
                        logical_id=logical_id,
                    )
        for entry in by_method["PUT"]:
            content = references_rewrite(value=entry.resource, references=references)
            with _failing_at(entry):
                answered[entry.index] = _perform(
                    node=node, entry=dataclasses.replace(entry, resource=content), base=base, caller=caller
                )
        for entry in by_method["GET"]:
            with _failing_at(entry):
                answered[entry.index] = _perform(node=node, entry=entry, base=base, caller=caller)
    return [answered[index] for index in range(len(entries))]


def entry_parse(*, raw: object, index: int, base: str) -> Entry:
    """Check one Bundle entry's request and resource, and take its URL apart."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise FHIRError(400, "structure", f"{where} must be an object.", [where])
    request = raw.get("request")
    if not isinstance(request, dict):
        raise FHIRError(400, "required", f"{where} has no request.", [f"{where}.request"])
    method = request.get("method")
    if not isinstance(method, str) or not method:
        raise FHIRError(400, "required", f"{where} has no request.method.", [f"{where}.request.method"])
    if method in UNSUPPORTED_METHODS:
        raise FHIRError(
            405, "not-supported", f"{where}: {method} is not supported here.", [f"{where}.request.method"]
        )
    if method not in METHODS:
        raise FHIRError(
            400,
            "code-invalid",
            f"{where}: request.method {method!r} is not one of {', '.join(METHODS)}.",
            [f"{where}.request.method"],
        )
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise FHIRError(400, "required", f"{where} has no request.url.", [f"{where}.request.url"])
    strings = {}
    for name in ("ifMatch", "ifNoneExist"):
        value = request.get(name)
        if value is not None and not isinstance(value, str):
            raise FHIRError(
                400, "structure", f"{where}: request.{name} must be a string.", [f"{where}.request.{name}"]
            )
        strings[name] = value
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise FHIRError(400, "structure", f"{where}: fullUrl must be a string.", [f"{where}.fullUrl"])
    target = _target(url=url, base=base, method=method, where=where)
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise FHIRError(400, "required", f"{where}: a {method} needs a resource.", [f"{where}.resource"])
        if resource.get("resourceType") != target["resource_type"]:
            raise FHIRError(
                400,
                "invalid",
                f"{where}: the resource is a {resource.get('resourceType')!r} "
                f"but request.url is for {target['resource_type']}.",
                [f"{where}.resource.resourceType"],
            )
    else:
        resource = None  # a GET or DELETE has nothing to write
    return Entry(
        index=index,
        method=method,
        url=url,
        resource=resource,
        full_url=full_url or None,
        if_match=strings["ifMatch"],
        if_none_exist=strings["ifNoneExist"] if method == "POST" else None,
        **target,
    )


def _target(*, url: str, base: str, method: str, where: str) -> dict:
    """Return what request.url names: a type (and search), an instance, or a version."""
    expression = [f"{where}.request.url"]
    path, has_query, query = url.strip().partition("?")
    if "://" in path:
        # An absolute URL must be this node's base; anything else belongs to another server.
        if not path.startswith(f"{base}/"):
            raise FHIRError(
                400, "not-supported", f"{where}: {path!r} is not on this server ({base}).", expression
            )
        path = path[len(base) + 1 :]
    parts = path.strip("/").split("/")
    resource_type = parts[0]
    if not is_resource_type(resource_type):
        raise FHIRError(
            404,
            "not-supported",
            f"{where}: resource type {resource_type!r} is not supported here.",
            expression,
        )
    if method == "POST":
        if len(parts) != 1 or has_query:
            raise FHIRError(
                400,
                "not-supported",
                f"{where}: a POST's request.url is the resource type; "
                "give a conditional create's search in request.ifNoneExist.",
                expression,
            )
        return {"resource_type": resource_type}
    if method in ("PUT", "DELETE"):
        if len(parts) != 2 or has_query:
            raise FHIRError(
                400,
                "not-supported",
                f"{where}: a {method}'s request.url is Type/id (conditional {method.lower()} "
                "is not supported).",
                expression,
            )
        return {"resource_type": resource_type, "logical_id": parts[1]}
    if len(parts) == 1:
        return {"resource_type": resource_type, "query": search.parse_query_string(query)}
    if len(parts) == 2:
        return {"resource_type": resource_type, "logical_id": parts[1]}
    if len(parts) == 4 and parts[2] == "_history":
        return {"resource_type": resource_type, "logical_id": parts[1], "version_id": parts[3]}
    raise FHIRError(
        400,
        "not-supported",
        f"{where}: a GET here is a read (Type/id), a vread (Type/id/_history/n) or a search (Type?...).",
        expression,
    )


def _check_distinct(entries: list[Entry]) -> None:
    """Refuse a transaction whose entries share a fullUrl, or write one resource twice."""
    seen_urls: set[str] = set()
    seen_targets: set[tuple[str, str]] = set()
    for entry in entries:
        where = f"Bundle.entry[{entry.index}]"
        if entry.full_url:
            if entry.full_url in seen_urls:
                raise FHIRError(
                    400,
                    "invalid",
                    f"{where}: fullUrl {entry.full_url!r} is used by another entry.",
                    [f"{where}.fullUrl"],
                )
            seen_urls.add(entry.full_url)
        if entry.method in ("PUT", "DELETE"):
            target = (entry.resource_type, entry.logical_id or "")
            if target in seen_targets:
                raise FHIRError(
                    400,
                    "invalid",
                    f"{where}: {target[0]}/{target[1]} is written by more than one entry.",
                    [f"{where}.request.url"],
                )
            seen_targets.add(target)


def _identities(*, node: Node, entries: list[Entry]) -> dict[int, tuple[str, Resource | None]]:
    """Return each POST's logical id: a conditional create's one match, or else a new uuid4."""
    identities: dict[int, tuple[str, Resource | None]] = {}
    for entry in entries:
        existing = None
        if entry.if_none_exist:  # an empty one is no condition, as for If-None-Exist on a POST
            with _failing_at(entry):
                # Validated like a single conditional create, which refuses an invalid body either way.
                validate_resource(entry.resource, resource_type=entry.resource_type)
                existing = _conditional_match(node=node, entry=entry)
        logical_id = existing.logical_id if existing is not None else str(uuid.uuid4())
        identities[entry.index] = (logical_id, existing)
    return identities


def _conditional_match(*, node: Node, entry: Entry) -> Resource | None:
    """Return the one resource ifNoneExist matches, None for none, 412 for several."""
    params = search.parse_query_string(entry.if_none_exist or "")
    if not params:
        raise FHIRError(
            400,
            "invalid",
            "request.ifNoneExist must hold search parameters, e.g. identifier=system|value.",
            [f"Bundle.entry[{entry.index}].request.ifNoneExist"],
        )
    matches = list(
        search.matching(node=node, resource_type=entry.resource_type, params=params, strict=True)[:2]
    )
    if len(matches) > 1:
        raise FHIRError(
            412,
            "multiple-matches",
            f"ifNoneExist {entry.if_none_exist!r} matches more than one {entry.resource_type}.",
            [f"Bundle.entry[{entry.index}].request.ifNoneExist"],
        )
    return matches[0] if matches else None


def _check_not_also_written(identities: dict[int, tuple[str, Resource | None]], entries: list[Entry]) -> None:
    """Refuse a conditional create that matched a resource another entry updates or deletes."""
    written = {(e.resource_type, e.logical_id) for e in entries if e.method in ("PUT", "DELETE")}
    for entry in entries:
        if entry.method != "POST":
            continue
        logical_id, existing = identities[entry.index]
        if existing is not None and (entry.resource_type, logical_id) in written:
            raise FHIRError(
                400,
                "invalid",
                f"Bundle.entry[{entry.index}]: ifNoneExist matched {entry.resource_type}/{logical_id}, "
                "which another entry of this transaction also writes.",
                [f"Bundle.entry[{entry.index}].request.ifNoneExist"],
            )


def _conditional_references(*, node: Node, value: object, caller: triggers.Caller) -> dict[str, str]:
    """Resolve each conditional reference (`Patient?identifier=system|value`) in a resource to
    the one resource here it matches, as R4's transaction rules say: none or several fail the
    transaction (404, 412). Searching needs the scope a search would."""
    resolved: dict[str, str] = {}
    for reference in _references_in(value):
        resource_type, _, query = reference.partition("?")
        if not is_resource_type(resource_type) or reference in resolved:
            continue
        params = search.parse_query_string(query)
        if not params:
            raise FHIRError(400, "invalid", f"The conditional reference {reference!r} has no search.")
        caller.allow(scopes.search_needs(resource_type, params, node))
        matches = list(
            search.matching(node=node, resource_type=resource_type, params=params, strict=True)[:2]
        )
        if not matches:
            raise FHIRError(
                404, "not-found", f"The conditional reference {reference!r} matches no resource here."
            )
        if len(matches) > 1:
            raise FHIRError(
                412,
                "multiple-matches",
                f"The conditional reference {reference!r} matches more than one resource.",
            )
        resolved[reference] = f"{resource_type}/{matches[0].logical_id}"
    return resolved


CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+\?")


def _references_in(value: object) -> Iterator[str]:
    """Every `reference` of the form Type?search in a resource."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and CONDITIONAL_REFERENCE.match(item):
                yield item
            else:
                yield from _references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references_in(item)


def references_rewrite(*, value: object, references: dict[str, str]) -> object:
    """Return a copy of value with every reference to an entry's fullUrl made Type/id."""
    if isinstance(value, dict):
        return {
            key: (
                references[item]
                if key == "reference" and isinstance(item, str) and item in references
                else references_rewrite(value=item, references=references)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [references_rewrite(value=item, references=references) for item in value]
    return value


def _allowed(node: Node, entry: Entry, caller: triggers.Caller) -> None:
    path = "/".join(part for part in (entry.resource_type, entry.logical_id) if part)
    if entry.version_id is not None:
        path += f"/_history/{entry.version_id}"
    caller.allow(scopes.needs(entry.method, path, entry.query or [], node))


def _perform(
    *,
    node: Node,
    entry: Entry,
    base: str,
    caller: triggers.Caller,
    if_none_exist: str | None = None,
    logical_id: str | None = None,
) -> dict:
    """Carry out one entry through the services and selectors; return its response entry."""
    if entry.method == "POST":
        taken = triggers.create(
            node=node,
            caller=caller,
            resource_type=entry.resource_type,
            content=entry.resource,
            if_none_exist=if_none_exist,
            logical_id=logical_id,
        )
        return _written(taken.record, taken.status, base)
    if entry.method == "PUT":
        taken = triggers.update(
            node=node,
            caller=caller,
            resource_type=entry.resource_type,
            logical_id=entry.logical_id,
            content=entry.resource,
            if_match=entry.if_match,
        )
        return _written(taken.record, taken.status, base)
    if entry.method == "DELETE":
        record = triggers.delete(
            node=node,
            caller=caller,
            resource_type=entry.resource_type,
            logical_id=entry.logical_id,
            if_match=entry.if_match,
        )
        return {"response": {"status": _status(204), **_version(record)}}
    if entry.query is not None:
        return _searched(node=node, entry=entry, base=base)
    if entry.version_id is not None:
        version = selectors.resource_version(
            node=node,
            resource_type=entry.resource_type,
            logical_id=entry.logical_id,
            version_id=entry.version_id,
        )
        return _read(version, entry, base)
    record = selectors.resource_current(
        node=node, resource_type=entry.resource_type, logical_id=entry.logical_id
    )
    return _read(record, entry, base)


def _written(record: Resource, status: int, base: str) -> dict:
    path = f"{record.resource_type}/{record.logical_id}"
    return {
        "fullUrl": f"{base}/{path}",
        "resource": RawJSON(record.text),
        "response": {
            "status": _status(status),
            "location": f"{path}/_history/{record.version_id}",
            **_version(record),
        },
    }


def _read(record: Resource | ResourceVersion, entry: Entry, base: str) -> dict:
    return {
        "fullUrl": f"{base}/{entry.resource_type}/{entry.logical_id}",
        "resource": RawJSON(record.text),
        "response": {"status": _status(200), **_version(record)},
    }


def _searched(*, node: Node, entry: Entry, base: str) -> dict:
    searchset = bundles.search_bundle(
        node=node, resource_type=entry.resource_type, params=entry.query or [], base=base
    )
    return {"resource": searchset, "response": {"status": _status(200)}}


def _version(record: Resource | ResourceVersion) -> dict:
    return {
        "etag": f'W/"{record.version_id}"',
        "lastModified": record.last_updated.isoformat(timespec="milliseconds"),
    }


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


@contextmanager
def _failing_at(entry: Entry) -> Iterator[None]:
    """Say which entry failed a transaction, keeping the error's status and issues."""
    try:
        yield
    except FHIRError as exc:
        where = f"Bundle.entry[{entry.index}] ({entry.method} {entry.url})"
        issues = [
            issue
            if issue.diagnostics.startswith("Bundle.entry[")
            else dataclasses.replace(issue, diagnostics=f"{where}: {issue.diagnostics}")
            for issue in exc.issues
        ]
        raise FHIRError(exc.status, "", "", issues=issues) from exc
