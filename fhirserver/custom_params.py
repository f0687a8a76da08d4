"""A node's own search parameters: SearchParameter resources written to its FHIR API.

An active one is checked as it is written (its expression must compile, its base and type make
sense), kept as a row beside the resource, and used for every write and search at the node from
then on: the node's search_revision changes with it, and each process keeps the node's
parameters by that revision, so all of them see the change with the next node they load.
Resources written before it are found by it once `$reindex` has indexed them again; until then
a search by it says so."""

from __future__ import annotations

import re
import uuid

from django.db.models import Q
from django.utils import timezone

from fhirserver import fhirpath
from fhirserver.errors import FHIRError
from fhirserver.indexing import TABLES, text_param
from fhirserver.models import CustomSearchParameter, Resource
from fhirserver.registry import is_resource_type
from fhirserver.searchparams import INDEXED_TYPES, SearchParam, param_from, params_for
from nodes.models import Node

# A code is what a client types in a query: no modifiers, chains or prefixes in it.
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CUSTOM_TYPES = tuple(kind for kind in INDEXED_TYPES if kind != "composite")
_CACHE: dict[tuple[int, str], dict[str, dict[str, SearchParam]]] = {}
_CACHE_SIZE = 256


def custom_params(node: Node) -> dict[str, dict[str, SearchParam]]:
    """Return the node's own parameters, by resource type and code."""
    if not node.search_revision:
        return {}
    key = (node.pk, node.search_revision)
    found = _CACHE.get(key)
    if found is None:
        found = {}
        for row in CustomSearchParameter.objects.filter(node_id=node.pk):
            for resource_type in row.base:
                param = param_from(_definition(row), resource_type, pending=not row.complete)
                if param is not None:
                    found.setdefault(resource_type, {})[param.code] = param
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = found
    return found


def _definition(row: CustomSearchParameter) -> dict:
    return {
        "url": row.url,
        "code": row.code,
        "base": row.base,
        "type": row.type,
        "expression": row.expression,
        "target": row.target,
        "description": row.description,
    }


def search_parameter_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Check a SearchParameter written to the node; an active one is used from now on, any
    other status (or a delete) stops its use."""
    row = CustomSearchParameter.objects.filter(resource=record).first()
    if content.get("status") != "active":
        if row is not None:
            _forget(row)
            revise(node)
        return
    definition = _checked(node, record, content)
    fields = {key: definition[key] for key in ("url", "code", "base", "type", "expression", "target")}
    fields["description"] = definition["description"]
    if row is None or any(
        getattr(row, key) != fields[key] for key in ("code", "base", "type", "expression", "target")
    ):
        if row is not None:
            _forget(row)
        # Resources written before now lack it: complete at once only when there are none.
        older = Resource.objects.filter(node=node, resource_type__in=fields["base"], deleted=False)
        CustomSearchParameter.objects.create(
            node=node, resource=record, changed=timezone.now(), complete=not older.exists(), **fields
        )
    else:
        CustomSearchParameter.objects.filter(pk=row.pk).update(description=fields["description"])
    revise(node)


def search_parameter_deleted(*, node: Node, record: Resource) -> None:
    """A deleted SearchParameter is no longer used, and its index rows go."""
    row = CustomSearchParameter.objects.filter(resource=record).first()
    if row is not None:
        _forget(row)
        revise(node)


def _forget(row: CustomSearchParameter) -> None:
    """Stop using a parameter: its row and the index rows it made go."""
    for model in TABLES:
        model.objects.filter(node_id=row.node_id, resource_type__in=row.base).filter(
            Q(param=row.code) | Q(param=text_param(row.code))
        ).delete()
    row.delete()


def revise(node: Node) -> None:
    """Give the node a new search revision, so every process loads its parameters again."""
    node.search_revision = uuid.uuid4().hex
    Node.objects.filter(pk=node.pk).update(search_revision=node.search_revision)


def _checked(node: Node, record: Resource, content: dict) -> dict:
    """Return the definition of an active SearchParameter, or refuse it (422, with the path)."""
    code = content.get("code") or ""
    if not CODE.match(code):
        raise _refused(
            "The code is what a search names: letters, digits, - and _, not starting with _ or -, "
            "at most 64 characters.",
            "SearchParameter.code",
        )
    kind = content.get("type")
    if kind not in CUSTOM_TYPES:
        raise _refused(
            f"A search parameter of this server is of type {', '.join(CUSTOM_TYPES)}, not {kind!r}.",
            "SearchParameter.type",
        )
    bases = content.get("base") or []
    for index, base in enumerate(bases):
        if not is_resource_type(base):
            raise _refused(f"{base!r} is not a resource type stored here.", f"SearchParameter.base[{index}]")
    for index, target in enumerate(content.get("target") or []):
        if not is_resource_type(target):
            raise _refused(
                f"{target!r} is not a resource type stored here.", f"SearchParameter.target[{index}]"
            )
    expression = content.get("expression") or ""
    definition = {
        "url": content.get("url") or "",
        "code": code,
        "base": bases,
        "type": kind,
        "expression": expression,
        "target": content.get("target") or [],
        "description": content.get("description") or "",
    }
    for index, base in enumerate(bases):
        theirs = params_for(base, node).get(code)
        if theirs is not None and theirs.definition != definition["url"]:
            raise _refused(
                f"{base} already has a search parameter {code!r} ({theirs.definition}).",
                "SearchParameter.code",
            )
        param = param_from(definition, base)
        if param is None:
            raise _refused(
                f"The expression names nothing of {base}: start each part with the type, "
                f"e.g. {base}.identifier.",
                "SearchParameter.expression",
            )
        wrong = fhirpath.problem(expression, base)
        if wrong:
            raise _refused(f"The expression does not work: {wrong}.", "SearchParameter.expression")
        if index != bases.index(base):
            raise _refused(f"{base} is named twice.", f"SearchParameter.base[{index}]")
    return definition


def _refused(diagnostics: str, path: str) -> FHIRError:
    return FHIRError(422, "invalid", diagnostics, [path])
