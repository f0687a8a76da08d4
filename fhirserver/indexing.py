"""Search values extracted from a resource at write time, into the index tables."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections

from fhirserver import prepared
from fhirserver.errors import FHIRError
from fhirserver.models import (
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    Resource,
    StringIndex,
    TokenIndex,
)
from fhirserver.searchparams import (
    composite_values,
    date_ranges,
    normalise,
    numbers,
    params_for,
    quantities,
    references,
    strings,
    token_texts,
    tokens,
    values_of,
)

MAX_LENGTH = 255
TABLES = (TokenIndex, StringIndex, DateIndex, ReferenceIndex, NumberIndex, QuantityIndex)
# The table each type of parameter is kept in (a token's :text words go to the strings).
TABLE_OF = {
    "token": TokenIndex,
    "uri": TokenIndex,
    "string": StringIndex,
    "date": DateIndex,
    "reference": ReferenceIndex,
    "number": NumberIndex,
    "quantity": QuantityIndex,
}


def text_param(code: str) -> str:
    """The StringIndex name under which a token parameter's `:text` words are kept."""
    return f"{code}:text"


def token_values(resource_type: str, content: dict, node=None) -> list[tuple[str, str, str]]:
    """Return the (param, system, code) token rows of a resource, deduplicated (with the node's
    own parameters when it is given)."""
    rows: set[tuple[str, str, str]] = set()
    for param in params_for(resource_type, node).values():
        if param.type in ("token", "uri") and param.expression:
            for value, _ in values_of(resource_type, param, content):
                rows.update((param.code, *pair) for pair in _indexed_tokens(resource_type, param, value))
    return sorted(rows)


def _indexed_tokens(resource_type: str, param, value: object) -> Iterator[tuple[str, str]]:
    """The (system, code) pairs a value gives a token parameter, as they are indexed."""
    for system, code in tokens(value):
        if code:
            yield _fit(system, resource_type, param), _fit(code, resource_type, param)


def index_resource(record: Resource, content: dict) -> None:
    """Replace the index rows of a resource with those of this content (a first version has
    none to replace)."""
    if record.version_id != 1:
        clear_index(record)
    save_index_rows(index_rows(record, content, record.node))


# An index row as index_rows gives it: (its table, its values in that table's COLUMNS order).
IndexRow = tuple[type, tuple]
# The columns each index table is written with, after (resource, node, resource_type, param, group).
COMMON = ("resource_id", "node_id", "resource_type", "param", "group")
COLUMNS = {
    TokenIndex: (*COMMON, "system", "code"),
    StringIndex: (*COMMON, "normalised", "exact"),
    DateIndex: (*COMMON, "low", "high"),
    ReferenceIndex: (*COMMON, "target_type", "target_id", "url", "id_system", "id_value"),
    NumberIndex: (*COMMON, "value"),
    QuantityIndex: (*COMMON, "value", "system", "code", "unit"),
}


def save_index_rows(rows: list[IndexRow]) -> None:
    """Insert index rows of any kinds, as plain tuples (prepared.insert_rows), as building a model
    instance per row and bulk_create's preparation of each value cost more than the database's
    work (a read's AuditEvent has about 20 rows)."""
    by_table: dict[type, list[tuple]] = {}
    for model, values in rows:
        by_table.setdefault(model, []).append(values)
    connection = connections[DEFAULT_DB_ALIAS]
    for model, values in by_table.items():
        if model is DateIndex:  # as the ORM stores a datetime (SQLite keeps text, in UTC)
            adapt = connection.ops.adapt_datetimefield_value
            values = [(*v[:5], adapt(v[5]), adapt(v[6])) for v in values]
        prepared.insert_rows(
            connection, model, [model._meta.get_field(c).column for c in COLUMNS[model]], values
        )


