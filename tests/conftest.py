from __future__ import annotations

import os

import pytest

# Playwright and threaded live servers touch the ORM from non-async-safe contexts.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def gp(db):
    from tests.factories import make_node

    return make_node("gp", "prescribing", "A83008", "Hallgarth Surgery")


@pytest.fixture
def broker(db):
    from tests.factories import make_node

    return make_node("broker", "broker", "X26", "Medicines Broker")


@pytest.fixture
def gp_base(live_server, gp) -> str:
    """The gp node's FHIR base on a live server."""
    return f"{live_server.url}/gp/fhir"
