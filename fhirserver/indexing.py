"""Search values extracted from a resource at write time, into the index tables."""

from __future__ import annotations

from fhirserver.errors import FHIRError
from fhirserver.models import DateIndex, ReferenceIndex, Resource, StringIndex, TokenIndex
from fhirserver.searchparams import (
    date_ranges,
    normalise,
    params_for,
    references,
    strings,
    tokens,
    values_at,
)

MAX_LENGTH = 255


def token_values(resource_type: str, content: dict) -> list[tuple[str, str, str]]:
    """Return the (param, system, code) token rows of a resource, deduplicated."""
    rows: set[tuple[str, str, str]] = set()
    for param in params_for(resource_type).values():
        if param.type in ("token", "uri") and param.path:
            for value in values_at(content, param.path):
                for system, code in tokens(value):
                    if code:
                        rows.add(
                            (
                                param.code,
                                _fit(system, resource_type, param.path),
                                _fit(code, resource_type, param.path),
                            )
                        )
    return sorted(rows)


def index_resource(record: Resource, content: dict) -> None:
    """Replace the index rows of a resource with those of this content."""
    clear_index(record)
    save_index_rows(index_rows(record, content))


def save_index_rows(rows: list) -> None:
    """Insert index rows of any kinds, a table at a time."""
    for model in (TokenIndex, StringIndex, DateIndex, ReferenceIndex):
        model.objects.bulk_create([row for row in rows if type(row) is model], batch_size=1000)


def index_rows(record: Resource, content: dict) -> list:
    """Return the unsaved index rows of every search parameter of this content."""
    common = {"resource": record, "node_id": record.node_id, "resource_type": record.resource_type}
    rows: list = [
        TokenIndex(param=param, system=system, code=code, **common)
        for param, system, code in token_values(record.resource_type, content)
    ]
    strings_rows, dates_rows, reference_rows = set(), set(), set()
    for param in params_for(record.resource_type).values():
        if not param.path:
            continue
        for value in values_at(content, param.path):
            if param.type == "string":
                strings_rows.update(
                    (param.code, normalise(text)[:MAX_LENGTH], text[:MAX_LENGTH]) for text in strings(value)
                )
            elif param.type == "date":
                dates_rows.update((param.code, low, high) for low, high in date_ranges(value))
            elif param.type == "reference":
                reference_rows.update((param.code, ref) for ref in references(value, param.targets))
    rows += [StringIndex(param=p, normalised=n, exact=e, **common) for p, n, e in strings_rows]
    rows += [DateIndex(param=p, low=low, high=high, **common) for p, low, high in dates_rows]
    rows += [
        ReferenceIndex(
            param=param,
            target_type=ref.target_type[:64],
            target_id=ref.target_id[:64],
            url=ref.url[:MAX_LENGTH],
            id_system=ref.id_system[:MAX_LENGTH],
            id_value=ref.id_value[:MAX_LENGTH],
            **common,
        )
        for param, ref in reference_rows
    ]
    return rows


def clear_index(record: Resource) -> None:
    """Remove every index row of a resource (it was deleted, or is about to be re-indexed)."""
    for model in (TokenIndex, StringIndex, DateIndex, ReferenceIndex):
        model.objects.filter(resource=record).delete()


def _fit(text: str, resource_type: str, path: str) -> str:
    if len(text) > MAX_LENGTH:
        raise FHIRError(
            400,
            "too-long",
            f"A searchable code or identifier may be at most {MAX_LENGTH} characters.",
            [f"{resource_type}.{path}"],
        )
    return text
