"""Search values extracted from a resource at write time."""

from __future__ import annotations

from fhirserver.errors import FHIRError

MAX_TOKEN_LENGTH = 255


def token_values(resource_type: str, content: dict) -> list[tuple[str, str, str]]:
    """Return the (param, system, code) tokens of a resource: its business identifiers."""
    identifiers = content.get("identifier")
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    tokens: set[tuple[str, str, str]] = set()
    for index, identifier in enumerate(identifiers or []):
        if not isinstance(identifier, dict) or not identifier.get("value"):
            continue
        system, value = identifier.get("system") or "", str(identifier["value"])
        if len(system) > MAX_TOKEN_LENGTH or len(value) > MAX_TOKEN_LENGTH:
            raise FHIRError(
                400,
                "too-long",
                f"Identifier system and value may each be at most {MAX_TOKEN_LENGTH} characters.",
                [f"{resource_type}.identifier[{index}]"],
            )
        tokens.add(("identifier", system, value))
    return sorted(tokens)
