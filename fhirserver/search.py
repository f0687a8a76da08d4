"""Search over a node's resources by the values indexed at write time."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.db.models import Q, QuerySet

from fhirserver.errors import FHIRError
from fhirserver.models import Resource, TokenIndex
from nodes.models import Node


@dataclass(frozen=True)
class SearchParameter:
    code: str
    type: str
    documentation: str


# Parameters every resource type supports.
SEARCH_PARAMETERS = (
    SearchParameter("_id", "token", "The resource's logical id."),
    SearchParameter("identifier", "token", "A business identifier: system|value, value, system| or |value."),
)
_SEARCH_CODES = {p.code for p in SEARCH_PARAMETERS}
# Result parameters: they shape the answer rather than select resources.
RESULT_PARAMETERS = {"_count", "_format", "_total", "_after"}


@dataclass
class SearchPage:
    resources: list[Resource]
    total: int | None
    next_after: int | None
    ignored: list[str]


def parse_query_string(query: str) -> list[tuple[str, str]]:
    """Return the (name, value) pairs of a query string, in order."""
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def matching(
    *, node: Node, resource_type: str, params: list[tuple[str, str]], strict: bool
) -> QuerySet[Resource]:
    """Return this node's live resources of the type that match every parameter (AND)."""
    queryset = Resource.objects.filter(node=node, resource_type=resource_type, deleted=False)
    for name, value in params:
        if name in RESULT_PARAMETERS:
            continue
        if name not in _SEARCH_CODES:
            if strict:
                raise FHIRError(
                    400,
                    "not-supported",
                    f"Search parameter {name!r} is not supported for {resource_type}.",
                    [name],
                )
            continue
        values = [v for v in value.split(",") if v]
        if not values:
            raise FHIRError(400, "invalid", f"Search parameter {name!r} has no value.", [name])
        if name == "_id":
            queryset = queryset.filter(logical_id__in=values)
        else:
            tokens = TokenIndex.objects.filter(node=node, resource_type=resource_type, param=name)
            queryset = queryset.filter(pk__in=tokens.filter(_any_token(values)).values("resource_id"))
    return queryset


def search_page(
    *, node: Node, resource_type: str, params: list[tuple[str, str]], strict: bool = False
) -> SearchPage:
    """Return one page of matches, oldest first, and the cursor of the next page."""
    queryset = matching(node=node, resource_type=resource_type, params=params, strict=strict)
    ignored = [name for name, _ in params if name not in _SEARCH_CODES | RESULT_PARAMETERS]
    control = dict(params)
    count = _count(control.get("_count"))
    total = None if control.get("_total") == "none" else queryset.count()
    after = control.get("_after")
    if after:
        if not after.isdigit():
            raise FHIRError(400, "invalid", "_after is a paging cursor from a next link.", ["_after"])
        queryset = queryset.filter(pk__gt=int(after))
    if count == 0:
        return SearchPage([], total, None, ignored)
    resources = list(queryset.order_by("pk")[: count + 1])
    next_after = resources[count - 1].pk if len(resources) > count else None
    return SearchPage(resources[:count], total, next_after, ignored)


def _count(value: str | None) -> int:
    if value is None:
        return settings.FHIR_SEARCH_DEFAULT_COUNT
    if not value.isdigit():
        raise FHIRError(400, "invalid", f"_count must be a whole number, not {value!r}.", ["_count"])
    return min(int(value), settings.FHIR_SEARCH_MAX_COUNT)


def _any_token(values: list[str]) -> Q:
    """Return the OR of token values: system|code, code, system| or |code."""
    condition = Q()
    for value in values:
        if "|" not in value:
            condition |= Q(code=value)
            continue
        system, code = value.split("|", 1)
        if system and code:
            condition |= Q(system=system, code=code)
        elif system:
            condition |= Q(system=system)
        else:
            condition |= Q(system="", code=code)
    return condition
