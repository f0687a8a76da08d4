"""Search values extracted from a resource at write time, into the index tables."""

from __future__ import annotations

from django.db import transaction

from fhirserver import jsonio
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


def token_values(resource_type: str, content: dict) -> list[tuple[str, str, str]]:
    """Return the (param, system, code) token rows of a resource, deduplicated."""
    rows: set[tuple[str, str, str]] = set()
    for param in params_for(resource_type).values():
        if param.type in ("token", "uri") and param.expression:
            for value, _ in values_of(resource_type, param, content):
                for system, code in tokens(value):
                    if code:
                        rows.add(
                            (param.code, _fit(system, resource_type, param), _fit(code, resource_type, param))
                        )
    return sorted(rows)


def index_resource(record: Resource, content: dict) -> None:
    """Replace the index rows of a resource with those of this content (a first version has
    none to replace)."""
    if record.version_id != 1:
        clear_index(record)
    save_index_rows(index_rows(record, content))


def save_index_rows(rows: list) -> None:
    """Insert index rows of any kinds, a table at a time."""
    for model in TABLES:
        model.objects.bulk_create([row for row in rows if type(row) is model], batch_size=1000)


def index_rows(record: Resource, content: dict) -> list:
    """Return the unsaved index rows of every search parameter of this content."""
    resource_type = record.resource_type
    common = {"resource": record, "node_id": record.node_id, "resource_type": resource_type}
    rows: list = [
        TokenIndex(param=param, system=system, code=code, **common)
        for param, system, code in token_values(resource_type, content)
    ]
    strings_rows, dates_rows, reference_rows, number_rows, quantity_rows = set(), set(), set(), set(), set()
    for param in params_for(resource_type).values():
        if not param.expression or param.type == "uri":
            continue
        for value, targets in values_of(resource_type, param, content):
            if param.type == "token":
                strings_rows.update(
                    (text_param(param.code), normalise(text)[:MAX_LENGTH], text[:MAX_LENGTH])
                    for text in token_texts(value)
                )
            elif param.type == "string":
                strings_rows.update(
                    (param.code, normalise(text)[:MAX_LENGTH], text[:MAX_LENGTH]) for text in strings(value)
                )
            elif param.type == "date":
                dates_rows.update((param.code, low, high) for low, high in date_ranges(value))
            elif param.type == "reference":
                reference_rows.update((param.code, ref) for ref in references(value, targets))
            elif param.type == "number":
                number_rows.update((param.code, float(number)) for number in numbers(value))
            elif param.type == "quantity":
                quantity_rows.update((param.code, quantity) for quantity in quantities(value))
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
    rows += [NumberIndex(param=p, value=v, **common) for p, v in number_rows]
    rows += [
        QuantityIndex(
            param=param,
            value=float(q.value),
            system=q.system[:MAX_LENGTH],
            code=q.code[:MAX_LENGTH],
            unit=q.unit[:MAX_LENGTH],
            **common,
        )
        for param, q in quantity_rows
    ]
    return rows


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


def reindex(*, node=None, resource_type: str | None = None) -> int:
    """Index live resources again from their stored text; return how many."""
    records = Resource.objects.filter(deleted=False).order_by("pk")
    if node is not None:
        records = records.filter(node=node)
    if resource_type:
        records = records.filter(resource_type=resource_type)
    count = 0
    for record in records.iterator(chunk_size=500):
        with transaction.atomic():
            clear_index(record)
            save_index_rows(index_rows(record, jsonio.loads(record.text)))
        count += 1
    return count
