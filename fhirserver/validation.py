"""Validate a received resource: structure (fhir.resources), what it skips, and UK rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

import pydantic
from fhir_core.fhirabstractmodel import FHIRAbstractModel

from fhirserver import nhs
from fhirserver.errors import FHIRError, Issue
from fhirserver.registry import is_resource_type, model_class

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def validate_resource(content: object, *, resource_type: str, logical_id: str | None = None) -> None:
    """Raise FHIRError (400 or 422) unless content is a valid resource of this type.

    With logical_id (an update), the body's id must be present and equal to it.
    """
    if not isinstance(content, dict):
        raise FHIRError(400, "structure", "The body must be a JSON object holding one resource.")
    received_type = content.get("resourceType")
    if received_type is None:
        raise FHIRError(400, "required", "The resource has no resourceType.", ["resourceType"])
    if received_type != resource_type:
        raise FHIRError(
            400,
            "invalid",
            f"The body's resourceType is {received_type!r} but the URL is for {resource_type}.",
            ["resourceType"],
        )
    if logical_id is not None:
        body_id = content.get("id")
        if body_id is None:
            raise FHIRError(
                400, "required", "An update must carry the resource's id.", [f"{resource_type}.id"]
            )
        if body_id != logical_id:
            raise FHIRError(
                400,
                "invalid",
                f"The body's id {body_id!r} does not match the id in the URL, {logical_id!r}.",
                [f"{resource_type}.id"],
            )
    model = _parse(content, resource_type)
    nodes = list(_walk(model, resource_type))
    binding_issues = [issue for path, node in nodes for issue in _binding_issues(node, path)]
    if binding_issues:
        raise FHIRError(400, "code-invalid", "", issues=binding_issues)
    rule_issues = [issue for path, node in nodes for issue in _uk_rule_issues(node, path)]
    if rule_issues:
        raise FHIRError(422, "business-rule", "", issues=rule_issues)


def _parse(content: dict, resource_type: str) -> FHIRAbstractModel:
    wrong = list(_shape_problems(content, resource_type, top=True))
    if wrong:
        raise FHIRError(400, "structure", "", issues=wrong)
    try:
        return model_class(resource_type).model_validate(content)
    except (TypeError, KeyError) as exc:  # a shape fhir.resources' own validators do not expect
        raise FHIRError(400, "structure", f"The {resource_type} could not be read: {exc}.") from exc
    except pydantic.ValidationError as exc:
        issues = [
            Issue(
                "required" if error["type"].endswith("missing") else "structure",
                _plain_message(error["msg"]),
                [_expression(resource_type, error["loc"])],
            )
            for error in exc.errors()
        ]
        raise FHIRError(400, "structure", "", issues=issues) from exc


def _shape_problems(value: object, path: str, top: bool = False) -> Iterator[Issue]:
    """Issues for each resource held inside this one (contained, a Bundle's entries, a
    Parameters' parts) whose resourceType is not the name of a type this server knows, and for
    any string holding NUL."""
    if isinstance(value, str):
        if "\x00" in value:  # FHIR strings hold no control characters, and no database stores NUL
            yield Issue("structure", "A string may not contain the NUL character.", [path])
    elif isinstance(value, dict):
        kind = value.get("resourceType")
        if not top and "resourceType" in value and not (isinstance(kind, str) and is_resource_type(kind)):
            yield Issue(
                "structure",
                f"resourceType must name a FHIR resource type, not {kind!r}.",
                [f"{path}.resourceType"],
            )
        for key, item in value.items():
            if "\x00" in key:
                yield Issue("structure", "An element name may not contain the NUL character.", [path])
            elif isinstance(item, dict | list | str):
                yield from _shape_problems(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _shape_problems(item, f"{path}[{index}]")


def _plain_message(message: str) -> str:
    return message.removeprefix("Value error, ")


def _expression(resource_type: str, loc: tuple) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _walk(model: FHIRAbstractModel, path: str) -> Iterator[tuple[str, FHIRAbstractModel]]:
    """Yield every element of a parsed resource that is itself a model, with its FHIRPath."""
    yield path, model
    for name, alias in _model_fields(type(model)):
        value = getattr(model, name, None)
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, FHIRAbstractModel):
                    yield from _walk(item, f"{path}.{alias}[{index}]")
        elif isinstance(value, FHIRAbstractModel):
            yield from _walk(value, f"{path}.{alias}")


@cache
def _model_fields(cls: type[FHIRAbstractModel]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (name, field.alias or name)
        for name, field in cls.model_fields.items()
        if not (field.alias or name).startswith("_")
    )


@cache
def _required_bindings(cls: type[FHIRAbstractModel]) -> tuple[tuple[str, str, frozenset[str]], ...]:
    """Return the code elements of cls bound to a required value set, with its codes."""
    bound = []
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("enum_values"):
            bound.append((name, field.alias or name, frozenset(extra["enum_values"])))
    return tuple(bound)


def _binding_issues(model: FHIRAbstractModel, path: str) -> Iterator[Issue]:
    for name, alias, codes in _required_bindings(type(model)):
        value = getattr(model, name, None)
        values = value if isinstance(value, list) else [value]
        for index, code in enumerate(values):
            if code is not None and code not in codes:
                where = f"{path}.{alias}[{index}]" if isinstance(value, list) else f"{path}.{alias}"
                yield Issue(
                    "code-invalid",
                    f"{code!r} is not a code of the required value set: {' | '.join(sorted(codes))}.",
                    [where],
                )


def _uk_rule_issues(model: FHIRAbstractModel, path: str) -> Iterator[Issue]:
    if type(model).__name__ != "Identifier" or not model.value:
        return
    if model.system == nhs.NHS_NUMBER_SYSTEM and not nhs.nhs_number_is_valid(model.value):
        yield Issue(
            "business-rule",
            f"NHS number {model.value} is not valid: it must be 10 digits passing the Modulus 11 check.",
            [f"{path}.value"],
        )
    if model.system == nhs.PRESCRIPTION_ID_SYSTEM:
        problem = nhs.prescription_id_problem(model.value)
        if problem:
            yield Issue(
                "business-rule",
                f"Prescription ID {model.value} {problem}.",
                [f"{path}.value"],
            )
