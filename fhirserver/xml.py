"""FHIR XML in and out, converted by fhir.resources (lxml underneath). What is stored stays the
JSON received or converted once, so JSON reads never pay for XML; an XML answer is made from the
JSON answer as it goes out."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pydantic
from lxml import etree

from fhirserver import jsonio
from fhirserver.errors import FHIRError, Issue
from fhirserver.registry import is_resource_type, model_class

NAMESPACE = "{http://hl7.org/fhir}"
# No DTDs, entities or network: a FHIR resource needs none of them.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def resource_from_xml(data: bytes) -> dict:
    """The JSON form of a FHIR XML resource, or a 400 that says what is wrong with it."""
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise FHIRError(400, "invalid", f"The body is not well-formed XML: {exc}") from exc
    tag = root.tag if isinstance(root.tag, str) else ""
    resource_type = tag.removeprefix(NAMESPACE)
    if not tag.startswith(NAMESPACE) or not is_resource_type(resource_type):
        raise FHIRError(
            400,
            "invalid",
            f"The root element {tag!r} is not a FHIR resource in the namespace http://hl7.org/fhir.",
        )
    try:
        model = model_class(resource_type).model_validate_xml(etree.tostring(root))
    except pydantic.ValidationError as exc:
        issues = [
            Issue("structure", error["msg"], [".".join([resource_type, *map(str, error["loc"])])])
            for error in exc.errors()
        ]
        raise FHIRError(400, "structure", "", issues=issues) from exc
    except KeyError as exc:  # fhir.resources' XML reader meets an element the type does not have
        raise FHIRError(
            400, "structure", f"The {resource_type} holds an element FHIR R4 does not define there: {exc}."
        ) from exc
    except (ValueError, TypeError) as exc:
        raise FHIRError(400, "structure", f"The {resource_type} could not be read from XML: {exc}.") from exc
    content = jsonio.loads(model.model_dump_json(exclude_none=True))
    _primitive_text(content, root, into_json=True)
    return content


def xml_from_json(text: str) -> bytes:
    """FHIR XML of a resource's JSON text (a Bundle with its entries' resources, too)."""
    content = jsonio.loads(text)
    written = model_class(content.get("resourceType", "")).model_validate_json(text).model_dump_xml()
    root = etree.fromstring(written, parser=_PARSER)
    _primitive_text(content, root, into_json=False)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _primitive_text(content: dict, element, *, into_json: bool) -> None:
    """Keep a decimal's digits (1.50 stays 1.50) and a date's text, which fhir.resources'
    conversion changes: walk the JSON and the XML together and copy each primitive's text
    across, XML to JSON on the way in, JSON to XML on the way out."""
    children: dict[str, list] = {}
    for child in element:
        if isinstance(child.tag, str):
            children.setdefault(child.tag.removeprefix(NAMESPACE), []).append(child)
    for key, value in content.items():
        items = value if isinstance(value, list) else [value]
        for index, (item, child) in enumerate(zip(items, children.get(key, []), strict=False)):
            if isinstance(item, dict):
                inner = child[0] if "resourceType" in item and len(child) else child
                _primitive_text(item, inner, into_json=into_json)
            elif isinstance(item, int | float | Decimal) and not isinstance(item, bool):
                text = child.get("value")
                if into_json and text is not None and _is_decimal(text):
                    exact = Decimal(text)
                    if isinstance(value, list):
                        value[index] = exact
                    else:
                        content[key] = exact
                elif not into_json:
                    child.set("value", str(item))
            elif isinstance(item, str) and child.get("value") is not None:
                # A date or instant as written, not as fhir.resources reformats it.
                if into_json:
                    if isinstance(value, list):
                        value[index] = child.get("value")
                    else:
                        content[key] = child.get("value")
                else:
                    child.set("value", item)


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False
