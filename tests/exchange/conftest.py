from __future__ import annotations

import pytest
import requests

from exchange.models import Partner
from tests.exchange.partner import FlakyPartner
from tests.exchange.receiver import Receiver
from tests.factories import bearer, make_node


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


@pytest.fixture
def receiver():
    """An endpoint that keeps what is sent to it (a subscriber's)."""
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def api(live_server, transactional_db, broker):
    """POST, PUT and GET at the broker's FHIR API, with plain JSON as any HTTP client sends it."""

    class Api:
        base = f"{live_server.url}/broker/fhir"

        def send(self, method: str, path: str, body: dict | None = None, **kw) -> requests.Response:
            return requests.request(
                method, f"{self.base}/{path}", json=body, headers=bearer("broker"), timeout=10, **kw
            )

        def read(self, path: str) -> dict:
            answer = self.send("GET", path)
            assert answer.status_code == 200, answer.text
            return answer.json()

        def made(self, body: dict) -> dict:
            answer = self.send("POST", body["resourceType"], body)
            assert answer.status_code == 201, answer.text
            return answer.json()

    return Api()
