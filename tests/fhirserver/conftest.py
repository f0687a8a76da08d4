from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import bearer, make_node


@pytest.fixture
def store(db):
    """A node whose FHIR API is a plain store: a broker's shared record, with no prescribing or
    dispensing workflow of its own to start (those nodes' API triggers have tests of their own)."""
    return make_node("store", "broker", "Y9S7T", "Test shared record")


@pytest.fixture
def store_base(live_server, store) -> str:
    """The store node's FHIR base on a live server."""
    return f"{live_server.url}/store/fhir"


@pytest.fixture
def client() -> Client:
    """A FHIR API client holding the store node's bearer token."""
    return Client(headers=bearer("store"))
