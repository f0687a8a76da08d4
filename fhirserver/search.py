"""Search over a node's resources by the values indexed at write time."""

from __future__ import annotations

import base64
import binascii
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import reduce
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Max, Min, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from fhirserver import jsonio, searchplans
from fhirserver.dates import EARLIEST, LATEST, date_range
from fhirserver.errors import FHIRError
from fhirserver.indexing import TABLE_OF, text_param
from fhirserver.models import (
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    Resource,
    StringIndex,
    TokenIndex,
)
from fhirserver.registry import is_resource_type
from fhirserver.searchparams import SearchParam, normalise, params_for

# Result parameters: they shape the answer rather than select resources.
RESULT_PARAMETERS = {
    "_count",
    "_sort",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_format",
    "_cursor",
    "_include:iterate",
    "_revinclude:iterate",
}
MODIFIERS = {
    "token": {"", "not", "text", "missing"},
    "uri": {"", "above", "below", "missing"},
    "string": {"", "exact", "contains", "missing"},
    "date": {"", "missing"},
    "reference": {"", "identifier", "missing"},
    "number": {"", "missing"},
    "quantity": {"", "missing"},
    "composite": {"", "missing"},
}
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
MAX_ITERATIONS = 3  # how deep _include:iterate and _revinclude:iterate go
SORTABLE = {"date", "string", "token", "uri", "number", "quantity"}
MAX_INCLUDES = 1000


@dataclass
class SearchPage:
    resources: list[Resource]
    included: list[Resource]
    total: int | None
    next_cursor: str | None
    previous_cursor: str | None
    ignored: list[str]
    elements: list[str] = field(default_factory=list)
    unindexed: list[str] = field(default_factory=list)  # the node's own parameters not yet fully indexed


def parse_query_string(query: str) -> list[tuple[str, str]]:
    """Return the (name, value) pairs of a query string, in order."""
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def matching(
    *,
    node,
    resource_type: str,
    params: list[tuple[str, str]],
    strict: bool,
    base: str = "",
    within: int | None = None,
) -> QuerySet[Resource]:
    """Return this node's live resources of the type matching every parameter (repeats AND).

    With `within` (a Resource pk), only that resource, if it matches: each index table is then
    read for its rows alone. SQLite runs an `IN (subquery)` in full before it looks at the row,
    so without it asking whether one resource matches costs as much as the whole search (every
    request naming a pharmacy, for a subscription filtered by that pharmacy)."""
    queryset = Resource.objects.filter(node=node, resource_type=resource_type, deleted=False)
    if within is not None:
        queryset = queryset.filter(pk=within)
    conditions: list[tuple[str, str, Q]] = []
    for name, value in params:
        if "\x00" in name or "\x00" in value:  # no database stores it, and no FHIR string holds it
            raise FHIRError(400, "invalid", "A search parameter may not contain the NUL character.", [name])
        if name in RESULT_PARAMETERS:
            continue
        condition = _condition(node, resource_type, name, value, base, within)
        if condition is None:
            if strict:
                raise FHIRError(
                    400,
                    "not-supported",
                    f"Search parameter {name!r} is not supported for {resource_type}.",
                    [name],
                )
            continue
        conditions.append((name, value, condition))
    if within is None and len(conditions) > 1 and connections[DEFAULT_DB_ALIAS].vendor == "sqlite":
        conditions = _driven(node, resource_type, base, conditions)
    for _, _, condition in conditions:
        queryset = queryset.filter(condition)
    return queryset


# Conditions of a search on SQLite (see _driven): one that matches at least this many index rows
# is broad, checked row by row when a narrower condition drives the search.
BROAD_ROWS = 200


