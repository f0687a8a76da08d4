"""Every MedicationRequest and MedicationDispense of the EPS examples reads back as it was sent."""

from __future__ import annotations

import json

import pytest

from tests.eps import example_files, medication_resources

FILES = [path for path in example_files() if medication_resources(path)]


def test_the_examples_hold_the_expected_resources():
    total = sum(len(medication_resources(path)) for path in FILES)
    assert total >= 30
    assert all(
        r["resourceType"] in ("MedicationRequest", "MedicationDispense")
        for p in FILES
        for r in medication_resources(p)
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_round_trip(client, store, path):
    for sent in medication_resources(path):
        assert not any(isinstance(v, str) and v.startswith("urn:uuid:") for v in _strings(sent)), (
            "references were made logical"
        )
        response = client.post(
            f"/store/fhir/{sent['resourceType']}", json.dumps(sent), content_type="application/fhir+json"
        )
        if "17-order-invalid-checksum" in path.name:
            assert response.status_code == 422
            assert "invalid checksum" in response.json()["issue"][0]["diagnostics"]
            continue
        assert response.status_code in (200, 201), response.content
        read = client.get(f"/store/fhir/{sent['resourceType']}/{response.json()['id']}").json()
        assert _without_id_and_meta(read) == _without_id_and_meta(sent)


def _without_id_and_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node
