"""The CapabilityStatement, generated from what this server actually implements."""

from __future__ import annotations

from django.utils import timezone

from fhirserver.registry import FHIR_VERSION, RESOURCE_TYPES
from fhirserver.search import SEARCH_PARAMETERS
from nodes.models import Node

TYPE_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "create", "search-type")
FORMATS = ["application/fhir+json", "application/json"]


def capability_statement(*, node: Node, base: str) -> dict:
    """Return this node's CapabilityStatement."""
    search_params = [
        {"name": p.code, "type": p.type, "documentation": p.documentation} for p in SEARCH_PARAMETERS
    ]
    resources = [
        {
            "type": resource_type,
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-match",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": search_params,
        }
        for resource_type in RESOURCE_TYPES
    ]
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
                "security": {
                    "cors": False,
                    "description": "Every interaction but metadata needs Authorization: Bearer <token>, "
                    "a token issued for this node.",
                },
                "resource": resources,
            }
        ],
    }