def _driven(node, resource_type: str, base: str, conditions: list[tuple[str, str, Q]]) -> list:
    """Let a narrow condition drive a search that also has broad ones (patient=… & status=active).

    SQLite runs each `pk IN (subquery)` in full before it looks at a row: status=active lists
    every active request, so such a search grows with the data however few resources it finds.
    When one condition matches few index rows (fewer than BROAD_ROWS, counted up to there) and
    others match many, the broad ones become subqueries on each candidate's own rows (correlated,
    through the index on the resource), found from the narrow one's. Otherwise nothing changes."""
    sizes = {}
    for index, (name, _, condition) in enumerate(conditions):
        rows = _index_rows_of(node, resource_type, name, condition)
        if rows is not None:
            sizes[index] = rows.order_by()[:BROAD_ROWS].count()
    broad = [index for index, size in sizes.items() if size >= BROAD_ROWS]
    if not broad or len(broad) == len(sizes):
        return conditions
    driven = list(conditions)
    for index in broad:
        name, value, _ = conditions[index]
        driven[index] = (name, value, _condition(node, resource_type, name, value, base, OuterRef("pk")))
    return driven


def _index_rows_of(node, resource_type: str, name: str, condition: Q) -> QuerySet | None:
    """The index rows a plain condition (`pk IN (rows)`, of a parameter of one table) is met by,
    else None (chains, composites, :missing, :not, _id, _lastUpdated and _has stay as they are)."""
    parsed = None if name.startswith("_has:") else _parameter(node, resource_type, name)
    if parsed is None or parsed[2] or parsed[1] == "missing" or parsed[0].type == "composite":
        return None
    if condition.negated or len(condition.children) != 1 or not isinstance(condition.children[0], tuple):
        return None
    key, rows = condition.children[0]
    return rows if key == "pk__in" and isinstance(rows, QuerySet) else None


