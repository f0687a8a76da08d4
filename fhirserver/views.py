"""The FHIR REST interactions: thin views over services and selectors."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fhirserver import (
    audit,
    bundles,
    http,
    owners,
    prepared,
    reindexing,
    scopes,
    selectors,
    smart,
    transactions,
    triggers,
)
from fhirserver.auth import BearerTokenAuthentication, HoldsNodeToken
from fhirserver.capability import capability_statement
from fhirserver.errors import FHIRError, Issue, operation_outcome
from fhirserver.models import ReindexJob, Resource
from fhirserver.registry import is_resource_type
from nodes.models import Node

logger = logging.getLogger(__name__)


class FHIRView(APIView):
    parser_classes = [
        http.FHIRJSONParser,
        http.JSONParser,
        http.LegacyFHIRJSONParser,
        http.FHIRXMLParser,
        http.XMLParser,
    ]
    renderer_classes = [http.FHIRJSONRenderer, http.JSONRenderer, http.FHIRXMLRenderer]
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HoldsNodeToken]
    public = False

    def initial(self, request: Request, *args, **kwargs) -> None:
        self.node = _node(kwargs["node"])
        self.base = request.build_absolute_uri(f"/{self.node.slug}/fhir")
        super().initial(request, *args, **kwargs)
        resource_type = kwargs.get("resource_type")
        if resource_type is not None and not is_resource_type(resource_type):
            raise FHIRError(404, "not-supported", f"Resource type {resource_type!r} is not supported here.")
        if not self.public:
            here = request.path.removeprefix(f"/{self.node.slug}/fhir")
            self.allow(scopes.needs(request.method, here, _pairs(request.query_params), self.node))

    def finalize_response(self, request: Request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        node = getattr(self, "node", None)
        if node is not None and response.status_code < 300 and getattr(response, "data", None):
            # Every resource answered passes here: what its owner alone may read is taken out.
            response.data = owners.answer_redacted(response.data, node=node, client=request.auth)
        if isinstance(getattr(request, "accepted_renderer", None), http.FHIRXMLRenderer):
            http.xml_answer(response)
        if node is not None and not self.public:
            try:
                self.audit(request, response, node)
            except Exception:  # the answer stands; the missing AuditEvent is logged
                logger.exception("could not audit %s %s", request.method, request.path)
        return response

    def audit(self, request: Request, response, node: Node) -> None:
        """One AuditEvent for this interaction, its outcome whatever it was (401 and 403 too)."""
        here = request.path.removeprefix(f"/{node.slug}/fhir")
        body = request.data if request.method in ("POST", "PUT") and response.status_code < 400 else None
        subtype = audit.interaction(request.method, here, body) if here != request.path else "operation"
        if not subtype:
            return
        # A path outside the FHIR base (a notification endpoint) names no resource.
        parts = [part for part in here.strip("/").split("/") if part] if here != request.path else []
        what = [f"{parts[0]}/{parts[1]}"] if len(parts) >= 2 and not parts[1].startswith(("_", "$")) else []
        location = response.headers.get("Location", "")
        if location and not what:
            what = ["/".join(location.removeprefix(self.base + "/").split("/")[:2])]
        query = request.META.get("QUERY_STRING", "")
        # The answer as JSON (before any conversion to XML); an engine's relayed answer is a plain
        # HttpResponse, with no data.
        data = getattr(response, "fhir_json", getattr(response, "data", None))
        failed = data if response.status_code >= 400 and isinstance(data, dict) else {}
        audit.record(
            audit.Access(
                node_id=node.pk,
                node_ods=node.ods_code,
                node_name=node.name,
                node_revision=node.search_revision,
                subtype=subtype,
                action=audit.INTERACTIONS[subtype],
                status=response.status_code,
                agent=audit.client_agent(getattr(request, "auth", None)),
                address=request.META.get("REMOTE_ADDR", ""),
                what=what,
                patients=audit.patients_of(body) + audit.patients_searched(query),
                query=query if subtype.startswith(("search", "history")) else "",
                text=data if isinstance(data, str) else "",
                description=next(
                    (i.get("diagnostics", "") for i in failed.get("issue", []) if isinstance(i, dict)), ""
                ),
            )
        )

    def allow(self, needs: list[scopes.Need]) -> None:
        """Refuse (403) what the client's scopes do not grant."""
        triggers.Caller(self.request.auth).allow(needs)

    def resource_body(self, request: Request) -> dict:
        """Return the parsed body; a body needs a JSON Content-Type."""
        if not request.content_type:
            raise FHIRError(
                415, "not-supported", "Send the resource with Content-Type: application/fhir+json."
            )
        return request.data

    def written(self, request: Request, record: Resource, status: int) -> Response:
        """Answer a create or update as the client's Prefer header asks."""
        headers = _version_headers(record)
        headers["Location"] = (
            f"{self.base}/{record.resource_type}/{record.logical_id}/_history/{record.version_id}"
        )
        prefer = request.headers.get("Prefer", "").replace(" ", "")
        if "return=minimal" in prefer:
            return Response(None, status=status, headers=headers)
        if "return=OperationOutcome" in prefer:
            verb = {201: "Created", 202: "Accepted"}.get(status) or (
                "Found" if request.method == "POST" else "Updated"
            )
            outcome = operation_outcome(
                [
                    Issue(
                        "informational",
                        f"{verb} {record.resource_type}/{record.logical_id}.",
                        severity="information",
                    )
                ]
            )
            return Response(outcome, status=status, headers=headers)
        return Response(record.text, status=status, headers=headers)


