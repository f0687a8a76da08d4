from __future__ import annotations

import pytest

from exchange.models import Partner
from tests.exchange.partner import FlakyPartner
from tests.factories import make_node


@pytest.fixture
def pharmacy(transactional_db):
    return make_node("pharmacy", "dispensing", "FA565", "Station Road Pharmacy")


@pytest.fixture
def flaky(live_server):
    partner = FlakyPartner(live_server.url).start()
    yield partner
    partner.stop()


@pytest.fixture
def pharmacy_entry(gp, pharmacy, flaky) -> Partner:
    """The gp's directory entry for the pharmacy, reached through the flaky front."""
    return Partner.objects.create(
        node=gp,
        ods_code="FA565",
        name="Station Road Pharmacy",
        role=Partner.Role.PHARMACY,
        topology="peer-to-peer",
        fhir_base=f"{flaky.url}/pharmacy/fhir",
        token="pharmacy-token",
    )
