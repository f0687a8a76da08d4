"""The rules an engine applies to what a connected system sends, before it leaves the
organisation: the sending organisation, the prescription type, local medicine codes mapped to
dm+d, and what the broker would refuse. Each returns the changed resource and what it did."""

from __future__ import annotations

import copy

from engine.models import Connection, Rule
from engine.translate import SAME, concept_map, translate
from fhirserver.errors import FHIRError
from fhirserver.medication import SNOMED, performer_ods, requester_ods
from fhirserver.nhs import ODS_SYSTEM
from fhirserver.validation import validate_resource

PRESCRIPTION_TYPE = "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionType"
PRESCRIPTION_TYPE_SYSTEM = "https://fhir.nhs.uk/CodeSystem/prescription-type"
# What the rules look at; anything else passes as it came.
CHECKED = ("MedicationRequest", "MedicationDispense")


def rules_apply(
    *, connection: Connection, content: dict, logical_id: str | None = None
) -> tuple[dict, list[str]]:
    """Return the resource as it should leave, and a line for each change; refuse (FHIRError,
    with the path) what a rule or the broker's validation would refuse."""
    resource_type = content.get("resourceType") if isinstance(content, dict) else None
    if resource_type not in CHECKED:
        return content, []
    # What the broker would refuse is refused here first, and the rules then read a resource
    # of the right shape; what they add (an ODS identifier, an extension, a coding) keeps it valid.
    validate_resource(content, resource_type=resource_type, logical_id=logical_id)
    content, notes = copy.deepcopy(content), []
    notes += _sending_organisation(connection, content)
    if resource_type == "MedicationRequest":
        notes += _prescription_type(connection, content)
    notes += _medicine_codes(connection, content)
    return content, notes


def _sending_organisation(connection: Connection, content: dict) -> list[str]:
    if content["resourceType"] == "MedicationRequest":
        found, path = requester_ods(content), "MedicationRequest.requester.identifier.value"
    else:
        found, path = performer_ods(content), "MedicationDispense.performer[0].actor.identifier.value"
    if connection.ods_rule == Rule.LEAVE or found == connection.ods_code:
        return []
    if connection.ods_rule == Rule.STAMP and not found:
        organisation = {
            "type": "Organization",
            "identifier": {"system": ODS_SYSTEM, "value": connection.ods_code},
        }
        if content["resourceType"] == "MedicationRequest":
            content["requester"] = {**content.get("requester", {}), **organisation}
        else:
            performers = content.setdefault("performer", [{}]) or [{}]
            performers[0]["actor"] = {**performers[0].get("actor", {}), **organisation}
            content["performer"] = performers
        return [f"Stamped the sending organisation {connection.ods_code}."]
    raise FHIRError(
        422,
        "business-rule",
        f"{connection.name} sends for organisation {connection.ods_code}; this resource says "
        f"{found or 'none'}.",
        [path],
    )


def _prescription_type(connection: Connection, content: dict) -> list[str]:
    wanted = connection.prescription_type
    if not wanted or connection.prescription_type_rule == Rule.LEAVE:
        return []
    extensions = content.setdefault("extension", [])
    found = next((e for e in extensions if e.get("url") == PRESCRIPTION_TYPE), None)
    code = (found or {}).get("valueCoding", {}).get("code", "")
    if code == wanted:
        return []
    if found is None and connection.prescription_type_rule == Rule.STAMP:
        extensions.append(
            {"url": PRESCRIPTION_TYPE, "valueCoding": {"system": PRESCRIPTION_TYPE_SYSTEM, "code": wanted}}
        )
        return [f"Stamped prescription type {wanted}."]
    raise FHIRError(
        422,
        "business-rule",
        f"{connection.name} sends prescription type {wanted}; this request says {code or 'none'}.",
        [f"MedicationRequest.extension('{PRESCRIPTION_TYPE}')"],
    )


def _medicine_codes(connection: Connection, content: dict) -> list[str]:
    """Put the dm+d coding first where the medicine is coded only locally; refuse a local code
    the connection's ConceptMap does not map to one dm+d product."""
    codings = content.get("medicationCodeableConcept", {}).get("coding", [])
    if not connection.concept_map or not codings or any(c.get("system") == SNOMED for c in codings):
        return []
    conceptmap = concept_map(node=connection.engine, url=connection.concept_map)
    local_systems = {group.get("source") for group in conceptmap.get("group", [])}
    for index, coding in enumerate(codings):
        if coding.get("system") not in local_systems:
            continue
        matches = [
            m
            for m in translate(
                conceptmap, system=coding["system"], code=coding.get("code", ""), target_system=SNOMED
            )
            if m.equivalence in SAME
        ]
        if len(matches) == 1:
            codings.insert(0, matches[0].coding())
            return [f"Mapped {coding['system']}|{coding.get('code')} to dm+d {matches[0].code}."]
        raise FHIRError(
            422,
            "code-invalid",
            f"{conceptmap.get('title') or conceptmap.get('name') or connection.concept_map} maps the local "
            f"code {coding.get('code')!r} ({coding.get('display', 'no display')}) to "
            f"{'no' if not matches else 'more than one'} dm+d product; the prescription was not sent.",
            [f"{content['resourceType']}.medicationCodeableConcept.coding[{index}]"],
        )
    raise FHIRError(
        422,
        "code-invalid",
        "The medicine has neither a dm+d code nor a local code the engine can map.",
        [f"{content['resourceType']}.medicationCodeableConcept.coding"],
    )
