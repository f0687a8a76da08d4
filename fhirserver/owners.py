"""Resources that belong to the API client that made them (FHIR_OWNED_TYPES), as a Subscription
does: only its owner may change or delete one, and only its owner reads the elements named for
its type (a Subscription's `channel.header`, which carries the token its notifications are sent
with). Everyone else whom the scopes let read it gets it without them, tagged REDACTED.

A resource with no owner (made while the API needed no token, or before owners were kept) may be
changed by any client its scopes allow; its named elements are still shown only when the API is
called without a token."""

from __future__ import annotations

from django.conf import settings

from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.jsonio import RawJSON
from fhirserver.models import Resource
from nodes.models import ApiClient, Node

REDACTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"}


def owned(resource_type: str) -> bool:
    return resource_type in settings.FHIR_OWNED_TYPES


def owner_for(resource_type: str, client: ApiClient | None) -> ApiClient | None:
    """The owner a new resource of this type gets: the client creating it, for an owned type."""
    return client if owned(resource_type) else None


def change_check(record: Resource | None, client: ApiClient | None) -> None:
    """Refuse (403) a change to a live owned resource by a client other than its owner."""
    if record is None or record.deleted or not owned(record.resource_type):
        return
    if client is not None and record.owner_id is not None and record.owner_id != client.pk:
        raise FHIRError(
            403,
            "forbidden",
            f"{record.resource_type}/{record.logical_id} belongs to the API client that made it; "
            "only that client may change or delete it.",
        )


def answer_redacted(data: object, *, node: Node, client: ApiClient | None) -> object:
    """Return an answer (a resource's text, or a Bundle with resources spliced in, nested Bundles
    included) with the owned elements of resources this client does not own taken out."""
    if client is None or not settings.FHIR_OWNED_TYPES:
        return data
    answer = {"answer": data}  # a slot for the answer itself, should it be an owned resource
    found: list[tuple[dict, str, tuple[str, dict]]] = []  # (holder, key, (type, resource))
    _collect(answer, "answer", found)
    if not found:
        return data
    wanted = {(kind, body.get("id")) for _, _, (kind, body) in found}
    owners = {
        (kind, logical_id): owner
        for kind, logical_id, owner in Resource.objects.filter(
            node=node,
            resource_type__in={kind for kind, _ in wanted},
            logical_id__in={logical_id for _, logical_id in wanted},
        ).values_list("resource_type", "logical_id", "owner_id")
    }
    for holder, key, (kind, body) in found:
        if owners.get((kind, body.get("id"))) != client.pk:
            holder[key] = _without(body, settings.FHIR_OWNED_TYPES[kind])
    return answer["answer"]


def _collect(holder: dict | list, key, found: list) -> None:
    """Find the owned resources in an answer: resource texts, parsed resources, and the entries
    of Bundles (a batch's answers hold searchsets)."""
    value = holder[key]
    text = value if isinstance(value, str) else value.encoded_json if isinstance(value, RawJSON) else None
    if text is not None:
        kind = _owned_type_of(text)
        if kind:
            found.append((holder, key, (kind, jsonio.loads(text))))
        return
    if not isinstance(value, dict):
        return
    if value.get("resourceType") == "Bundle":
        for entry in value.get("entry") or []:
            if isinstance(entry, dict) and "resource" in entry:
                _collect(entry, "resource", found)
    elif owned(value.get("resourceType", "")):
        found.append((holder, key, (value["resourceType"], value)))


def _owned_type_of(text: str) -> str:
    """The owned type a stored resource's text is of, or ''. Stored text starts with its
    resourceType, so only owned resources are parsed."""
    head = text[:80]
    for kind in settings.FHIR_OWNED_TYPES:
        if head.startswith(f'{{"resourceType":"{kind}"'):
            return kind
    return ""


def _without(body: dict, paths: list[str]) -> dict:
    """A copy of a resource with these dotted paths removed, and tagged REDACTED if any was there."""
    body = jsonio.loads(jsonio.dumps(body))
    removed = False
    for path in paths:
        *parents, last = path.split(".")
        node = body
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            del node[last]
            removed = True
    if removed:
        meta = body.setdefault("meta", {})
        meta["security"] = [*meta.get("security", []), REDACTED]
    return body
