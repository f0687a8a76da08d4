"""Bundles built around stored resource text, which is spliced in without re-serialising."""

from __future__ import annotations

from urllib.parse import urlencode

from django.utils import timezone
from django.utils.http import http_date

from fhirserver import jsonio, search
from fhirserver.errors import Issue, operation_outcome
from fhirserver.jsonio import RawJSON
from fhirserver.models import Resource, ResourceVersion

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def search_bundle(
    *, node, resource_type: str, params: list[tuple[str, str]], base: str, strict: bool = False
) -> dict:
    """Run a search and return its searchset Bundle, with self, next and previous links."""
    page = search.search_page(node=node, resource_type=resource_type, params=params, strict=strict, base=base)
    here = f"{base}/{resource_type}"
    kept = [(name, value) for name, value in params if name != "_cursor"]
    links = {"self": link(here, params)}
    if page.next_cursor:
        links["next"] = link(here, [*kept, ("_cursor", page.next_cursor)])
    if page.previous_cursor:
        links["previous"] = link(here, [*kept, ("_cursor", page.previous_cursor)])
    return searchset(
        base=base,
        matches=page.resources,
        included=page.included,
        total=page.total,
        links=links,
        ignored=page.ignored,
        elements=page.elements,
        unindexed=page.unindexed,
    )


def link(here: str, params: list[tuple[str, str]]) -> str:
    """Return a URL with these query parameters."""
    return f"{here}?{urlencode(params)}" if params else here


def searchset(
    *,
    base: str,
    matches: list[Resource],
    included: list[Resource],
    total: int | None,
    links: dict[str, str],
    ignored: list[str],
    elements: list[str],
    unindexed: list[str],
) -> dict:
    """Return a searchset Bundle: matches, then included resources, then any warning."""
    entries = [_entry(base, r, "match", elements) for r in matches]
    entries += [_entry(base, r, "include", []) for r in included]
    issues = []
    if ignored:
        names = sorted(set(ignored))
        issues.append(
            Issue(
                "not-supported",
                f"These parameters are not supported and were ignored: {', '.join(names)}.",
                names,
                severity="warning",
            )
        )
    if unindexed:
        issues.append(
            Issue(
                "incomplete",
                f"Not yet fully indexed: {', '.join(unindexed)}. Resources written before the parameter "
                "was defined are found by it once $reindex has indexed them again.",
                list(unindexed),
                severity="warning",
            )
        )
    if issues:
        entries.append({"resource": operation_outcome(issues), "search": {"mode": "outcome"}})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "meta": _meta()}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = [{"relation": relation, "url": url} for relation, url in links.items()]
    bundle["entry"] = entries
    return bundle


def _entry(base: str, record: Resource, mode: str, elements: list[str]) -> dict:
    resource = RawJSON(record.text) if not elements else _subset(record.text, elements)
    return {
        "fullUrl": f"{base}/{record.resource_type}/{record.logical_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _subset(text: str, elements: list[str]) -> dict:
    """Keep only the named top-level elements (and what identifies the resource), marked SUBSETTED."""
    resource = jsonio.loads(text)
    kept = {k: v for k, v in resource.items() if k in ("resourceType", "id", "meta") or k in elements}
    kept["meta"] = {**kept.get("meta", {}), "tag": [*kept.get("meta", {}).get("tag", []), SUBSETTED]}
    return kept


def history(*, base: str, versions: list[ResourceVersion], links: dict[str, str]) -> dict:
    """Return a history Bundle of these versions (newest first), deletions included."""
    entries = []
    for version in versions:
        url = f"{version.resource_type}/{version.resource.logical_id}"
        entry: dict = {"fullUrl": f"{base}/{url}"}
        if version.text:
            entry["resource"] = RawJSON(version.text)
        status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[version.method]
        entry["request"] = {
            "method": version.method,
            "url": url if version.method != "POST" else version.resource_type,
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
        "link": [{"relation": relation, "url": url} for relation, url in links.items()],
        "entry": entries,
    }


def _meta() -> dict:
    return {"lastUpdated": timezone.now().isoformat(timespec="milliseconds")}


def last_modified(resource: Resource | ResourceVersion) -> str:
    """Return the HTTP date of a version, for Last-Modified."""
    return http_date(resource.last_updated.timestamp())