def _node(slug: str) -> Node:
    node = prepared.node_by_slug(slug)
    if node is None:
        raise FHIRError(404, "not-found", f"There is no node {slug!r} here.")
    return node


def _if_none_exist(request: Request) -> str | None:
    """Return the conditional-create query: the If-None-Exist header, or (as fhirpy and
    Aidbox send it) search parameters on the POST URL."""
    header = request.headers.get("If-None-Exist")
    on_url = [(name, value) for name, value in request.query_params.items() if name != "_format"]
    if header and on_url:
        raise FHIRError(
            400, "invalid", "Give the conditional-create search in If-None-Exist or on the URL, not both."
        )
    return header or (urlencode(on_url) if on_url else None)


def _version_headers(record) -> dict[str, str]:
    return {"ETag": f'W/"{record.version_id}"', "Last-Modified": bundles.last_modified(record)}


class MetadataView(FHIRView):
    public = True  # a CapabilityStatement is read before a client has credentials

    def get(self, request: Request, node: str) -> Response:
        return Response(capability_statement(node=self.node, base=self.base))


def _pairs(query) -> list[tuple[str, str]]:
    return [(name, value) for name, values in query.lists() for value in values]


class SearchMixin:
    def search(self, request: Request, resource_type: str, pairs: list[tuple[str, str]]) -> Response:
        strict = "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")
        return Response(
            bundles.search_bundle(
                node=self.node, resource_type=resource_type, params=pairs, base=self.base, strict=strict
            )
        )


class TypeView(SearchMixin, FHIRView):
    def get(self, request: Request, node: str, resource_type: str) -> Response:
        return self.search(request, resource_type, _pairs(request.query_params))

    def post(self, request: Request, node: str, resource_type: str) -> Response:
        taken = triggers.create(
            node=self.node,
            caller=triggers.Caller(request.auth),
            resource_type=resource_type,
            content=self.resource_body(request),
            if_none_exist=_if_none_exist(request),
        )
        return self.written(request, taken.record, taken.status)


class InstanceView(FHIRView):
    def get(self, request: Request, node: str, resource_type: str, logical_id: str) -> Response:
        record = selectors.resource_current(
            node=self.node, resource_type=resource_type, logical_id=logical_id
        )
        if_none_match = request.headers.get("If-None-Match", "")
        if if_none_match.strip().removeprefix("W/").strip('"') == str(record.version_id):
            return Response(None, status=304, headers=_version_headers(record))
        return Response(record.text, headers=_version_headers(record))

    def put(self, request: Request, node: str, resource_type: str, logical_id: str) -> Response:
        taken = triggers.update(
            node=self.node,
            caller=triggers.Caller(request.auth),
            resource_type=resource_type,
            logical_id=logical_id,
            content=self.resource_body(request),
            if_match=request.headers.get("If-Match"),
        )
        return self.written(request, taken.record, taken.status)

    def delete(self, request: Request, node: str, resource_type: str, logical_id: str) -> Response:
        record = triggers.delete(
            node=self.node,
            caller=triggers.Caller(request.auth),
            resource_type=resource_type,
            logical_id=logical_id,
            if_match=request.headers.get("If-Match"),
        )
        return Response(None, status=204, headers={"ETag": f'W/"{record.version_id}"'})


