"""Bundles built around stored resource text, which is spliced in without re-serialising."""

from __future__ import annotations

from django.utils import timezone
from django.utils.http import http_date

from fhirserver.errors import Issue, operation_outcome
from fhirserver.jsonio import RawJSON
from fhirserver.models import Resource, ResourceVersion


def searchset(
    *,
    base: str,
    resources: list[Resource],
    total: int | None,
    self_url: str,
    next_url: str | None,
    ignored: list[str],
) -> dict:
    """Return a searchset Bundle of these matches."""
    entries = [
        {
            "fullUrl": f"{base}/{r.resource_type}/{r.logical_id}",
            "resource": RawJSON(r.text),
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    if ignored:
        issue = Issue(
            "not-supported",
            f"These parameters are not supported and were ignored: {', '.join(sorted(set(ignored)))}.",
            sorted(set(ignored)),
            severity="warning",
        )
        entries.append({"resource": operation_outcome([issue]), "search": {"mode": "outcome"}})
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "meta": _meta()}
    if total is not None:
        bundle["total"] = total
    bundle.update(link=links, entry=entries)
    return bundle


def history(*, base: str, resource: Resource, versions: list[ResourceVersion], self_url: str) -> dict:
    """Return a history Bundle of one resource's versions, newest first."""
    url = f"{resource.resource_type}/{resource.logical_id}"
    entries = []
    for version in versions:
        entry: dict = {"fullUrl": f"{base}/{url}"}
        if version.text:
            entry["resource"] = RawJSON(version.text)
        status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[version.method]
        entry["request"] = {
            "method": version.method,
            "url": url if version.method != "POST" else resource.resource_type,
        }
        entry["response"] = {
            "status": status,
            "etag": f'W/"{version.version_id}"',
            "lastModified": version.last_updated.isoformat(timespec="milliseconds"),
        }
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "meta": _meta(),
        "total": len(entries),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }


def _meta() -> dict:
    return {"lastUpdated": timezone.now().isoformat(timespec="milliseconds")}


def last_modified(resource: Resource | ResourceVersion) -> str:
    """Return the HTTP date of a version, for Last-Modified."""
    return http_date(resource.last_updated.timestamp())
