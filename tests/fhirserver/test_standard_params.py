"""Every standard R4 search parameter on every stored type, from the definitions themselves.

For each parameter a resource is built from the definition's element path (its XPath, which
names the concrete elements, `valueQuantity` rather than `value as Quantity`), with the element's
type read from the fhir.resources model, and the required elements filled in; then a search
with the value finds it and one with a different value does not. Nothing here evaluates the
FHIRPath the indexer uses. The coverage (parameters exercised of all the indexed parameters on
stored types) is printed and must reach 90%."""

from __future__ import annotations

import functools
import json
import re
import types
import typing

import pytest
from django.test import Client

from fhirserver.errors import FHIRError
from fhirserver.registry import RESOURCE_TYPES, model_class
from fhirserver.searchparams import COLUMNS, DEFINITIONS, SearchParam, params_for
from fhirserver.services import resource_create
from tests.factories import bearer

HIT, MISS = "hit1", "miss2"
SYSTEM = "http://example.org/fhir/system"
# What a type needs beyond its model to be stored (a Subscription must be able to work).
STARTS = {
    "Subscription": {
        "status": "off",
        "reason": "filler",
        "criteria": "Patient?name=filler",
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
    }
}
STEP = re.compile(r"^f:(\w+)(?:\[(.*)\])?$")


def field_type(field) -> tuple[str, type | None, bool]:
    """(FHIR type name, model class for a complex type, repeats) of a model field."""
    annotation, repeats = field.annotation, False
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        if typing.get_origin(annotation) is list:
            repeats, annotation = True, typing.get_args(annotation)[0]
        else:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        return type(annotation.__metadata__[0]).__name__, None, repeats
    if annotation is bool:
        return "Boolean", None, repeats
    klass = annotation.get_model_klass()
    return klass.__name__, klass, repeats


PRIMITIVE_FILLER = {
    "Boolean": True,
    "Date": "2000-01-01",
    "DateTime": "2000-01-01T00:00:00Z",
    "Instant": "2000-01-01T00:00:00Z",
    "Time": "10:00:00",
    "Integer": 1,
    "PositiveInt": 1,
    "UnsignedInt": 1,
    "Decimal": 1,
    "Base64Binary": "AA==",
    "Uri": "http://example.org/filler",
    "Url": "http://example.org/filler",
    "Canonical": "http://example.org/filler",
    "Oid": "urn:oid:1.2.3",
    "Uuid": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
    "Xhtml": '<div xmlns="http://www.w3.org/1999/xhtml">filler</div>',
}


def filler(name: str, klass: type | None, field=None, depth: int = 0):
    """A value of this type for a required element, which no search here looks for."""
    if klass is None:
        enum = (field.json_schema_extra or {}).get("enum_values") if field is not None else None
        return PRIMITIVE_FILLER.get(name, enum[0] if enum else "filler")
    if name == "Reference":
        return {"display": "filler"}
    if name == "CodeableConcept":
        return {"text": "filler"}
    built = required(klass, {}, depth + 1)
    return built or {"extension": [{"url": "http://example.org/filler", "valueString": "filler"}]}


def required(klass, content: dict, depth: int = 0) -> dict:
    """Fill in what the model requires that content lacks (a choice too: its first type)."""
    if depth > 6:
        return content
    choices: dict[str, list[str]] = {}
    for name, field in klass.model_fields.items():
        extra = field.json_schema_extra or {}
        if extra.get("one_of_many_required"):
            choices.setdefault(extra["one_of_many"], []).append(name)
        elif (field.is_required() or extra.get("element_required")) and name not in content:
            kind, inner, repeats = field_type(field)
            value = filler(kind, inner, field, depth)
            content[name] = [value] if repeats else value
    for names in choices.values():
        if not any(name in content for name in names):
            kind, inner, repeats = field_type(klass.model_fields[names[0]])
            content[names[0]] = filler(kind, inner, klass.model_fields[names[0]], depth)
    return content


