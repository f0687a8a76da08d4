"""The search parameters this server supports, and the values a resource gives each of them.

Every standard R4 parameter (hl7.fhir.r4.core 4.0.1's SearchParameter definitions, CC0, trimmed
into data/search-parameters.json) on every stored type, and dmed's own (CUSTOM). A parameter's
FHIRPath is evaluated with fhirpathpy on the R4 model; `.where(resolve() is T)` is not evaluated
(nothing is resolved at write time) but kept as the types a reference may point to."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from fhirserver import fhirpath
from fhirserver.dates import EARLIEST, LATEST, date_range
from fhirserver.registry import RESOURCE_TYPES

GROUP_IDENTIFIER_URL = "https://dmed.example/fhir/SearchParameter/MedicationRequest-group-identifier"
DEFINITIONS = Path(__file__).resolve().parent / "data" / "search-parameters.json"
# The types of parameter indexed here (special ones, such as near, are not).
INDEXED_TYPES = ("token", "string", "date", "reference", "uri", "number", "quantity", "composite")
# Parameters kept by the server's own columns, not by an index table.
COLUMNS = {"_id": "logical_id", "_lastUpdated": "last_updated"}

_NO_CORE_IDENTIFIER = ["AdverseEvent", "BiologicallyDerivedProduct", "CatalogEntry", "ObservationDefinition"]
# dmed's own parameters, declared with their canonical URLs.
CUSTOM = (
    {
        "url": GROUP_IDENTIFIER_URL,
        "code": "group-identifier",
        "base": ["MedicationRequest"],
        "type": "token",
        "expression": "MedicationRequest.groupIdentifier",
        "description": "The Prescription ID shared by a prescription's line items (not in R4 core).",
    },
    {
        "url": "https://dmed.example/fhir/SearchParameter/identifier",
        "code": "identifier",
        "base": _NO_CORE_IDENTIFIER,
        "type": "token",
        "expression": " | ".join(f"{t}.identifier" for t in _NO_CORE_IDENTIFIER),
        "description": "A business identifier (R4 core has no identifier parameter for this type).",
    },
)


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # token | string | date | reference | uri | number | quantity
    expression: str  # FHIRPath of this type's parts only; "" for the server's own columns
    targets: tuple[str, ...] = ()  # the types a reference parameter may point to
    documentation: str = ""
    definition: str = ""  # its canonical URL
    components: tuple[Component, ...] = ()  # a composite's, in order
    # A node's own parameter that resources written before it was defined may lack, until
    # they are indexed again ($reindex).
    pending: bool = False


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: the type of the parameter it takes its matching from,
    and its FHIRPath relative to each element the composite's expression finds."""

    type: str
    expression: str
    targets: tuple[str, ...] = ()


@cache
def _definitions() -> tuple[dict, ...]:
    return (*json.loads(DEFINITIONS.read_text())["parameters"], *CUSTOM)


def params_for(resource_type: str, node=None) -> dict[str, SearchParam]:
    """Return the search parameters of a resource type by code: the standard ones, and at a
    node also its own (SearchParameter resources written to it)."""
    standard = _standard_params(resource_type)
    if node is None or not node.search_revision:
        return standard
    from fhirserver.custom_params import custom_params  # it builds on this module

    custom = custom_params(node).get(resource_type)
    return {**standard, **custom} if custom else standard


@cache
def _standard_params(resource_type: str) -> dict[str, SearchParam]:
    params: dict[str, SearchParam] = {}
    for definition in _definitions():
        bases = definition["base"]
        if resource_type not in bases and not ({"Resource", "DomainResource"} & set(bases)):
            continue
        param = param_from(definition, resource_type)
        if param is not None:
            params[param.code] = param
    return dict(sorted(params.items()))