class SearchView(SearchMixin, FHIRView):
    """POST [type]/_search: parameters in a form body (and on the URL)."""

    parser_classes = [FormParser]

    def post(self, request: Request, node: str, resource_type: str) -> Response:
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            raise FHIRError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded.")
        self.allow(scopes.search_needs(resource_type, _pairs(request.data), self.node))
        return self.search(request, resource_type, _pairs(request.query_params) + _pairs(request.data))


class HistoryView(FHIRView):
    """_history of one resource, of a type, or of the whole node."""

    def get(
        self, request: Request, node: str, resource_type: str | None = None, logical_id: str | None = None
    ):
        query = request.query_params
        versions, next_cursor = selectors.history_page(
            node=self.node,
            resource_type=resource_type,
            logical_id=logical_id,
            since=query.get("_since"),
            count=query.get("_count"),
            cursor=query.get("_cursor"),
        )
        here = "/".join(part for part in (self.base, resource_type, logical_id, "_history") if part)
        pairs = _pairs(query)
        links = {"self": bundles.link(here, pairs)}
        if next_cursor:
            links["next"] = bundles.link(
                here, [*(p for p in pairs if p[0] != "_cursor"), ("_cursor", next_cursor)]
            )
        return Response(bundles.history(base=self.base, versions=versions, links=links))


class VersionView(FHIRView):
    def get(
        self, request: Request, node: str, resource_type: str, logical_id: str, version_id: str
    ) -> Response:
        version = selectors.resource_version(
            node=self.node, resource_type=resource_type, logical_id=logical_id, version_id=version_id
        )
        return Response(version.text, headers=_version_headers(version))


class SystemView(FHIRView):
    """POST to the node's base: a batch or transaction Bundle."""

    def post(self, request: Request, node: str) -> Response:
        bundle = transactions.bundle_process(
            node=self.node,
            bundle=self.resource_body(request),
            base=self.base,
            caller=triggers.Caller(request.auth, in_bundle=True),
        )
        return Response(bundle)


class ReindexView(FHIRView):
    """[base]/$reindex and [base]/[type]/$reindex: POST starts indexing the node's resources
    again in the background (202, Content-Location the job); GET ?job= tells its progress."""

    def post(self, request: Request, node: str, resource_type: str = "") -> Response:
        job = reindexing.reindex_start(node=self.node, resource_type=resource_type)
        here = self._here(resource_type)
        return Response(
            reindexing.job_parameters(job),
            status=202,
            headers={"Content-Location": f"{here}?job={job.pk}"},
        )

    def get(self, request: Request, node: str, resource_type: str = "") -> Response:
        number = request.query_params.get("job", "")
        if not (number.isascii() and number.isdigit()):
            raise FHIRError(
                400,
                "required",
                "Name the job: GET …/$reindex?job=<id>, as its Content-Location says.",
                ["job"],
            )
        job = ReindexJob.objects.filter(node=self.node, resource_type=resource_type, pk=number).first()
        if job is None:
            raise FHIRError(
                404, "not-found", f"No reindex job {number!r} at {self._here(resource_type)}.", ["job"]
            )
        return Response(
            reindexing.job_parameters(job), headers={"X-Progress": f"{job.processed} of {job.total}"}
        )

    def _here(self, resource_type: str) -> str:
        return "/".join(part for part in (self.base, resource_type, "$reindex") if part)


class SmartConfigurationView(FHIRView):
    """[base]/.well-known/smart-configuration: how a backend service gets a token here."""

    public = True
    renderer_classes = [http.JSONRenderer]

    def get(self, request: Request, node: str) -> Response:
        return Response(smart.smart_configuration(self.base))


@csrf_exempt
@require_POST
def token_view(request: HttpRequest, node: str) -> JsonResponse:
    """POST /<node>/oauth/token: client_credentials with a signed client assertion."""
    found = prepared.node_by_slug(node)
    try:
        if found is None:
            raise smart.OAuthError("invalid_request", f"There is no node {node!r} here.", 404)
        answer, status = (
            smart.token_issue(
                node=found, form=request.POST.dict(), endpoint=request.build_absolute_uri(request.path)
            ),
            200,
        )
    except smart.OAuthError as exc:
        answer, status = {"error": exc.error, "error_description": exc.description}, exc.status
    response = JsonResponse(answer, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="dmed", error="invalid_client"'
    return response
