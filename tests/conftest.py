from __future__ import annotations

import os

import pytest

# Playwright and threaded live servers touch the ORM from non-async-safe contexts.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def gp(db):
    from nodes.models import Node

    return Node.objects.create(
        slug="gp", kind=Node.Kind.PRESCRIBING, ods_code="A83008", name="Hallgarth Surgery"
    )


@pytest.fixture
def broker(db):
    from nodes.models import Node

    return Node.objects.create(slug="broker", kind=Node.Kind.BROKER, ods_code="X26", name="Medicines Broker")


@pytest.fixture
def gp_base(live_server, gp) -> str:
    """The gp node's FHIR base on a live server."""
    return f"{live_server.url}/gp/fhir"
