"""Which node slugs are integration engines (whose routes relay) is kept by each process for a
few seconds, as it is asked on every request to any node."""

from __future__ import annotations

import time

from django.urls import resolve

from engine.converters import engine_slugs
from nodes.models import Node
from tests.factories import make_node
from tests.processes import wait_for


def test_an_engine_added_is_routed_as_one_within_the_cache_lifetime(db, settings, django_assert_num_queries):
    settings.ENGINE_ROUTES_CACHE_SECONDS = 1
    make_node("later", "broker", "Y7L4T", "Not an engine yet")
    assert resolve("/later/fhir/Patient").func.view_class.__module__ == "fhirserver.views"
    with django_assert_num_queries(0):  # kept: asked again without a query
        assert "later" not in engine_slugs()
    Node.objects.filter(slug="later").update(kind=Node.Kind.INTEGRATION_ENGINE)
    changed = time.monotonic()

    wait_for(
        lambda: resolve("/later/fhir/Patient").func.view_class.__module__ == "engine.views",
        timeout=5,
        interval=0.05,
        message="the engine's relay to serve its FHIR base",
    )
    assert time.monotonic() - changed <= 1.5