def param_from(definition: dict, resource_type: str, *, pending: bool = False) -> SearchParam | None:
    """The parameter a SearchParameter definition gives one of its base types, or None when it
    is of a type not indexed or its expression names nothing of that type."""
    if definition["type"] not in INDEXED_TYPES:
        return None
    code, bases = definition["code"], definition["base"]
    expression = "" if code in COLUMNS else _parts_for(definition.get("expression", ""), resource_type, bases)
    if not expression and code not in COLUMNS:
        return None
    param = SearchParam(
        code=code,
        type=definition["type"],
        expression=expression,
        targets=_targets(expression, tuple(definition.get("target", ()))),
        documentation=_described(definition.get("description", ""), resource_type),
        definition=definition["url"],
        components=_components(definition),
        pending=pending,
    )
    if param.type == "composite" and not _composite_compiles(resource_type, param):
        return None
    return param


@cache
def _by_url() -> dict[str, dict]:
    return {d["url"]: d for d in _definitions()}


def _components(definition: dict) -> tuple[Component, ...]:
    found = []
    for component in definition.get("component", ()):
        part = _by_url().get(component["definition"])
        if part is None:
            return ()
        found.append(Component(part["type"], component["expression"], tuple(part.get("target", ()))))
    return tuple(found)


def _targets(expression: str, declared: tuple[str, ...]) -> tuple[str, ...]:
    """The types a reference parameter may point to: those its parts resolve() to when every
    part says (clinical-patient declares Group too, but is Patient-only on MedicationRequest)."""
    resolved = [_RESOLVE_IS.search(part) for part in _union_parts(expression)]
    if resolved and all(resolved):
        return tuple(dict.fromkeys(match.group(1) for match in resolved if match))
    return declared


