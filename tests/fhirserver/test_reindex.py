"""`manage.py reindex`: resources stored before a version that indexes more are found by the new
parameters once indexed again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from fhirserver.models import QuantityIndex, StringIndex, TokenIndex
from fhirserver.search import matching
from fhirserver.services import resource_create


def test_reindex_makes_what_was_stored_before_findable(store):
    observation = resource_create(
        node=store,
        resource_type="Observation",
        content={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Glucose"},
            "valueQuantity": {"value": 6.3, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        },
    ).resource
    other = resource_create(
        node=store,
        resource_type="Observation",
        content={"resourceType": "Observation", "status": "final", "code": {"text": "Sodium"}},
    ).resource
    for table in (QuantityIndex, StringIndex, TokenIndex):  # as an older version left them
        table.objects.filter(resource__in=[observation, other]).delete()

    def found() -> set[str]:
        return set(
            matching(
                node=store, resource_type="Observation", params=[("value-quantity", "6.3")], strict=True
            ).values_list("logical_id", flat=True)
        )

    assert found() == set()
    out = StringIO()
    call_command("reindex", "--node", "store", "--type", "Observation", stdout=out)
    assert found() == {observation.logical_id}
    assert "2 resources indexed again" in out.getvalue()
    assert (
        matching(node=store, resource_type="Observation", params=[("status", "final")], strict=True).count()
        == 2
    )


def test_reindex_refuses_an_unknown_node_or_type(store):
    with pytest.raises(CommandError, match="no node"):
        call_command("reindex", "--node", "nowhere")
    with pytest.raises(CommandError, match="not a resource type"):
        call_command("reindex", "--type", "Nonsense")
