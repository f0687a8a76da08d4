"""The FHIR JSON wire format for DRF: parsers, renderers and content negotiation."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from fhirserver import jsonio
from fhirserver.errors import FHIRError

FHIR_JSON = "application/fhir+json"
# What `_format` may say; anything else (xml, turtle) cannot be met here.
_FORMAT_ALIASES = {"json", FHIR_JSON, "application/json", "application/json+fhir"}


class FHIRJSONParser(BaseParser):
    """Read a JSON body, refusing one over the configured size with 413."""

    media_type = FHIR_JSON

    def parse(self, stream, media_type=None, parser_context=None):
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
        try:
            return jsonio.loads(data)
        except jsonio.JSONError as exc:
            raise FHIRError(400, "invalid", f"The body is not valid JSON: {exc}") from exc


class JSONParser(FHIRJSONParser):
    media_type = "application/json"


class LegacyFHIRJSONParser(FHIRJSONParser):
    media_type = "application/json+fhir"


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
            if wanted not in _FORMAT_ALIASES:
                raise exceptions.NotAcceptable(f"_format={wanted} is not supported; use json.")
            renderer = by_type.get(wanted, fhir)
            return renderer, renderer.media_type
        for media_range in _accepted(request.META.get("HTTP_ACCEPT", "")):
            if media_range in ("*/*", "application/*", FHIR_JSON, "application/json+fhir"):
                return fhir, fhir.media_type
            if media_range == "application/json" and "application/json" in by_type:
                renderer = by_type["application/json"]
                return renderer, renderer.media_type
        raise exceptions.NotAcceptable(
            "This server answers in application/fhir+json or application/json only."
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