def searched_value(param, kind: str, field, value: str) -> tuple[object, str] | None:
    """(the element's value, the search that finds it) for a parameter's type and an element's
    type; None where that pair makes no sense."""
    extra = (field.json_schema_extra or {}) if field is not None else {}
    enum = extra.get("enum_values")
    if param.type == "token":
        code = enum[0] if enum and value == HIT else value
        simple = {
            "Coding": ({"system": SYSTEM, "code": code}, f"{SYSTEM}|{code}"),
            "CodeableConcept": ({"coding": [{"system": SYSTEM, "code": code}]}, f"{SYSTEM}|{code}"),
            "Identifier": ({"system": SYSTEM, "value": code}, f"{SYSTEM}|{code}"),
            "ContactPoint": ({"system": "phone", "value": code}, code),
            "Boolean": (value == HIT, "true"),
        }
        if kind in simple:
            return simple[kind]
        if kind in ("Code", "String", "Id", "Uri", "Canonical", "Url", "Oid"):
            return code, code
        return None
    if param.type == "string":
        text = f"Alpha{value}"
        found = {"HumanName": {"family": text}, "Address": {"city": text}}.get(kind)
        if found is not None:
            return found, "alpha" + value
        return (text, "alpha" + value) if kind in ("String", "Markdown") else None
    if param.type == "date":
        day = "2021-03-04" if value == HIT else "1999-01-01"
        moment = f"{day}T10:00:00Z"
        found = {
            "Date": day,
            "DateTime": moment,
            "Instant": moment,
            "Period": {"start": moment, "end": f"{day}T11:00:00Z"},
            "Timing": {"event": [moment]},
        }.get(kind)
        return (found, "2021-03-04") if found is not None else None
    if param.type == "reference":
        target = param.targets[0] if param.targets else "Patient"
        if kind == "Reference":
            return {"reference": f"{target}/{value}"}, f"{target}/{HIT}"
        if kind in ("Canonical", "Uri", "Url"):
            return f"http://example.org/fhir/{target}/{value}", f"http://example.org/fhir/{target}/{HIT}"
        return None
    if param.type == "uri":
        return (
            (f"http://example.org/{value}", f"http://example.org/{HIT}")
            if kind in ("Uri", "Url", "Canonical", "Oid", "Uuid")
            else None
        )
    if param.type == "number":
        number = 42 if value == HIT else 7
        return (number, "42") if kind in ("Decimal", "Integer", "PositiveInt", "UnsignedInt") else None
    if param.type == "quantity":
        number = 5.4 if value == HIT else 99
        if kind == "Money":
            return {"value": number, "currency": "GBP"}, "5.4"
        if kind in ("Quantity", "Age", "Duration", "Count", "Distance", "MoneyQuantity", "SimpleQuantity"):
            return {"value": number, "system": "http://unitsofmeasure.org", "code": "mg", "unit": "mg"}, "5.4"
        return None
    return None


def built(resource_type: str, param, xpath: str, value: str) -> tuple[dict, str] | None:
    """A valid resource with `value` at the element the XPath names, and the search for HIT."""
    steps = re.findall(r"(?:[^/\[]|\[[^\]]*\])+", xpath.strip())
    if steps[0] != f"f:{resource_type}":
        return None
    klass, content = (
        model_class(resource_type),
        {"resourceType": resource_type, **STARTS.get(resource_type, {})},
    )
    holder, search = content, None
    for index, step in enumerate(steps[1:]):
        match = STEP.match(step)
        name, condition = match.groups() if match else ("", None)
        name = name if name in klass.model_fields else f"{name}_fhir"  # class, as fhir.resources names it
        if name not in klass.model_fields:
            return None
        field = klass.model_fields[name]
        kind, inner, repeats = field_type(field)
        last = index == len(steps) - 2
        if last:
            found = searched_value(param, kind, field, value)
            if found is None:
                return None
            element, search = found
            if isinstance(element, dict):
                element = {**element, **_condition(condition)}
        else:
            if inner is None or kind in ("Reference",):
                return None
            element = _condition(condition)
        holder[field.alias or name] = [element] if repeats else element
        if not last:
            holder, klass = element, inner
    _fill(model_class(resource_type), content)
    return content, search


def _condition(condition: str | None) -> dict:
    """What an XPath condition asks of the element: [f:type/@value='x'], [system/@value='x'],
    [@url='x'] (an extension), or [0]."""
    if not condition or condition.isdigit():
        return {}
    match = re.match(r"^(?:f:)?(\w+)/@value='([^']*)'$", condition) or re.match(
        r"^@(url)='([^']*)'$", condition
    )
    return {match.group(1): match.group(2)} if match else {}


def _fill(klass, content: dict, depth: int = 0) -> None:
    """Fill what is required in content and, recursively, in each complex element it holds."""
    required(klass, content, depth)
    for name, value in list(content.items()):
        field = klass.model_fields.get(name)
        if field is None or depth > 6:
            continue
        _, inner, _ = field_type(field)
        for item in value if isinstance(value, list) else [value]:
            if inner is not None and isinstance(item, dict):
                _fill(inner, item, depth + 1)


