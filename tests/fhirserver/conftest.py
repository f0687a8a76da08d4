from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import bearer


@pytest.fixture
def client() -> Client:
    """A FHIR API client holding the gp node's bearer token."""
    return Client(headers=bearer("gp"))