def _described(description: str, resource_type: str) -> str:
    """The description of a parameter for one type: a shared parameter's line for that type
    ("* [Type](type.html): what it finds"), or the first line."""
    lines = [line.strip() for line in description.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(f"* [{resource_type}]("):
            return line.partition("): ")[2].strip()
    return lines[0] if lines else ""


@cache
def reference_params() -> tuple[tuple[str, SearchParam], ...]:
    """Every (source type, reference parameter), for _revinclude."""
    return tuple(
        (resource_type, param)
        for resource_type in RESOURCE_TYPES
        for param in _standard_params(resource_type).values()
        if param.type == "reference"
    )


def _parts_for(expression: str, resource_type: str, bases: list[str]) -> str:
    """The parts of a union that apply to this type ("Resource.x" applies to every type)."""
    kept = []
    for part in _union_parts(expression):
        head = part.lstrip("(").split(".")[0].split(" ")[0].strip(")")
        if head == resource_type or (head in ("Resource", "DomainResource") and head in bases):
            kept.append(part if head == resource_type else part.replace(head, resource_type, 1))
        elif head not in RESOURCE_TYPES and head not in ("Resource", "DomainResource") and len(bases) == 1:
            kept.append(part)  # an expression relative to its one base ("name | alias")
    return " | ".join(kept)


def _union_parts(expression: str) -> list[str]:
    """Split a FHIRPath union at its top level (outside parentheses and quotes)."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in expression:
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and depth == 0 and char == "|":
            parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is (\w+)\)\s*$")


@cache
def compiled_parts(resource_type: str, expression: str) -> tuple[tuple[Callable, tuple[str, ...]], ...]:
    """The compiled parts of a parameter's expression for one type, each with the types its
    references may point to (from `.where(resolve() is T)`, kept as a filter, not evaluated)."""
    compiled = []
    for part in _union_parts(expression):
        inner = part[1:-1] if part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]) else part
        match = _RESOLVE_IS.search(inner)
        targets = (match.group(1),) if match else ()
        if match:
            inner = inner[: match.start()]
        if not inner.startswith(resource_type):
            inner = f"{resource_type}.{inner}" if not inner.startswith("(") else inner
        compiled.append((_walker(inner) or fhirpath.compiled(inner), targets))
    return tuple(compiled)


MODEL = fhirpath.MODEL
SUBTYPES = {
    "uri": ("canonical", "url", "oid", "uuid"),
    "string": ("code", "id", "markdown"),
    "integer": ("positiveint", "unsignedint"),
}
_SIMPLE = re.compile(r"^(\w+(?:\.\w+)+)(?:\s+as\s+(\w+)|\.as\((\w+)\))?$")
# A path ending in .where(key='literal'), as the telecom parameters are (system='email').
_WHERE = re.compile(r"^(\w+(?:\.\w+)+)\.where\((\w+)\s*=\s*'([^'\\]*)'\)$")


def _walker(expression: str, skip: int = 0) -> Callable[[dict], list] | None:
    """A plain walk over the JSON for a path of element names (a choice element, `as` a type or
    not, at its end): the same values as fhirpathpy's, at a fraction of the cost. None for any
    other expression."""
    where = _WHERE.match(expression)
    if where is not None:
        walk = _walker(where.group(1), skip)
        key, wanted = where.group(2), where.group(3)
        if walk is None:
            return None
        return lambda content: [v for v in walk(content) if isinstance(v, dict) and v.get(key) == wanted]
    match = _SIMPLE.match(expression)
    if match is None:
        return None
    names, cast = match.group(1).split("."), match.group(2) or match.group(3)
    path, steps = names[0], []
    for index, name in enumerate(names[1:], start=1):
        full = f"{path}.{name}"
        last = index == len(names) - 1
        if full in MODEL["choiceTypePaths"]:
            if not last:
                return None
            kinds = MODEL["choiceTypePaths"][full]
            if cast:  # the type asked for, and the types derived from it (a canonical is a uri)
                wanted = {cast.lower(), *SUBTYPES.get(cast.lower(), ())}
                kinds = [kind for kind in kinds if kind.lower() in wanted]
            steps.append(tuple(name + kind[0].upper() + kind[1:] for kind in kinds))
            break
        kind = MODEL["path2Type"].get(full)
        backbone = bool(_children_of(full))  # the model lists a backbone element's children only
        if (kind is None and not backbone) or (last and cast):
            return None
        steps.append((name,))
        path = full if backbone else kind
    steps = steps[skip:]  # a walk from an element the first `skip` steps found
    return lambda content: _walk(content, steps)


@cache
def _children_of(path: str) -> tuple[str, ...]:
    prefix = path + "."
    return tuple(key for key in MODEL["path2Type"] if key.startswith(prefix))


def _walk(content: dict, steps: list[tuple[str, ...]]) -> list:
    current: list = [content]
    for keys in steps:
        found: list = []
        for item in current:
            if not isinstance(item, dict):
                continue
            for key in keys:
                value = item.get(key)
                if isinstance(value, list):
                    found.extend(value)
                elif value is not None:
                    found.append(value)
        current = found
    return current


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _composite_compiles(resource_type: str, param: SearchParam) -> bool:
    """Whether every element path of a composite can be walked (each component is found
    relative to the element its base finds; %resource and the like are not supported)."""
    bases = _union_parts(param.expression)
    return bool(bases) and all(
        _walker(f"{base}.{c.expression}", skip=base.count(".")) is not None
        for base in bases
        for c in param.components
    )


@cache
def _composite(resource_type: str, code: str) -> tuple[tuple[Callable, tuple[Callable, ...]], ...]:
    """For each part of a composite's base expression: what finds its elements, and each
    component's walk from such an element."""
    param = _standard_params(resource_type)[code]
    compiled = []
    for base in _union_parts(param.expression):
        find = _walker(base) if "." in base else (lambda content: [content])
        parts = tuple(_walker(f"{base}.{c.expression}", skip=base.count(".")) for c in param.components)
        compiled.append((find, parts))
    return tuple(compiled)


def composite_values(
    resource_type: str, param: SearchParam, content: dict
) -> Iterator[tuple[int, int, list]]:
    """Yield (element number, component number, its values) for each element a composite's
    base finds: the components of one element belong together."""
    number = 0
    for find, parts in _composite(resource_type, param.code):
        for element in find(content):
            for index, walk in enumerate(parts):
                yield number, index, [_extension_value(v) for v in walk(element)]
            number += 1


def values_of(
    resource_type: str, param: SearchParam, content: dict
) -> Iterator[tuple[object, tuple[str, ...]]]:
    """Yield each value the parameter finds in a resource, with the types a reference must be."""
    for evaluate, targets in compiled_parts(resource_type, param.expression):
        for value in evaluate(content):
            yield _extension_value(value), targets


def _extension_value(value: object) -> object:
    """An Extension stands for its value[x] (parameters defined on an extension search that)."""
    if isinstance(value, dict) and "url" in value:
        for key, inner in value.items():
            if key.startswith("value") and key[5:6].isupper():
                return inner
    return value


# Extraction: what a resource gives each parameter, written to the index tables.


def tokens(value: object) -> Iterator[tuple[str, str]]:
    """Yield (system, code) pairs of a code, Coding, CodeableConcept, Identifier, ContactPoint
    or boolean."""
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str | int | Decimal):
        yield "", str(value)
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                yield from tokens(coding)
        elif "code" in value:
            yield value.get("system") or "", str(value["code"])
        elif "value" in value:
            yield value.get("system") or "", str(value["value"])