EXTENSION = re.compile(r"^(\w+)\.extension\('([^']+)'\)$")
EXTENSION_VALUES = {"string": "valueString", "token": "valueCodeableConcept", "reference": "valueReference"}


def built_extension(resource_type: str, param, value: str) -> tuple[dict, str] | None:
    """For a parameter on an extension (these definitions have no XPath): a resource with the
    extension, its value of the parameter's type."""
    match = EXTENSION.match(param.expression)
    key = EXTENSION_VALUES.get(param.type)
    kinds = {
        "valueString": "String",
        "valueCodeableConcept": "CodeableConcept",
        "valueReference": "Reference",
    }
    if match is None or key is None:
        return None
    element, search = searched_value(param, kinds[key], None, value)
    content = {"resourceType": resource_type, "extension": [{"url": match.group(2), key: element}]}
    _fill(model_class(resource_type), content)
    return content, search


def built_composite(resource_type: str, code: str, value: str) -> tuple[dict, str] | None:
    """A resource holding each component of a composite, built from the components' own
    definitions' XPaths into one element (a component parameter's elements merge into the
    first of theirs), and the search a$b."""
    by_url = {d["url"]: d for d in definitions()}
    composite = next(d for d in definitions() if d["code"] == code and resource_type in d["base"])
    content, searches = {"resourceType": resource_type}, []
    for component in composite["component"]:
        part = by_url[component["definition"]]
        param = SearchParam(part["code"], part["type"], "", tuple(part.get("target", ())))
        made = next(
            (b for x in xpaths(resource_type, part["code"]) if (b := built(resource_type, param, x, value))),
            None,
        )
        if made is None:
            return None
        content = _merged(content, made[0])
        searches.append(made[1])
    _fill(model_class(resource_type), content)
    return content, "$".join(searches)


def _merged(one: object, other: object) -> object:
    if isinstance(one, dict) and isinstance(other, dict):
        return {**one, **{k: _merged(one[k], v) if k in one else v for k, v in other.items()}}
    if isinstance(one, list) and isinstance(other, list) and one and other:
        return [_merged(one[0], other[0]), *one[1:]]
    return other


@functools.cache
def definitions() -> list[dict]:
    return json.loads(DEFINITIONS.read_text())["parameters"]


def xpaths(resource_type: str, code: str) -> list[str]:
    found = []
    for definition in definitions():
        if definition["code"] == code and (
            resource_type in definition["base"] or "Resource" in definition["base"]
        ):
            for alternative in (definition.get("xpath") or "").split("|"):
                alternative = alternative.strip().replace("f:Resource/", f"f:{resource_type}/")
                if alternative.startswith(f"f:{resource_type}/"):
                    found.append(alternative)
    return found


@pytest.mark.django_db
def test_every_standard_parameter_finds_what_it_should(store, settings):
    settings.AUDIT_ENABLED = False  # 4,000 writes and 2,000 searches: the audit trail is tested elsewhere
    client = Client(headers=bearer("store"))
    total, exercised, failures = 0, [], []
    for resource_type in RESOURCE_TYPES:
        for code, param in params_for(resource_type).items():
            if code in COLUMNS or param.definition.startswith("https://dmed"):
                continue
            total += 1
            for xpath in (["composite"] if param.type == "composite" else xpaths(resource_type, code)) or [
                "extension"
            ]:
                if xpath == "composite":
                    hit, miss = (
                        built_composite(resource_type, code, HIT),
                        built_composite(resource_type, code, MISS),
                    )
                elif xpath == "extension":
                    hit, miss = (
                        built_extension(resource_type, param, HIT),
                        built_extension(resource_type, param, MISS),
                    )
                else:
                    hit, miss = (
                        built(resource_type, param, xpath, HIT),
                        built(resource_type, param, xpath, MISS),
                    )
                if hit is None or miss is None:
                    continue
                try:
                    found = resource_create(node=store, resource_type=resource_type, content=hit[0]).resource
                    other = resource_create(node=store, resource_type=resource_type, content=miss[0]).resource
                except FHIRError:  # a resource the builder could not make valid
                    continue
                answer = client.get(f"/store/fhir/{resource_type}", {code: hit[1], "_count": 500})
                ids = {e["resource"]["id"] for e in answer.json().get("entry", []) if "resource" in e}
                if answer.status_code != 200 or found.logical_id not in ids or other.logical_id in ids:
                    failures.append((resource_type, code, xpath, hit[1], answer.status_code))
                exercised.append((resource_type, code))
                break
    coverage = len(exercised) / total
    print(f"\nstandard search parameters exercised: {len(exercised)} of {total} ({coverage:.1%})")
    assert failures == []
    assert coverage >= 0.9
