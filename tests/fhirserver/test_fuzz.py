"""Bad input at scale, through gunicorn as the demo runs it: mutated EPS resources, hostile
search parameters and headers. Derandomised and bounded (about 2,000 examples in all); none may
give a 500 or a page that is not an OperationOutcome, hang, or leave a partial write."""

from __future__ import annotations

import copy
import json

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.eps import example_files, medication_resources
from tests.exchange.partner import free_port
from tests.factories import make_node, stored, stored_versions
from tests.processes import Web

TOKEN = {"Authorization": "Bearer fuzz-token"}
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEEDS = [r for path in example_files() for r in medication_resources(path)][:12]
TYPES = ["MedicationRequest", "MedicationDispense", "Patient", "Subscription", "Bundle", "Observation"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup):
    """One gunicorn for the module, on the test database, as the demo runs it."""
    server = Web(free_port(), workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def web(gunicorn, transactional_db):
    """The fuzzed node, with a client holding every scope (committed: gunicorn reads it, and
    each count below sees gunicorn's writes)."""
    make_node("fuzz", "dispensing", "FZ001", "Fuzzed pharmacy")
    return gunicorn


def counts() -> tuple[int, int]:
    return stored().filter(node__slug="fuzz").count(), stored_versions().count()


def answered(response: requests.Response, before: tuple[int, int]) -> None:
    """No 500, always a FHIR answer, and a refusal changes nothing."""
    assert response.status_code < 500, response.text[:500]
    if response.content:
        assert response.headers["Content-Type"].startswith(("application/fhir+json", "application/json"))
        assert response.json()["resourceType"] in (
            "OperationOutcome",
            "Bundle",
            *TYPES,
            "CapabilityStatement",
        )
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert counts() == before, "a refused request changed what is stored"


def mutate(resource: dict, data) -> dict:
    """Replace, drop or retype one element somewhere in the resource."""
    mutated = copy.deepcopy(resource)
    node = mutated
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "drop", "wrap"]))
        if action == "drop" and isinstance(node, dict):
            del node[key]
        elif action == "wrap":
            node[key] = [child] if not isinstance(child, list) else {"value": child}
        else:
            node[key] = data.draw(json_values)
        break
    return mutated


@settings(FUZZ, max_examples=900)
@given(data=st.data())
@example(data=None)  # the 500 found by hand: contained[0].resourceType an object
def test_mutated_resources_are_answered_without_a_500_or_a_partial_write(web, data):
    if data is None:
        body = {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "contained": [{"resourceType": {}}],
        }
        kind, method = "MedicationDispense", "POST"
    else:
        seed = data.draw(st.sampled_from(SEEDS))
        body = mutate(seed, data)
        kind = seed["resourceType"]
        method = data.draw(st.sampled_from(["POST", "PUT"]))
    url = f"{web.url}/fuzz/fhir/{kind}" + ("/fuzzed-1" if method == "PUT" else "")
    if method == "PUT" and isinstance(body, dict):
        body["id"] = "fuzzed-1"
    before = counts()
    response = requests.request(
        method,
        url,
        data=json.dumps(body, allow_nan=False),
        headers=TOKEN | {"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    answered(response, before)


QUERY_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)
PARAM_NAMES = (
    st.sampled_from(
        [
            "_id",
            "status",
            "subject",
            "subject:Patient.name",
            "_include",
            "_revinclude",
            "_sort",
            "_count",
            "_elements",
            "_summary",
            "_total",
            "date",
            "identifier",
            "_lastUpdated",
            "_has:Patient:link:name",
            "patient.identifier",
            "code:not",
            "_cursor",
        ]
    )
    | QUERY_TEXT
)


@settings(FUZZ, max_examples=800)
@given(
    kind=st.sampled_from([*TYPES, "NotAType", "_history"]),
    params=st.lists(st.tuples(PARAM_NAMES, QUERY_TEXT), max_size=6),
    post=st.booleans(),
)
@example(kind="MedicationRequest", params=[("_id", ",".join(f"id-{n:04}" for n in range(2000)))], post=False)
@example(kind="MedicationRequest", params=[("_id", "\x00")], post=False)  # found on PostgreSQL: a 500
@example(kind="MedicationRequest", params=[("status", "\x00")], post=True)
def test_hostile_searches_are_answered_without_a_500(web, kind, params, post):
    before = counts()
    if post:
        response = requests.post(
            f"{web.url}/fuzz/fhir/{kind}/_search",
            data=params,
            headers=TOKEN | {"Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
    else:
        response = requests.get(f"{web.url}/fuzz/fhir/{kind}", params=params, headers=TOKEN, timeout=30)
    answered(response, before)
    if response.status_code == 414:
        assert "POST" in response.json()["issue"][0]["diagnostics"]  # the hint to use POST _search


HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
    str.strip
)


@settings(FUZZ, max_examples=300)
@given(
    content_type=st.sampled_from(
        ["application/fhir+json", "application/json", "text/plain", "", "application/xml"]
    )
    | HEADER_VALUES,
    if_match=st.none() | HEADER_VALUES,
    if_none_exist=st.none() | HEADER_VALUES,
    prefer=st.none() | HEADER_VALUES,
    body=st.sampled_from([b"", b"{", b"[]", b"null", b'{"resourceType": "Patient"}', "\u00e9".encode()]),
)
def test_hostile_headers_are_answered_without_a_500(web, content_type, if_match, if_none_exist, prefer, body):
    headers = TOKEN | {"Content-Type": content_type}
    for name, value in (("If-Match", if_match), ("If-None-Exist", if_none_exist), ("Prefer", prefer)):
        if value is not None:
            headers[name] = value
    before = counts()
    response = requests.post(f"{web.url}/fuzz/fhir/Patient", data=body, headers=headers, timeout=30)
    answered(response, before)


def test_nul_characters_are_refused_with_their_path_in_bodies_and_queries(web):
    """PostgreSQL stores no NUL: a resource or a query holding one is a 400, never a 500."""
    before = counts()
    body = {"resourceType": "Patient", "name": [{"family": "Jo\u0000nes"}]}
    answer = requests.post(
        f"{web.url}/fuzz/fhir/Patient",
        json=body,
        headers=TOKEN | {"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["expression"] == ["Patient.name[0].family"]
    answered(answer, before)
    screen = requests.get(f"{web.url}/accounts/login/", params={"next": "\x00"}, timeout=30)
    assert screen.status_code == 400
    fine = requests.post(  # the positive control: the same resource without it is stored
        f"{web.url}/fuzz/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Jones"}]},
        headers=TOKEN | {"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert fine.status_code == 201
