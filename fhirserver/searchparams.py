"""The search parameters this server supports, and the values a resource gives each of them."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from fhirserver.dates import EARLIEST, LATEST, date_range
from fhirserver.registry import model_class

GROUP_IDENTIFIER_URL = "https://dmed.example/fhir/SearchParameter/MedicationRequest-group-identifier"


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str  # token | string | date | reference | uri
    path: str  # dotted path into the resource's JSON, "" for the server's own columns
    targets: tuple[str, ...] = ()
    documentation: str = ""
    definition: str = ""  # canonical URL; set for parameters that are not in R4 core


def _p(code: str, type_: str, path: str, targets: tuple[str, ...] = (), doc: str = "", **kw) -> SearchParam:
    return SearchParam(code, type_, path, targets, doc, **kw)


_PATIENT = ("Patient",)
_AGENT = ("Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device")

COMMON = (
    _p("_id", "token", "", doc="The resource's logical id."),
    _p("_lastUpdated", "date", "", doc="When the resource last changed here."),
)

BY_TYPE: dict[str, tuple[SearchParam, ...]] = {
    "MedicationRequest": (
        _p("status", "token", "status"),
        _p("intent", "token", "intent"),
        _p("category", "token", "category"),
        _p("code", "token", "medicationCodeableConcept", doc="The medication's code (SNOMED CT / dm+d)."),
        _p("medication", "reference", "medicationReference", ("Medication",)),
        _p("subject", "reference", "subject", ("Patient", "Group")),
        _p("patient", "reference", "subject", _PATIENT),
        _p("requester", "reference", "requester", _AGENT),
        _p("authoredon", "date", "authoredOn"),
        _p(
            "intended-dispenser",
            "reference",
            "dispenseRequest.performer",
            ("Organization",),
            doc="The nominated pharmacy.",
        ),
        _p(
            "group-identifier",
            "token",
            "groupIdentifier",
            doc="The Prescription ID shared by a prescription's line items (not in R4 core).",
            definition=GROUP_IDENTIFIER_URL,
        ),
    ),
    "AuditEvent": (
        _p("date", "date", "recorded"),
        _p("agent", "reference", "agent.who", doc="Who did it: an API client or a user (by identifier)."),
        _p("entity", "reference", "entity.what", doc="A resource it touched."),
        _p("patient", "reference", "entity.what", _PATIENT, doc="The patient whose record it touched."),
        _p("type", "token", "type"),
        _p("subtype", "token", "subtype"),
        _p("action", "token", "action"),
        _p("outcome", "token", "outcome"),
    ),
    "MedicationDispense": (
        _p("status", "token", "status"),
        _p("code", "token", "medicationCodeableConcept"),
        _p("medication", "reference", "medicationReference", ("Medication",)),
        _p("subject", "reference", "subject", ("Patient", "Group")),
        _p("patient", "reference", "subject", _PATIENT),
        _p("prescription", "reference", "authorizingPrescription", ("MedicationRequest",)),
        _p("performer", "reference", "performer.actor", _AGENT),
        _p("whenhandedover", "date", "whenHandedOver"),
        _p("whenprepared", "date", "whenPrepared"),
    ),
    "Patient": (
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("birthdate", "date", "birthDate"),
        _p("gender", "token", "gender"),
    ),
    "Practitioner": (_p("name", "string", "name"),),
    "Organization": (_p("name", "string", "name|alias"),),
    "ConceptMap": (
        _p("url", "uri", "url"),
        _p("version", "token", "version"),
        _p("name", "string", "name"),
        _p("status", "token", "status"),
        _p("source-system", "uri", "group.source", doc="A system mapped from (R4: source-system)."),
        _p("target-system", "uri", "group.target", doc="A system mapped to (R4: target-system)."),
    ),
    "Subscription": (
        _p("status", "token", "status"),
        _p("criteria", "string", "criteria"),
        _p("url", "uri", "channel.endpoint"),
    ),
}


@cache
def params_for(resource_type: str) -> dict[str, SearchParam]:
    """Return the search parameters of a resource type by code."""
    params = {p.code: p for p in COMMON}
    if "identifier" in model_class(resource_type).model_fields:
        params["identifier"] = _p("identifier", "token", "identifier", doc="A business identifier.")
    params.update((p.code, p) for p in BY_TYPE.get(resource_type, ()))
    return params


# Extraction: what a resource gives each parameter, written to the index tables.


def values_at(resource: dict, path: str) -> list:
    """Return the values at a dotted path (alternatives split by |), lists flattened."""
    found: list = []
    for alternative in path.split("|"):
        current: list = [resource]
        for key in alternative.split("."):
            step: list = []
            for item in current:
                value = item.get(key) if isinstance(item, dict) else None
                if isinstance(value, list):
                    step.extend(value)
                elif value is not None:
                    step.append(value)
            current = step
        found.extend(current)
    return found


def tokens(value: object) -> Iterator[tuple[str, str]]:
    """Yield (system, code) pairs of a code, Coding, CodeableConcept, Identifier or boolean."""
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str | int):
        yield "", str(value)
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                yield from tokens(coding)
        elif "code" in value:
            yield value.get("system") or "", str(value["code"])
        elif "value" in value:
            yield value.get("system") or "", str(value["value"])


def strings(value: object) -> Iterator[str]:
    """Yield the searchable strings of a string, HumanName or Address."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in ("text", "family", "given", "prefix", "suffix", "line", "city", "postalCode"):
            part = value.get(key)
            for item in part if isinstance(part, list) else [part]:
                if isinstance(item, str):
                    yield item


def normalise(text: str) -> str:
    """Fold case and accents, as string search compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def date_ranges(value: object) -> Iterator[tuple[datetime, datetime]]:
    """Yield the [low, high) ranges of a date, dateTime, instant or Period."""
    if isinstance(value, str):
        found = date_range(value)
        if found:
            yield found
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        yield (start[0] if start else EARLIEST), (end[1] if end else LATEST)


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str = ""
    target_id: str = ""
    url: str = ""
    id_system: str = ""
    id_value: str = ""


def references(value: object, targets: tuple[str, ...] = ()) -> Iterator[ReferenceValue]:
    """Yield what a Reference points at: Type/id, an absolute URL, and/or an identifier."""
    if not isinstance(value, dict):
        return
    target_type, target_id, url = value.get("type") or "", "", ""
    literal = value.get("reference")
    if isinstance(literal, str) and not literal.startswith("#"):
        parts = literal.split("/_history/")[0].split("/")
        if "://" in literal or literal.startswith("urn:"):
            url = literal
        if len(parts) >= 2 and parts[-2][:1].isupper():
            target_type, target_id = parts[-2], parts[-1]
    identifier = value.get("identifier") if isinstance(value.get("identifier"), dict) else {}
    id_system, id_value = identifier.get("system") or "", str(identifier.get("value") or "")
    if targets and target_type and target_type not in targets:
        return
    if target_id or url or id_value:
        yield ReferenceValue(target_type, target_id, url, id_system, id_value)
