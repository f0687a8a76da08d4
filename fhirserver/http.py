"""The FHIR JSON wire format for DRF: parsers, renderers and content negotiation."""

from __future__ import annotations

import pydantic
from django.conf import settings
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from fhirserver import jsonio, xml
from fhirserver.errors import FHIRError, Issue, operation_outcome

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
# What `_format` may say, and the media type each stands for; anything else (turtle) cannot be met.
_FORMAT_ALIASES = {
    "json": FHIR_JSON,
    FHIR_JSON: FHIR_JSON,
    "application/json": "application/json",
    "application/json+fhir": FHIR_JSON,
    "xml": FHIR_XML,
    FHIR_XML: FHIR_XML,
    "application/xml": FHIR_XML,
    "text/xml": FHIR_XML,
    "application/xml+fhir": FHIR_XML,
}
_XML_RANGES = (FHIR_XML, "application/xml", "text/xml", "application/xml+fhir")


def _body(stream, parser_context) -> bytes:
    """The request body, refusing one over FHIR_MAX_BODY_BYTES (413) or empty (400)."""
    limit = settings.FHIR_MAX_BODY_BYTES
    request = parser_context["request"] if parser_context else None
    declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    if declared > limit:
        raise _too_large(limit)
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise _too_large(limit)
    if not data.strip():
        raise FHIRError(400, "required", "The request body is empty; a FHIR resource was expected.")
    return data


class FHIRJSONParser(BaseParser):
    """Read a JSON body."""

    media_type = FHIR_JSON

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return jsonio.loads(_body(stream, parser_context))
        except jsonio.JSONError as exc:
            raise FHIRError(400, "invalid", f"The body is not valid JSON: {exc}") from exc


class JSONParser(FHIRJSONParser):
    media_type = "application/json"


class LegacyFHIRJSONParser(FHIRJSONParser):
    media_type = "application/json+fhir"


class FHIRXMLParser(BaseParser):
    """Read a FHIR XML body into its JSON form."""

    media_type = FHIR_XML

    def parse(self, stream, media_type=None, parser_context=None):
        return xml.resource_from_xml(_body(stream, parser_context))


class XMLParser(FHIRXMLParser):
    media_type = "application/xml"


def _too_large(limit: int) -> FHIRError:
    return FHIRError(413, "too-long", f"The body is larger than this server accepts ({limit} bytes).")


class FHIRJSONRenderer(BaseRenderer):
    """Write JSON; a str is JSON text already (stored resources are served as stored)."""

    media_type = FHIR_JSON
    format = "json"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, str):
            return data.encode()
        return jsonio.dumps(data).encode()


class JSONRenderer(FHIRJSONRenderer):
    media_type = "application/json"


class FHIRXMLRenderer(BaseRenderer):
    """Write FHIR XML, converted from the JSON answer (a resource's text, or a Bundle)."""

    media_type = FHIR_XML
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, bytes):  # converted already (xml_answer)
            return data
        return xml.xml_from_json(data if isinstance(data, str) else jsonio.dumps(data))


def xml_answer(response) -> None:
    """Convert an answer to XML before it goes out, so that one XML cannot carry (a search with
    _elements leaves out what XML's schema requires) is a 406 OperationOutcome, not a 500."""
    if response.data is None or isinstance(response.data, bytes):
        return
    response.fhir_json = response.data  # what the audit reads (the patient a resource is about)
    try:
        response.data = xml.xml_from_json(
            response.data if isinstance(response.data, str) else jsonio.dumps(response.data)
        )
    except (pydantic.ValidationError, ValueError, TypeError, KeyError) as exc:
        problem = str(exc).splitlines()[0][:300]
        response.status_code = 406
        response.data = xml.xml_from_json(
            jsonio.dumps(
                operation_outcome(
                    [Issue("not-supported", f"This answer cannot be given in XML ({problem}); ask for JSON.")]
                )
            )
        )


class FHIRContentNegotiation(BaseContentNegotiation):
    """Pick the parser by Content-Type and the renderer by `_format`, then Accept."""

    def select_parser(self, request, parsers):
        content_type = request.content_type.split(";")[0].strip().lower()
        return next((p for p in parsers if p.media_type == content_type), None)

    def select_renderer(self, request, renderers, format_suffix=None):
        by_type = {r.media_type: r for r in renderers}
        fhir = by_type.get(FHIR_JSON, renderers[0])
        wanted = request.query_params.get("_format")
        if wanted is not None:
            wanted = wanted.strip().lower().replace(" ", "+")
            if wanted not in _FORMAT_ALIASES or _FORMAT_ALIASES[wanted] not in by_type:
                raise exceptions.NotAcceptable(f"_format={wanted} is not supported; use json or xml.")
            renderer = by_type[_FORMAT_ALIASES[wanted]]
            return renderer, renderer.media_type
        for media_range in _accepted(request.META.get("HTTP_ACCEPT", "")):
            if media_range in ("*/*", "application/*", FHIR_JSON, "application/json+fhir"):
                return fhir, fhir.media_type
            if media_range == "application/json" and "application/json" in by_type:
                renderer = by_type["application/json"]
                return renderer, renderer.media_type
            if media_range in _XML_RANGES and FHIR_XML in by_type:
                return by_type[FHIR_XML], FHIR_XML
        raise exceptions.NotAcceptable(
            "This server answers in application/fhir+json, application/json or application/fhir+xml."
        )


def _accepted(header: str) -> list[str]:
    """Return the media ranges of an Accept header, best first; none means anything."""
    if not header.strip():
        return ["*/*"]
    ranges = []
    for position, part in enumerate(header.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranges.append((-quality, position, media.lower()))
    return [media for _, _, media in sorted(ranges)]
