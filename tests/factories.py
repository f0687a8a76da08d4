"""Resources for tests, shaped like the EPS examples."""

from __future__ import annotations

import uuid

from exchange.topics import topics_install
from fhirserver.models import Resource, ResourceVersion
from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PRESCRIPTION_ID_SYSTEM
from nodes.models import Node
from nodes.services import api_client_issue

ITEM_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-item-number"
DISPENSE_SYSTEM = "https://fhir.nhs.uk/Id/prescription-dispense-item-number"
# The logical ids of the topics topics_install gives every node (exchange/data/topics/).
BUILT_IN_TOPICS = ("medication-request", "medication-dispense")


def make_medication_request(**overrides) -> dict:
    """Return an active acute MedicationRequest with a fresh item identifier."""
    resource = {
        "resourceType": "MedicationRequest",
        "identifier": [{"system": ITEM_SYSTEM, "value": str(uuid.uuid4())}],
        "groupIdentifier": {"system": PRESCRIPTION_ID_SYSTEM, "value": "24F5DA-A83008-7EFE6Z"},
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "39720311000001101",
                    "display": "Paracetamol 500mg soluble tablets",
                }
            ]
        },
        "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9449304130"}},
        "requester": {"identifier": {"system": ODS_SYSTEM, "value": "A83008"}},
        "dispenseRequest": {
            "performer": {"identifier": {"system": ODS_SYSTEM, "value": "FA565"}},
            "quantity": {
                "value": 60,
                "unit": "tablet",
                "system": "http://snomed.info/sct",
                "code": "428673006",
            },
        },
    }
    resource.update(overrides)
    return resource


def make_patient(nhs_number: str = "9449304130", family: str = "Audit") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number}],
        "name": [{"family": family, "given": ["Ann"]}],
        "birthDate": "1980-01-01",
    }


def identifier_query(resource: dict) -> str:
    """Return the If-None-Exist / search value for the resource's first identifier."""
    identifier = resource["identifier"][0]
    return f"identifier={identifier['system']}|{identifier['value']}"


def make_node(slug: str, kind: str, ods_code: str, name: str) -> Node:
    """Create a node whose FHIR API accepts the bearer token `<slug>-token`, with every scope,
    offering the built-in subscription topics as every node does."""
    node = Node.objects.create(slug=slug, kind=kind, ods_code=ods_code, name=name)
    api_client_issue(node=node, name="tests", token=f"{slug}-token", scopes="system/*.cruds")
    topics_install(node=node)
    return node


def bearer(slug: str) -> dict[str, str]:
    """Return the Authorization header of a node's test API client."""
    return {"Authorization": f"Bearer {slug}-token"}


def stored():
    """What the nodes hold apart from their own audit trail (every request leaves an AuditEvent)
    and the built-in subscription topics every node is given."""
    return Resource.objects.exclude(resource_type="AuditEvent").exclude(
        resource_type="Basic", logical_id__in=BUILT_IN_TOPICS
    )


def stored_versions():
    return ResourceVersion.objects.exclude(resource_type="AuditEvent").exclude(
        resource_type="Basic", resource__logical_id__in=BUILT_IN_TOPICS
    )