def index_rows(record: Resource, content: dict, node=None) -> list[IndexRow]:
    """Return the index rows of every search parameter of this content (and of the node's own
    parameters, when it is given), for a saved record."""
    resource_type = record.resource_type
    common = (record.pk, record.node_id, resource_type)
    params = params_for(resource_type, node)
    keys: set[tuple] = set()  # one row per distinct value
    for param in params.values():
        if param.type == "composite":
            for element, index, values in composite_values(resource_type, param, content):
                component = param.components[index]
                group = record.pk * MAX_ELEMENTS + element if element < MAX_ELEMENTS else None
                for value in values if group is not None else ():
                    keys.update(
                        _keys(component.type, f"{param.code}${index}", value, component.targets, group)
                    )
        elif param.expression:
            for value, targets in values_of(resource_type, param, content):
                if param.type in ("token", "uri"):  # one walk gives a token's codes and its :text
                    keys.update(
                        ("token", param.code, None, *pair)
                        for pair in _indexed_tokens(resource_type, param, value)
                    )
                if param.type != "uri":
                    keys.update(_keys(param.type, param.code, value, targets, None))
    return [_row(key, common) for key in keys]


# A composite's rows of one element share a group: the resource's pk times this, plus the
# element's number (elements past it are not indexed).
MAX_ELEMENTS = 1000


def _keys(
    kind: str, code: str, value: object, targets: tuple[str, ...], group: int | None
) -> Iterator[tuple]:
    """The index rows a value gives a parameter, as hashable keys: (table, fields...)."""
    if kind in ("token", "uri"):
        if group is not None:  # a plain token parameter's rows are made by index_rows
            for system, token in tokens(value):
                if token:
                    yield ("token", code, group, system[:MAX_LENGTH], token[:MAX_LENGTH])
        if kind == "token":
            for text in token_texts(value):
                yield ("string", text_param(code), group, normalise(text)[:MAX_LENGTH], text[:MAX_LENGTH])
    elif kind == "string":
        for text in strings(value):
            yield ("string", code, group, normalise(text)[:MAX_LENGTH], text[:MAX_LENGTH])
    elif kind == "date":
        for low, high in date_ranges(value):
            yield ("date", code, group, low, high)
    elif kind == "reference":
        for ref in references(value, targets):
            yield ("reference", code, group, ref)
    elif kind == "number":
        for number in numbers(value):
            yield ("number", code, group, float(number))
    elif kind == "quantity":
        for quantity in quantities(value):
            yield ("quantity", code, group, quantity)


def _row(key: tuple, common: tuple) -> IndexRow:
    table, param, group, *fields = key
    common = (*common, param, group)
    if table == "token":
        return TokenIndex, (*common, fields[0], fields[1])
    if table == "string":
        return StringIndex, (*common, fields[0], fields[1])
    if table == "date":
        return DateIndex, (*common, fields[0], fields[1])
    if table == "number":
        return NumberIndex, (*common, fields[0])
    if table == "quantity":
        q = fields[0]
        return QuantityIndex, (
            *common,
            float(q.value),
            q.system[:MAX_LENGTH],
            q.code[:MAX_LENGTH],
            q.unit[:MAX_LENGTH],
        )
    ref = fields[0]
    return ReferenceIndex, (
        *common,
        ref.target_type[:64],
        ref.target_id[:64],
        ref.url[:MAX_LENGTH],
        ref.id_system[:MAX_LENGTH],
        ref.id_value[:MAX_LENGTH],
    )


def clear_index(record: Resource) -> None:
    """Remove every index row of a resource (it was deleted, or is about to be re-indexed)."""
    for model in TABLES:
        model.objects.filter(resource=record).delete()


def _fit(text: str, resource_type: str, param) -> str:
    """A token as indexed: an identifier longer than the index keeps is refused (it must stay
    unique); any other is indexed by its first MAX_LENGTH characters."""
    if len(text) > MAX_LENGTH and param.code == "identifier":
        raise FHIRError(
            400,
            "too-long",
            f"A searchable identifier may be at most {MAX_LENGTH} characters.",
            [f"{resource_type}.identifier"],
        )
    return text[:MAX_LENGTH]
