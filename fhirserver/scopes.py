"""SMART scopes: what an API client may do, and what each request needs.

A client holds SMART Backend Services scopes, v2 (`system/MedicationRequest.rs`, letters from
`cruds`) or v1 (`system/Patient.read`, `system/*.write`, `system/*.*`). Every interaction needs one
letter on one resource type; a search also needs `s` on each type it reaches through a chain, an
`_include`, an `_revinclude` or `_has`. At a prescribing node `MedicationRequest` c and u are the
right to prescribe (issue, cancel); at a dispensing node `MedicationDispense` c and u the right to
dispense: no other permission exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from fhirserver.errors import FHIRError
from fhirserver.registry import is_resource_type
from fhirserver.searchparams import params_for

LETTERS = "cruds"
WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
V1 = {"read": "rs", "write": "cud", "*": LETTERS}
ALL = "*"
_SCOPE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<rights>\*|read|write|c?r?u?d?s?)$")
# Operations: the letter each needs on its resource type.
OPERATIONS = {"$events": "r", "$status": "r", "$translate": "r", "$reindex": "u"}


@dataclass(frozen=True)
class Need:
    resource_type: str  # "*": every type (system history)
    letter: str

    @property
    def words(self) -> str:
        """The scopes that would grant it, v2 first."""
        return f"system/{self.resource_type}.{self.letter} (or system/{self.resource_type}." + (
            "read)" if self.letter in "rs" else "write)"
        )


class Scopes:
    """A set of granted scopes, parsed once."""

    def __init__(self, text: str) -> None:
        self.text = " ".join(text.split())
        self._rights = _parse(self.text)

    def allows(self, need: Need) -> bool:
        if need.letter in self._rights.get(ALL, ""):
            return True
        return need.resource_type != ALL and need.letter in self._rights.get(need.resource_type, "")

    def within(self, requested: str) -> str:
        """Return the scopes of `requested` that these grant (SMART: the server may grant less)."""
        granted = []
        for scope in requested.split():
            wanted = _parse(scope)
            if wanted and all(
                self.allows(Need(kind, letter)) for kind, letters in wanted.items() for letter in letters
            ):
                granted.append(scope)
        return " ".join(granted)

    def require(self, needs: list[Need], client_name: str) -> None:
        """Refuse (403) the first need these scopes do not grant, naming the scope it lacks."""
        for need in needs:
            if not self.allows(need):
                what = "any resource" if need.resource_type == ALL else need.resource_type
                raise FHIRError(
                    403,
                    "forbidden",
                    f"This token ({client_name}) lacks the scope {need.words}, needed to "
                    f"{WORDS[need.letter]} {what}.",
                )


@cache
def _parse(text: str) -> dict[str, str]:
    rights: dict[str, str] = {}
    for scope in text.split():
        found = _SCOPE.match(scope)
        if found is None:
            continue  # not a system scope (user/, patient/, launch, openid): grants nothing here
        kind, letters = found["type"], found["rights"]
        if kind != ALL and not is_resource_type(kind):
            continue
        letters = V1.get(letters, letters)
        rights[kind] = "".join(sorted(set(rights.get(kind, "")) | set(letters), key=LETTERS.index))
    return rights


def problems(text: str) -> list[str]:
    """Return the scopes in `text` that grant nothing (for the admin's form)."""
    return [scope for scope in text.split() if not _parse(scope)]


def needs(method: str, path: str, params: list[tuple[str, str]], node=None) -> list[Need]:
    """Return what a request to `path` (relative to a FHIR base) needs; [] for one that needs
    only a token (a Bundle's entries are checked one by one, metadata is public)."""
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts or parts[0] in ("metadata", ".well-known"):
        return []
    if parts == ["_history"]:
        return [Need(ALL, "s")]
    if parts == ["$reindex"]:
        return [Need(ALL, OPERATIONS["$reindex"])]
    kind = parts[0]
    if not is_resource_type(kind):
        return []  # answered 404 by the view
    rest = parts[1:]
    if kind == "AuditEvent" and method in ("PUT", "PATCH", "DELETE"):
        raise FHIRError(405, "not-supported", "An AuditEvent is never changed or deleted.")
    if rest and rest[-1].startswith("$"):
        return [Need(kind, OPERATIONS.get(rest[-1], "u"))]
    if not rest:
        return [Need(kind, "c")] if method == "POST" else search_needs(kind, params, node)
    if rest == ["_search"]:
        return search_needs(kind, params, node)
    if rest == ["_history"]:
        return [Need(kind, "s")]
    if len(rest) == 1:
        return [Need(kind, {"PUT": "u", "PATCH": "u", "DELETE": "d"}.get(method, "r"))]
    return [Need(kind, "r")]  # an instance's history, or a version


def search_needs(resource_type: str, params: list[tuple[str, str]], node=None) -> list[Need]:
    """`s` on the type searched and on every type the search reaches (through the node's own
    parameters too)."""
    reached = {resource_type}
    for name, value in params:
        if name in ("_include", "_revinclude"):
            source, _, rest = value.partition(":")
            code, _, target = rest.partition(":")
            if name == "_revinclude":
                reached.add(source)
            elif target:
                reached.add(target)
            elif is_resource_type(source) and (param := params_for(source, node).get(code)):
                reached.update(param.targets)
        elif name.startswith("_has:"):
            reached.add(name.split(":")[1])
        elif "." in name:
            code, _, modifier = name.partition(".")[0].partition(":")
            param = params_for(resource_type, node).get(code)
            if modifier:
                reached.add(modifier)
            elif param is not None:
                reached.update(param.targets)
    return [Need(kind, "s") for kind in sorted(reached) if is_resource_type(kind)]
