"""ConceptMap $translate at the engine: a local code to the codes a ConceptMap it holds maps it
to (R4: https://hl7.org/fhir/R4/conceptmap-operation-translate.html)."""

from __future__ import annotations

from dataclasses import dataclass

from fhirserver import jsonio
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.search import matching
from nodes.models import Node

# Equivalences that let a medicine's local code stand for the dm+d one: the same product.
SAME = frozenset({"equal", "equivalent"})
# Equivalences that say there is no mapping (R4 ConceptMapEquivalence).
NONE = frozenset({"unmatched", "disjoint"})


@dataclass(frozen=True)
class Match:
    equivalence: str
    system: str
    code: str
    display: str = ""

    def coding(self) -> dict:
        return {
            "system": self.system,
            "code": self.code,
            **({"display": self.display} if self.display else {}),
        }


def concept_map(*, node: Node, url: str = "", logical_id: str = "", version: str = "") -> dict:
    """Return a ConceptMap the node holds, by canonical URL (newest version, or the one asked
    for) or by id; 404 when there is none."""
    if logical_id:
        found = Resource.objects.filter(
            node=node, resource_type="ConceptMap", logical_id=logical_id, deleted=False
        ).first()
    else:
        params = [("url", url)] + ([("version", version)] if version else [])
        found = (
            matching(node=node, resource_type="ConceptMap", params=params, strict=True)
            .order_by("-last_updated")
            .first()
        )
    if found is None:
        raise FHIRError(404, "not-found", f"No ConceptMap {logical_id or url!r} is held here.")
    return jsonio.loads(found.text)


def translate(
    conceptmap: dict, *, system: str, code: str, target_system: str = "", reverse: bool = False
) -> list[Match]:
    """Return what the map maps (system, code) to, in target_system if given (reverse: what maps
    to it). Unmatched and disjoint elements are no match."""
    matches: list[Match] = []
    for group in conceptmap.get("group", []):
        source, target = group.get("source", ""), group.get("target", "")
        if reverse:
            source, target = target, source
        if source != system or (target_system and target != target_system):
            continue
        for element in group.get("element", []):
            for mapped in element.get("target", []):
                equivalence = mapped.get("equivalence", "equivalent")
                if equivalence in NONE:
                    continue
                here, there = (mapped, element) if reverse else (element, mapped)
                if here.get("code") == code and there.get("code"):
                    matches.append(Match(equivalence, target, there["code"], there.get("display", "")))
    return matches


def translate_parameters(conceptmap: dict, matches: list[Match], *, system: str, code: str) -> dict:
    """The operation's answer: result, a message, and each match (R4 $translate out-parameters)."""
    name = conceptmap.get("title") or conceptmap.get("name") or conceptmap.get("url", "the map")
    message = (
        f"{len(matches)} match(es) for {system}|{code} in {name}."
        if matches
        else (f"{name} maps {system}|{code} to nothing.")
    )
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": bool(matches)},  # unmatched and disjoint are left out
            {"name": "message", "valueString": message},
            *(
                {
                    "name": "match",
                    "part": [
                        {"name": "equivalence", "valueCode": m.equivalence},
                        {"name": "concept", "valueCoding": m.coding()},
                        *(
                            [{"name": "source", "valueUri": conceptmap["url"]}]
                            if conceptmap.get("url")
                            else []
                        ),
                    ],
                }
                for m in matches
            ),
        ],
    }


def translate_inputs(pairs: list[tuple[str, str]], body: dict | None) -> dict[str, str]:
    """The operation's in-parameters, from the query (GET) or a Parameters body (POST): url,
    conceptMapVersion, system, code, targetsystem, reverse; a coding stands for system and code."""
    given = dict(pairs)
    if body is not None:
        if body.get("resourceType") != "Parameters":
            raise FHIRError(400, "invalid", "POST $translate takes a Parameters resource.", ["resourceType"])
        for parameter in body.get("parameter", []):
            name = parameter.get("name", "")
            if "valueCoding" in parameter:
                coding = parameter["valueCoding"]
                given.setdefault("system", coding.get("system", ""))
                given.setdefault("code", coding.get("code", ""))
            else:
                value = next((v for k, v in parameter.items() if k.startswith("value")), "")
                given.setdefault(name, str(value).lower() if isinstance(value, bool) else str(value))
    if "coding" in given and "|" in given["coding"]:  # GET ?coding=system|code
        system, _, code = given.pop("coding").partition("|")
        given.setdefault("system", system)
        given.setdefault("code", code)
    for required in ("system", "code"):
        if not given.get(required):
            raise FHIRError(400, "required", f"$translate needs {required} (or a coding).", [required])
    return given
