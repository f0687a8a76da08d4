"""The engine's HTTP face: its FHIR base relays to the broker, its notification endpoints relay
to partners, and it answers for the messages it holds and for the ConceptMaps it keeps."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from engine import relay, translate
from exchange.notifications import notification_parse
from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.scopes import Need
from fhirserver.views import FHIRView


class EngineView(FHIRView):
    def relay_request(self, request: Request, path: str) -> relay.Request:
        return relay.Request(
            engine=self.node,
            client=request.auth,
            method=request.method,
            path=path,
            query=request.META.get("QUERY_STRING", ""),
            headers=dict(request.headers),
            body=request.body,
            status_base=request.build_absolute_uri(f"/{self.node.slug}/relayed"),
        )


def _http(reply: relay.Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers.items():
        response[name] = value
    if "Content-Type" not in response.headers or not reply.body:
        response["Content-Type"] = "application/fhir+json"
    return response


class RelayView(EngineView):
    """Everything under the engine's FHIR base that it does not answer itself."""

    def _relay(self, request: Request, node: str, rest: str = "") -> HttpResponse:
        return _http(relay.fhir_relay(self.relay_request(request, rest)))

    get = post = put = delete = patch = _relay


class NotificationRelayView(EngineView):
    """POST /<engine>/notifications/<ODS code>: a notification for that partner."""

    def post(self, request: Request, node: str, ods_code: str = "") -> HttpResponse:
        try:
            note = notification_parse(jsonio.loads(request.body))
        except jsonio.JSONError as exc:
            raise FHIRError(400, "invalid", f"A notification is a JSON history Bundle: {exc}.") from None
        self.allow([Need(focus_type, "c") for focus_type in note.focus_types])  # as the partner would
        return _http(relay.notification_relay(self.relay_request(request, f"notifications/{ods_code}")))


class RelayedView(EngineView):
    """GET /<engine>/relayed/<id>: the Content-Location of a held message."""

    def get(self, request: Request, node: str, message_id: int) -> HttpResponse:
        here = request.build_absolute_uri(request.path)
        return _http(
            relay.relayed_status(engine=self.node, client=request.auth, message_id=message_id, here=here)
        )


class TranslateView(FHIRView):
    """ConceptMap/$translate and ConceptMap/[id]/$translate (GET or POST Parameters)."""

    def get(self, request: Request, node: str, logical_id: str = "") -> Response:
        return self._translate(request, logical_id, None)

    def post(self, request: Request, node: str, logical_id: str = "") -> Response:
        return self._translate(request, logical_id, self.resource_body(request))

    def _translate(self, request: Request, logical_id: str, body: dict | None) -> Response:
        given = translate.translate_inputs(list(request.query_params.items()), body)
        if not logical_id and not given.get("url"):
            raise FHIRError(
                400, "required", "Say which ConceptMap: its url, or ConceptMap/[id]/$translate.", ["url"]
            )
        conceptmap = translate.concept_map(
            node=self.node,
            url=given.get("url", ""),
            logical_id=logical_id,
            version=given.get("conceptMapVersion", ""),
        )
        matches = translate.translate(
            conceptmap,
            system=given["system"],
            code=given["code"],
            target_system=given.get("targetsystem", ""),
            reverse=given.get("reverse", "").lower() == "true",
        )
        answer = translate.translate_parameters(
            conceptmap, matches, system=given["system"], code=given["code"]
        )
        return Response(answer)
