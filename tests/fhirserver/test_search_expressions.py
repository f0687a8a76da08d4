"""A search parameter's FHIRPath that is a plain path of elements is walked over the JSON, not
evaluated by fhirpathpy (a fraction of the cost at every write). The walk must find what
fhirpathpy finds, on every such path of every stored type: checked here over every resource of
the EPS examples and one built for each standard parameter."""

from __future__ import annotations

import functools
import json

import fhirpathpy

from fhirserver.jsonio import dumps, loads
from fhirserver.registry import RESOURCE_TYPES
from fhirserver.searchparams import _RESOLVE_IS, MODEL, _balanced, _union_parts, _walker, params_for
from tests.eps import example_files
from tests.fhirserver.test_standard_params import HIT, built, xpaths


def resources_in(node: object):
    if isinstance(node, dict):
        if node.get("resourceType") in RESOURCE_TYPES and node.get("resourceType") != "Bundle":
            yield node
        for value in node.values():
            yield from resources_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from resources_in(value)


def samples() -> list[dict]:
    found = [r for path in example_files() for r in resources_in(loads(path.read_text()))]
    for resource_type in RESOURCE_TYPES:
        for code, param in params_for(resource_type).items():
            for xpath in xpaths(resource_type, code)[:1]:
                made = built(resource_type, param, xpath, HIT)
                if made is not None:
                    found.append(loads(dumps(made[0])))
    return found


@functools.cache
def evaluator(expression: str):
    return fhirpathpy.compile(expression, model=MODEL)


def walkable_parts(resource_type: str):
    for param in params_for(resource_type).values():
        for part in _union_parts(param.expression):
            inner = (
                part[1:-1] if part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]) else part
            )
            match = _RESOLVE_IS.search(inner)
            inner = inner[: match.start()] if match else inner
            walk = _walker(inner)
            if walk is not None:
                yield inner, walk


def as_text(values: list) -> list[str]:
    # fhirpathpy gives nothing for an element that holds only an extension; nor does a search.
    kept = [v for v in values if not (isinstance(v, dict) and set(v) == {"extension"})]
    return sorted(json.dumps(v, sort_keys=True, default=str) for v in kept)


def test_the_walk_finds_what_fhirpath_finds():
    checked, differ = 0, []
    for resource in samples():
        for expression, walk in walkable_parts(resource["resourceType"]):
            expected = evaluator(expression)(resource)
            checked += 1
            if as_text(walk(resource)) != as_text(expected):
                differ.append((expression, resource.get("id")))
    assert checked > 30_000  # the control: the walk is used on most parameters
    assert differ == []