def token_texts(value: object) -> Iterator[str]:
    """Yield the words a token's `:text` search looks at: a CodeableConcept's text and its
    codings' display, or a Coding's display."""
    if isinstance(value, dict):
        for text in (value.get("text"), value.get("display")):
            if isinstance(text, str):
                yield text
        for coding in value.get("coding") or []:
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                yield coding["display"]


def strings(value: object) -> Iterator[str]:
    """Yield the searchable strings of a string, HumanName or Address."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in STRING_PARTS:
            part = value.get(key)
            for item in part if isinstance(part, list) else [part]:
                if isinstance(item, str):
                    yield item


STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


def normalise(text: str) -> str:
    """Fold case and accents, as string search compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def date_ranges(value: object) -> Iterator[tuple[datetime, datetime]]:
    """Yield the [low, high) ranges of a date, dateTime, instant, Period or Timing (its events)."""
    if isinstance(value, str):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict) and "event" in value:
        for event in value.get("event") or []:
            yield from date_ranges(event)
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        yield (start[0] if start else EARLIEST), (end[1] if end else LATEST)


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str = ""
    target_id: str = ""
    url: str = ""
    id_system: str = ""
    id_value: str = ""


def references(value: object, targets: tuple[str, ...] = ()) -> Iterator[ReferenceValue]:
    """Yield what a Reference points at: Type/id, an absolute URL, and/or an identifier; a
    canonical or uri is a reference by its text."""
    if isinstance(value, str):
        value = {"reference": value}
    if not isinstance(value, dict):
        return
    target_type, target_id, url = value.get("type") or "", "", ""
    literal = value.get("reference")
    if isinstance(literal, str) and not literal.startswith("#"):
        parts = literal.split("/_history/")[0].split("/")
        if "://" in literal or literal.startswith("urn:"):
            url = literal
        if len(parts) >= 2 and parts[-2][:1].isupper():
            target_type, target_id = parts[-2], parts[-1]
    identifier = value.get("identifier") if isinstance(value.get("identifier"), dict) else {}
    id_system, id_value = identifier.get("system") or "", str(identifier.get("value") or "")
    if targets and target_type and target_type not in targets:
        return
    if target_id or url or id_value:
        yield ReferenceValue(target_type, target_id, url, id_system, id_value)


def numbers(value: object) -> Iterator[Decimal]:
    """Yield the number of a decimal, integer or positiveInt."""
    if isinstance(value, bool):
        return
    try:
        number = Decimal(str(value)) if isinstance(value, int | Decimal | float | str) else None
    except InvalidOperation:
        return
    if number is not None and number.is_finite():
        yield number


@dataclass(frozen=True)
class QuantityValue:
    value: Decimal
    system: str = ""
    code: str = ""
    unit: str = ""


CURRENCY_SYSTEM = "urn:iso:std:iso:4217"


def quantities(value: object) -> Iterator[QuantityValue]:
    """Yield the Quantity (or Age, Duration, Count, Distance, SimpleQuantity, Money) a value is."""
    if not isinstance(value, dict) or "value" not in value:
        return
    for number in numbers(value["value"]):
        if "currency" in value:  # Money
            yield QuantityValue(number, CURRENCY_SYSTEM, str(value["currency"]), str(value["currency"]))
        else:
            yield QuantityValue(
                number,
                str(value.get("system") or ""),
                str(value.get("code") or ""),
                str(value.get("unit") or ""),
            )
