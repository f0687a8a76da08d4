"""Take the MedicationRequests and MedicationDispenses out of the EPS example messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path

EPS_DIR = Path(__file__).parent / "fixtures" / "eps"
TYPES = ("MedicationRequest", "MedicationDispense")


def example_files() -> list[Path]:
    return sorted(EPS_DIR.glob("*.json"))


def medication_resources(path: Path) -> list[dict]:
    """Return each MedicationRequest and MedicationDispense entry of every Bundle in the file.

    `urn:uuid:` references only mean something inside their Bundle, so each becomes a logical
    reference to the target entry's type and identifier. A contained resource's reference to an
    entry the message does not carry takes the outer resource's own reference of that name (the
    patient), or else keeps only a display.
    """
    found = []
    for bundle in _bundles(json.loads(path.read_text())):
        by_url = {e["fullUrl"]: e["resource"] for e in bundle.get("entry", []) if "fullUrl" in e}
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") in TYPES:
                found.append(_logical_references(copy.deepcopy(resource), by_url, resource))
    return found


def _bundles(node: object):
    if isinstance(node, dict):
        if node.get("resourceType") == "Bundle":
            yield node
        for value in node.values():
            yield from _bundles(value)
    elif isinstance(node, list):
        for value in node:
            yield from _bundles(value)


def _logical_references(node: object, by_url: dict[str, dict], outer: dict, key: str = "") -> object:
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:uuid:"):
            target = by_url.get(reference)
            if target is not None:
                identifier = target.get("identifier")
                node = {
                    "type": target["resourceType"],
                    "identifier": identifier[0] if isinstance(identifier, list) else identifier,
                }
            elif isinstance(outer.get(key), dict) and outer[key].get("reference") != reference:
                node = _logical_references(copy.deepcopy(outer[key]), by_url, {}, key)
            else:
                node = {"display": node.get("display") or f"{key} (not carried in this message)"}
        return {k: _logical_references(v, by_url, outer, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_logical_references(value, by_url, outer, key) for value in node]
    return node
