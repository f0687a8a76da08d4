"""The CapabilityStatement, generated from what this server actually implements."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from fhirserver.custom_params import custom_params
from fhirserver.registry import FHIR_VERSION, RESOURCE_TYPES
from fhirserver.searchparams import SearchParam, params_for, reference_params
from fhirserver.smart import token_url
from nodes.models import Node

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")
FORMATS = ["application/fhir+json", "application/json", "application/fhir+xml", "application/xml"]
# POST [base]/$reindex or [base]/[type]/$reindex: index stored resources again in the background
# (202 and a job to follow at Content-Location); fhirserver/reindexing.py.
REINDEX = {
    "name": "reindex",
    "definition": "https://dmed.example/fhir/OperationDefinition/reindex",
    "documentation": "Index the node's stored resources (of this type, or all) again in the background, "
    "as its search parameters now say: 202 Accepted, with Content-Location [base]/$reindex?job=<id> "
    "(a Parameters resource: status, total, processed).",
}
TOPIC_CANONICAL = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)


def capability_statement(*, node: Node, base: str) -> dict:
    """Return this node's CapabilityStatement."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.now().isoformat(timespec="seconds"),
        "publisher": "dmed",
        "kind": "instance",
        "software": {"name": "dmed"},
        "implementation": {"description": f"{node.name} ({node.kind}, ODS {node.ods_code})", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": FORMATS,
        "rest": [
            {
                "mode": "server",
                "security": security(base),
                "resource": _at_node(node),
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "operation": [REINDEX],
            }
        ],
    }


@cache
def resource_capabilities() -> list[dict]:
    """Return what each resource type supports (the same for every node, so computed once)."""
    return [_resource(resource_type) for resource_type in RESOURCE_TYPES]


def _at_node(node: Node) -> list[dict]:
    """The standard capabilities with this node's own: its custom search parameters and the
    subscription topics it offers."""
    custom = custom_params(node)
    topics = import_string(settings.FHIR_SUBSCRIPTION_TOPICS)(node)
    resources = []
    for entry in resource_capabilities():
        own = custom.get(entry["type"])
        if own:
            entry = {**entry, "searchParam": [*entry["searchParam"], *map(_search_param, own.values())]}
        if entry["type"] == "Subscription" and topics:  # the topics offered (R4 Subscriptions Backport)
            entry = {
                "extension": [{"url": TOPIC_CANONICAL, "valueCanonical": url} for url in topics],
                **entry,
            }
        resources.append(entry)
    return resources


def _search_param(param: SearchParam) -> dict:
    entry = {"name": param.code, "type": param.type}
    if param.definition:
        entry["definition"] = param.definition
    if param.documentation:
        entry["documentation"] = param.documentation
    return entry


def _resource(resource_type: str) -> dict:
    params = params_for(resource_type).values()
    operations = [
        {"name": name, "definition": definition}
        for (on_type, name), definition in settings.FHIR_OPERATIONS.items()
        if on_type == resource_type
    ] + [REINDEX]
    owned = settings.FHIR_OWNED_TYPES.get(resource_type)
    documentation = (
        "Belongs to the API client that creates it: only that client may update or delete it, "
        f"and others read it without {', '.join(owned)} (tagged REDACTED)."
        if owned
        else ""
    )
    return {
        "type": resource_type,
        **({"documentation": documentation} if documentation else {}),
        **({"operation": operations} if operations else {}),
        "interaction": [
            {"code": code}
            for code in TYPE_INTERACTIONS
            if not (resource_type == "AuditEvent" and code in ("update", "delete"))  # never changed
        ],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-match",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchInclude": [f"{resource_type}:{p.code}" for p in params if p.type == "reference"],
        "searchRevInclude": [
            f"{source}:{p.code}"
            for source, p in reference_params()
            if not p.targets or resource_type in p.targets
        ],
        "searchParam": [_search_param(param) for param in params],
    }


def security(base: str) -> dict:
    """SMART Backend Services (and static bearer tokens), each with SMART system scopes."""
    return {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": token_url(base)}],
            }
        ],
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "SMART Backend Services (client_credentials, private_key_jwt RS384 or ES384)",
            }
        ],
        "description": "Every interaction but metadata needs Authorization: Bearer <token>: an access "
        "token from the token endpoint (SMART Backend Services, about 5 minutes), or a static token "
        "issued for this node. Either carries SMART system scopes (system/<Type>.cruds, v1 "
        "system/<Type>.read|write); a request outside them gets 403. See "
        f"{base}/.well-known/smart-configuration.",
    }