def unsupported(node, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    """Return the names among params that this server would ignore for the type."""
    return [
        name
        for name, _ in params
        if name not in RESULT_PARAMETERS
        and not name.startswith("_has:")
        and _parameter(node, resource_type, name) is None
    ]


def unindexed(node, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    """Return the codes among params of the node's own parameters that resources written
    before they were defined may still lack (until $reindex)."""
    found = (_parameter(node, resource_type, name) for name, _ in params if name not in RESULT_PARAMETERS)
    return sorted({parsed[0].code for parsed in found if parsed is not None and parsed[0].pending})


def _parameter(node, resource_type: str, name: str) -> tuple[SearchParam, str, str | None] | None:
    """Split name into (parameter, modifier, chained rest) if the type supports it."""
    head, _, chain = name.partition(".")
    code, _, modifier = head.partition(":")
    param = params_for(resource_type, node).get(code)
    if param is None:
        return None
    if chain:
        if param.type != "reference" or (modifier and not is_resource_type(modifier)):
            return None
        return param, modifier, chain
    if param.type == "reference" and modifier and is_resource_type(modifier):
        return param, modifier, None
    if modifier not in MODIFIERS[param.type]:
        return None
    return param, modifier, None


def _condition(
    node, resource_type: str, name: str, value: str, base: str, within: int | OuterRef | None = None
) -> Q | None:
    if name.startswith("_has:"):
        return _has(node, resource_type, name, value)
    parsed = _parameter(node, resource_type, name)
    if parsed is None:
        return None
    param, modifier, chain = parsed
    values = _split(value)
    if not values:
        raise FHIRError(400, "invalid", f"Search parameter {name!r} has no value.", [name])
    if modifier == "missing":
        return _missing(node, resource_type, param, name, value, within)
    if param.code == "_id":
        return Q(logical_id__in=values)
    if param.code == "_lastUpdated":
        return _any(_date_condition(v, name, "last_updated", "last_updated") for v in values)
    rows = _rows(node, resource_type, param.code, within)
    if chain:
        return Q(
            pk__in=ReferenceIndex.objects.filter(**rows)
            .filter(_chain(node, param, modifier, chain, value))
            .values("resource_id")
        )
    if param.type == "composite":
        return _any(_composite(node, resource_type, param, name, v, base, within) for v in values)
    if param.type == "token" and modifier == "text":
        table = StringIndex.objects.filter(**{**rows, "param": text_param(param.code)})
        return Q(pk__in=table.filter(_any(_string(v, "") for v in values)).values("resource_id"))
    if param.type in ("token", "uri"):
        matches = TokenIndex.objects.filter(**rows).filter(
            _any(_token(v, param.type, modifier) for v in values)
        )
        if modifier == "not":
            return ~Q(pk__in=matches.values("resource_id"))
        return Q(pk__in=matches.values("resource_id"))
    if param.type in ("number", "quantity"):
        table = (NumberIndex if param.type == "number" else QuantityIndex).objects.filter(**rows)
        return Q(
            pk__in=table.filter(_any(_number(v, name, param.type) for v in values)).values("resource_id")
        )
    if param.type == "string":
        table = StringIndex.objects.filter(**rows)
        return Q(pk__in=table.filter(_any(_string(v, modifier) for v in values)).values("resource_id"))
    if param.type == "date":
        table = DateIndex.objects.filter(**rows)
        return Q(
            pk__in=table.filter(_any(_date_condition(v, name, "low", "high") for v in values)).values(
                "resource_id"
            )
        )
    table = ReferenceIndex.objects.filter(**rows)
    return Q(
        pk__in=table.filter(_any(_reference(v, modifier, param, base) for v in values)).values("resource_id")
    )


def _rows(node, resource_type: str, code: str, within: int | OuterRef | None) -> dict:
    """The filter of a parameter's index rows: the node's, of the type; with `within` (a pk, or
    OuterRef("pk") for each candidate of a search), that one resource's, by its key alone, so that
    SQLite reads them through the index on the resource (given the node and type as well, it
    prefers the index that starts with them, and reads every row of the parameter's value:
    thousands, for a pharmacy's code)."""
    if within is not None:
        return {"resource_id": within, "param": code}
    return {"resource_type": resource_type, "param": code, "node": node}


def _split(value: str, separator: str = ",") -> list[str]:
    """Split OR values on commas (a composite's parts on $) not escaped with a backslash."""
    parts, current, escaped = [], "", False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part]


def _any(conditions) -> Q:
    """OR the conditions together (there is always at least one)."""
    return reduce(operator.or_, conditions)


def _token(value: str, kind: str, modifier: str = "") -> Q:
    """Match a token: system|code, code, system| or |code; a uri as it is, or (:below) any
    under it, or (:above) any it is under."""
    if kind == "uri" and modifier == "below":
        return Q(code__startswith=value)
    if kind == "uri" and modifier == "above":
        return Q(
            code__in=[
                value[:end] for end in range(1, len(value) + 1) if end == len(value) or value[end] == "/"
            ]
        )
    if "|" not in value or kind == "uri":
        return Q(code=value)
    system, code = value.split("|", 1)
    if system and code:
        return Q(system=system, code=code)
    if system:
        return Q(system=system)
    return Q(system="", code=code)


def _missing(
    node, resource_type: str, param: SearchParam, name: str, value: str, within: int | None = None
) -> Q:
    """`:missing=true`: resources with no value for the parameter; `false`: those with one."""
    if value not in ("true", "false"):
        raise FHIRError(400, "invalid", f"{name} takes true or false, not {value!r}.", [name])
    if not param.expression:
        return Q(pk__in=[]) if value == "true" else Q()
    kind, code = (
        (param.components[0].type, f"{param.code}$0") if param.components else (param.type, param.code)
    )
    table = TABLE_OF[kind].objects.filter(**_rows(node, resource_type, code, within))
    present = Q(pk__in=table.values("resource_id"))
    return ~present if value == "true" else present


def _number(value: str, name: str, kind: str) -> Q:
    """Compare a number (or a quantity's, with its system and code when given) as R4 3.1.1.5.6
    says: eq means within the precision the value is written with."""
    number, _, unit = value.partition("|")
    prefix = number[:2] if number[:2] in DATE_PREFIXES else "eq"
    text = number[2:] if number[:2] in DATE_PREFIXES else number
    try:
        exact = Decimal(text)
    except InvalidOperation:
        raise FHIRError(400, "invalid", f"{text!r} is not a number for {name}.", [name]) from None
    if not exact.is_finite():
        raise FHIRError(400, "invalid", f"{text!r} is not a number for {name}.", [name])
    half = Decimal(5).scaleb(exact.as_tuple().exponent - 1)
    low, high, at = float(exact - half), float(exact + half), float(exact)
    conditions = {
        "eq": Q(value__gte=low, value__lt=high),
        "ne": ~Q(value__gte=low, value__lt=high),
        "gt": Q(value__gt=at),
        "lt": Q(value__lt=at),
        "ge": Q(value__gte=at),
        "le": Q(value__lte=at),
        "sa": Q(value__gt=at),
        "eb": Q(value__lt=at),
        "ap": Q(value__gte=at - abs(at) * 0.1, value__lte=at + abs(at) * 0.1),
    }
    condition = conditions[prefix]
    if kind == "quantity" and unit:
        system, _, code = unit.partition("|") if "|" in unit else ("", "", unit)
        if system:
            condition &= Q(system=system)
        if code:
            condition &= Q(code=code) | Q(unit=code) if not system else Q(code=code)
    return condition


def _composite(
    node, resource_type: str, param: SearchParam, name: str, value: str, base: str, within: int | None = None
) -> Q:
    """Match a composite `a$b`: the components' rows of one element (one group) match each part."""
    parts = _split(value, "$")
    if len(parts) != len(param.components):
        raise FHIRError(
            400,
            "invalid",
            f"{name} takes {len(param.components)} values joined by $, e.g. "
            f"{'$'.join(c.type for c in param.components)}.",
            [name],
        )
    groups = None
    for index in reversed(range(len(parts))):
        component = param.components[index]
        kind = TABLE_OF[component.type]
        rows = kind.objects.filter(**_rows(node, resource_type, f"{param.code}${index}", within))
        rows = rows.filter(_part(component, parts[index], name, base))
        if groups is not None:
            rows = rows.filter(group__in=groups)
        groups = rows.values("group")
    return Q(pk__in=rows.values("resource_id"))


def _part(component, value: str, name: str, base: str) -> Q:
    """A component's condition, as its own type matches."""
    if component.type in ("token", "uri"):
        return _token(value, component.type)
    if component.type == "string":
        return _string(value, "")
    if component.type == "date":
        return _date_condition(value, name, "low", "high")
    if component.type in ("number", "quantity"):
        return _number(value, name, component.type)
    return _reference(value, "", SearchParam(name, "reference", "", component.targets), base)


def _has(node, resource_type: str, name: str, value: str) -> Q:
    """Reverse chaining: `_has:Type:param:rest=value` matches what a Type that matches
    `rest=value` refers to through `param` (rest may be another _has)."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not is_resource_type(parts[1]):
        raise FHIRError(
            400,
            "invalid",
            f"{name} should read _has:Type:parameter:search, e.g. _has:Observation:patient:code.",
            [name],
        )
    _, source_type, code, rest = parts
    param = params_for(source_type, node).get(code)
    if param is None or param.type != "reference":
        raise FHIRError(400, "not-supported", f"{source_type} has no reference parameter {code!r}.", [name])
    sources = matching(node=node, resource_type=source_type, params=[(rest, value)], strict=True)
    refs = ReferenceIndex.objects.filter(
        node=node, resource_type=source_type, param=code, resource__in=sources
    ).filter(Q(target_type=resource_type) | Q(target_type=""))
    return Q(logical_id__in=refs.values("target_id"))


def _string(value: str, modifier: str) -> Q:
    if modifier == "exact":
        return Q(exact=value)
    if modifier == "contains":
        return Q(normalised__contains=normalise(value))
    return Q(normalised__startswith=normalise(value))


def _date_condition(value: str, name: str, low: str, high: str) -> Q:
    """Compare stored ranges [low, high) with a prefixed search date (FHIR R4 3.1.1.5.7)."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    found = date_range(text)
    if found is None:
        raise FHIRError(400, "invalid", f"{text!r} is not a FHIR date for {name}.", [name])
    start, end = found
    if prefix == "ap":
        margin = max(abs(timezone.now() - start) * 0.1, timedelta(days=1))
        start, end = max(start - margin, EARLIEST), min(end + margin, LATEST)
    if low == high:  # a single instant column: its range is [t, t]
        conditions = {
            "eq": Q(**{f"{low}__gte": start, f"{low}__lt": end}),
            "ap": Q(**{f"{low}__gte": start, f"{low}__lt": end}),
            "lt": Q(**{f"{low}__lt": start}),
            "le": Q(**{f"{low}__lt": end}),
            "gt": Q(**{f"{low}__gte": end}),
            "ge": Q(**{f"{low}__gte": start}),
            "sa": Q(**{f"{low}__gte": end}),
            "eb": Q(**{f"{low}__lt": start}),
        }
    else:
        conditions = {
            "eq": Q(**{f"{low}__gte": start, f"{high}__lte": end}),
            "ap": Q(**{f"{low}__lt": end, f"{high}__gt": start}),
            "lt": Q(**{f"{low}__lt": start}),
            "le": Q(**{f"{low}__lt": end}),
            "gt": Q(**{f"{high}__gt": end}),
            "ge": Q(**{f"{high}__gt": start}),
            "sa": Q(**{f"{low}__gte": end}),
            "eb": Q(**{f"{high}__lte": start}),
        }
    if prefix == "ne":
        return ~conditions["eq"]
    return conditions[prefix]


def _reference(value: str, modifier: str, param: SearchParam, base: str = "") -> Q:
    """Match a reference by Type/id, id, absolute URL, or (with :identifier) system|value."""
    if modifier == "identifier":
        if "|" not in value:
            return Q(id_value=value)
        system, code = value.split("|", 1)
        return Q(id_system=system, id_value=code) if system else Q(id_value=code)
    if "://" in value or value.startswith("urn:"):
        # An absolute URL: as stored, or, when it is this node's own base, any Type/id to it.
        local = value.split("/_history/")[0]
        if base and local.startswith(f"{base}/") and local.count("/") == base.count("/") + 2:
            target_type, target_id = local.removeprefix(f"{base}/").split("/")
            return Q(url=value) | Q(target_type=target_type, target_id=target_id)
        return Q(url=value)
    if "/" in value:
        target_type, target_id = value.split("/_history/")[0].split("/", 1)
        return Q(target_type=target_type, target_id=target_id)
    if modifier:
        return Q(target_type=modifier, target_id=value)
    return Q(target_id=value, target_type__in=param.targets) if param.targets else Q(target_id=value)


def _chain(node, param: SearchParam, modifier: str, chain: str, value: str) -> Q:
    """Match references whose target matches `chain=value`: a resource here, or a logical identifier."""
    target_types = [modifier] if modifier else list(param.targets)
    if not target_types:
        raise FHIRError(
            400,
            "invalid",
            f"Name the target type to chain through {param.code}, e.g. {param.code}:Patient.{chain}.",
        )
    chained = chain.split(".")[0].split(":")[0]
    supported = [t for t in target_types if chained in params_for(t, node) or chained.startswith("_has")]
    if not supported:
        raise FHIRError(
            400, "not-supported", f"No type {param.code} can point to has a parameter {chained!r}.", [chain]
        )
    condition = Q(pk__in=[])
    for target_type in supported:
        targets = matching(node=node, resource_type=target_type, params=[(chain, value)], strict=True)
        condition |= Q(target_type=target_type, target_id__in=targets.values("logical_id"))
        # A logical reference (by identifier, no id) reaches the targets holding that identifier.
        identifiers = TokenIndex.objects.filter(resource__in=targets, param="identifier").values("code")
        condition |= Q(target_id="", id_value__in=identifiers)
    if chain == "identifier":
        condition |= _any(_reference(v, "identifier", param) for v in _split(value))
    return condition


# Sorting and keyset paging: a cursor holds the sort values of the last row shown, so pages stay
# right while resources are written (no OFFSET over a moving set).


def _sort_keys(node, resource_type: str, sort: str | None) -> list[tuple[str, bool]]:
    """Return (field, descending) pairs for _sort, annotating what needs a subquery; pk last."""
    keys: list[tuple[str, bool]] = []
    for item in _split(sort or ""):
        descending = item.startswith("-")
        code = item.lstrip("-")
        if code == "_id":
            keys.append(("logical_id", descending))
        elif code == "_lastUpdated":
            keys.append(("last_updated", descending))
        else:
            param = params_for(resource_type, node).get(code)
            if param is None or param.type not in SORTABLE:
                raise FHIRError(400, "not-supported", f"Cannot sort {resource_type} by {code!r}.", ["_sort"])
            keys.append((f"sort_{code.encode().hex()}", descending))  # any code, as a column name
    keys.append(("pk", keys[-1][1] if keys else False))
    return keys


def _annotate_sort(queryset: QuerySet, node, resource_type: str, keys: list[tuple[str, bool]]) -> QuerySet:
    for key, descending in keys:
        if not key.startswith("sort_"):
            continue
        code = bytes.fromhex(key.removeprefix("sort_")).decode()
        param = params_for(resource_type, node)[code]
        aggregate = Max if descending else Min
        if param.type in ("number", "quantity"):
            table = NumberIndex if param.type == "number" else QuantityIndex
            rows, column, missing = table.objects, "value", -1e308 if descending else 1e308
        elif param.type == "date":
            rows, column, missing = (
                DateIndex.objects,
                "high" if descending else "low",
                (EARLIEST if descending else LATEST),
            )
        elif param.type == "string":
            rows, column, missing = StringIndex.objects, "normalised", "" if descending else "\uffff"
        else:
            rows, column, missing = TokenIndex.objects, "code", "" if descending else "\uffff"
        values = (
            rows.filter(resource=OuterRef("pk"), param=param.code)
            .values("resource")
            .annotate(v=aggregate(column))
            .values("v")
        )
        queryset = queryset.annotate(**{key: Coalesce(Subquery(values), Value(missing))})
    return queryset


def _after(keys: list[tuple[str, bool]], values: list, reverse: bool) -> Q:
    """Rows strictly after (or before) the row with these sort values, in sort order."""
    condition = Q(pk__in=[])
    for index, (key, descending) in enumerate(keys):
        equal = Q(**{k: v for (k, _), v in zip(keys[:index], values[:index], strict=True)})
        forward = descending == reverse
        condition |= equal & Q(**{f"{key}__{'gt' if forward else 'lt'}": values[index]})
    return condition


def _encode_cursor(direction: str, record: Resource, keys: list[tuple[str, bool]]) -> str:
    values = [getattr(record, key) for key, _ in keys]
    typed = [["t", v.isoformat()] if isinstance(v, datetime) else ["v", v] for v in values]
    return base64.urlsafe_b64encode(jsonio.dumps([direction, typed]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, keys: list[tuple[str, bool]]) -> tuple[str, list]:
    try:
        direction, typed = jsonio.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if direction not in ("after", "before") or len(typed) != len(keys):
            raise ValueError(cursor)
        values = [datetime.fromisoformat(v) if kind == "t" else v for kind, v in typed]
    except (ValueError, TypeError, binascii.Error, jsonio.JSONError):
        raise FHIRError(
            400,
            "invalid",
            "_cursor is not a cursor this server made; follow the Bundle's links.",
            ["_cursor"],
        ) from None
    return direction, values


def search_page(
    *, node, resource_type: str, params: list[tuple[str, str]], strict: bool = False, base: str = ""
) -> SearchPage:
    """Return one page of matches in _sort order (creation order by default), with cursors."""
    planned = _planned(node, resource_type, params, base)
    if planned is not None:
        return planned
    queryset = matching(node=node, resource_type=resource_type, params=params, strict=strict, base=base)
    control = dict(params)
    ignored = unsupported(node, resource_type, params)
    waiting = unindexed(node, resource_type, params)
    count = _count(control.get("_count"))
    summary = control.get("_summary")
    if summary not in (None, "count", "false"):
        ignored.append(f"_summary={summary}")
    if summary == "count" or count == 0:
        return SearchPage([], [], queryset.count(), None, None, ignored, unindexed=waiting)
    matched = queryset
    keys = _sort_keys(node, resource_type, control.get("_sort"))
    queryset = _annotate_sort(queryset, node, resource_type, keys)
    direction, cursor = "after", control.get("_cursor")
    if cursor:
        direction, values = _decode_cursor(cursor, keys)
        queryset = queryset.filter(_after(keys, values, reverse=direction == "before"))
    backwards = direction == "before"
    rows = list(_page_of(queryset, keys, backwards, count))
    more, rows = len(rows) > count, rows[:count]
    # A first page that holds every match is its own count: no second query.
    total = (
        None if control.get("_total") == "none" else len(rows) if not (more or cursor) else matched.count()
    )
    if backwards:
        rows.reverse()
    next_cursor = previous_cursor = None
    if rows:
        # Going forward there is a next page if more rows were found, and a previous one if we
        # came from one; going back, the other way round.
        if more or backwards:
            next_cursor = _encode_cursor("after", rows[-1], keys)
        if more if backwards else bool(cursor):
            previous_cursor = _encode_cursor("before", rows[0], keys)
    included = _includes(node, resource_type, rows, params)
    elements = [e for v in params if v[0] == "_elements" for e in _split(v[1])]
    return SearchPage(rows, included, total, next_cursor, previous_cursor, ignored, elements, waiting)


def _page_of(queryset: QuerySet, keys: list[tuple[str, bool]], backwards: bool, count: int) -> QuerySet:
    """The page's rows, and one more if there are more."""
    order = [f"-{key}" if descending != backwards else key for key, descending in keys]
    return queryset.order_by(*order)[: count + 1]


PLANS = searchplans.Plans(Resource)


def _planned(node, resource_type: str, params: list[tuple[str, str]], base: str) -> SearchPage | None:
    """The first page of a search whose query depends on nothing but its shape (searchplans.py),
    when every match fits on it; else None, and the search goes the whole way. Such a search has
    only tokens without a modifier, references by :identifier or as Type/id or id (no colon: a URL
    is compared with this node's base) and _id, in printable values, besides _count; on SQLite,
    one of them (more are planned by _driven's counts)."""
    names, values, count = [], [], None
    for name, value in params:
        if name == "_count" and count is None:
            count = _count(value)
            continue
        parsed = None if name.startswith("_has:") else _parameter(node, resource_type, name)
        if parsed is None or parsed[2] or parsed[0].pending or not (value.isascii() and value.isprintable()):
            return None
        param, modifier = parsed[0], parsed[1]
        plain = not modifier and (param.code == "_id" or param.type == "token")
        by_identifier = param.type == "reference" and modifier == "identifier"
        by_reference = param.type == "reference" and modifier != "identifier" and ":" not in value
        if not (plain or by_identifier or by_reference):
            return None
        names.append(name)
        values.append(value)
    count = settings.FHIR_SEARCH_DEFAULT_COUNT if count is None else count
    if not names or count == 0 or (len(names) > 1 and connections[DEFAULT_DB_ALIAS].vendor == "sqlite"):
        return None

    def build(these: list[str]) -> QuerySet:
        queryset = matching(
            node=node, resource_type=resource_type, params=list(zip(names, these, strict=True)), strict=True
        )
        return _page_of(queryset, _sort_keys(node, resource_type, None), False, count)

    key = (node.pk, node.search_revision, resource_type, base, tuple(names), count)
    rows = PLANS.rows(key, values, build)
    if rows is None or len(rows) > count:
        return None
    return SearchPage(rows, [], len(rows), None, None, [])


def _count(value: str | None) -> int:
    if value is None:
        return settings.FHIR_SEARCH_DEFAULT_COUNT
    if not (value.isascii() and value.isdigit()):
        raise FHIRError(400, "invalid", f"_count must be a whole number, not {value!r}.", ["_count"])
    return min(int(value), settings.FHIR_SEARCH_MAX_COUNT)


# _include and _revinclude: resolve literal references (Type/id) and logical ones (identifier).


def _includes(
    node, resource_type: str, rows: list[Resource], params: list[tuple[str, str]]
) -> list[Resource]:
    """The resources _include and _revinclude bring; the :iterate forms apply again to what
    they brought, MAX_ITERATIONS deep."""
    asked = [(name, value) for name, value in params if name.split(":")[0] in ("_include", "_revinclude")]
    for name, value in asked:
        _include_params(node, name, value)  # refuse one naming no reference parameter, even with no rows
    found: dict[int, Resource] = {}
    shown = {r.pk for r in rows}
    sources, first = rows, True
    for _ in range(MAX_ITERATIONS):
        brought: list[Resource] = []
        for name, value in asked:
            if not first and not name.endswith(":iterate"):
                continue
            for source_type, param, target_type in _include_params(node, name, value):
                if name.startswith("_include"):
                    pks = [r.pk for r in sources if r.resource_type == source_type]
                    brought += _forward(node, param, pks, target_type) if pks else []
                elif sources:
                    brought += _reverse(node, source_type, param, sources)
        sources = []
        for record in brought:
            if record.pk not in shown and record.pk not in found and len(found) < MAX_INCLUDES:
                found[record.pk] = record
                sources.append(record)
        first = False
        if not sources:
            break
    return list(found.values())


def _include_params(node, name: str, value: str) -> list[tuple[str, SearchParam, str]]:
    """(source type, reference parameter, target type or "") of an _include or _revinclude value:
    Type:param, Type:param:Target, or Type:* for every reference parameter of the type."""
    source_type, _, rest = value.partition(":")
    code, _, target_type = rest.partition(":")
    if is_resource_type(source_type) and code == "*":
        return [
            (source_type, p, target_type)
            for p in params_for(source_type, node).values()
            if p.type == "reference"
        ]
    param = params_for(source_type, node).get(code) if is_resource_type(source_type) else None
    if param is None or param.type != "reference":
        raise FHIRError(400, "not-supported", f"{name}={value} names no reference parameter.", [name])
    return [(source_type, param, target_type)]


def _forward(node, param: SearchParam, source_pks: list[int], target_type: str) -> list[Resource]:
    refs = ReferenceIndex.objects.filter(resource_id__in=source_pks, param=param.code)
    if target_type:
        refs = refs.filter(Q(target_type=target_type) | Q(target_type=""))
    targets = list(refs.values_list("target_type", "target_id", "id_system", "id_value"))
    condition = Q(pk__in=[])
    for ref_type, ref_id, id_system, id_value in targets:
        types = [ref_type] if ref_type else ([target_type] if target_type else list(param.targets))
        if ref_id:
            condition |= Q(resource_type__in=types, logical_id=ref_id)
        elif id_value:
            tokens = TokenIndex.objects.filter(
                node=node, resource_type__in=types, param="identifier", code=id_value
            )
            if id_system:
                tokens = tokens.filter(system=id_system)
            condition |= Q(pk__in=tokens.values("resource_id"))
    return list(Resource.objects.filter(condition, node=node, deleted=False))


def _reverse(node, source_type: str, param: SearchParam, rows: list[Resource]) -> list[Resource]:
    condition = Q(pk__in=[])
    for record in rows:
        condition |= Q(target_type=record.resource_type, target_id=record.logical_id)
    identifiers = TokenIndex.objects.filter(resource__in=rows, param="identifier").values_list(
        "system", "code"
    )
    for system, code in identifiers:
        condition |= Q(id_system=system, id_value=code)
    refs = ReferenceIndex.objects.filter(condition, node=node, resource_type=source_type, param=param.code)
    return list(Resource.objects.filter(pk__in=refs.values("resource_id"), deleted=False))
