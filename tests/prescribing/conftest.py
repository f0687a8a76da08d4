from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from fhirserver import jsonio
from fhirserver.models import Resource
from medicines.services import catalogue_demo_seed
from nodes.models import Membership
from tests.pages import text_of

NHS_NUMBER = "9449304130"
PARACETAMOL = "322237000"  # Paracetamol 500mg soluble tablets (VMP), in tablets
AMOXICILLIN = "39732311000001104"  # Amoxicillin 250mg capsules (VMP), in capsules


def stored(node, resource_type: str) -> list[dict]:
    records = Resource.objects.filter(node=node, resource_type=resource_type, deleted=False).order_by("pk")
    return [jsonio.loads(record.text) for record in records]


@pytest.fixture
def catalogue(nodes) -> None:
    catalogue_demo_seed()


@pytest.fixture
def prescriber(screens, catalogue) -> Client:
    return screens.as_user("prescriber")


@pytest.fixture
def gp(nodes):
    return nodes["gp"]


@pytest.fixture
def gp_administrator(gp) -> Client:
    """A second browser, signed in as a node administrator at the GP (sees, may not act)."""
    user = get_user_model().objects.create_user("gp-admin-2", password="pw-123456", first_name="Lee")
    Membership.objects.create(user=user, node=gp, role=Membership.Role.ADMINISTRATOR)
    client = Client()
    client.force_login(user)
    return client


class Prescriber:
    """The prescriber's steps through the screens, as the browser posts them."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def register(self, nhs_number: str = NHS_NUMBER, pharmacy: str = "FA565", **overrides):
        data = {
            "nhs_number": nhs_number,
            "given": "Jane",
            "family": "Smith",
            "day": "15",
            "month": "3",
            "year": "1984",
            "gender": "female",
            "pharmacy": pharmacy,
            **overrides,
        }
        return self.client.post("/gp/patients/new", data)

    def start(self, nhs_number: str = NHS_NUMBER) -> str:
        """Press New prescription; return the draft's URL."""
        response = self.client.post(f"/gp/patients/{nhs_number}/prescribe")
        assert response.status_code == 302, response
        return response["Location"]

    def add(self, draft: str, code: str = PARACETAMOL, quantity: str = "60", **overrides):
        data = {
            "action": "add",
            "q": "paracetamol",
            "medicine": code,
            "dosage": "Two four times a day",
            "quantity": quantity,
            "days_supply": "7",
            **overrides,
        }
        return self.client.post(draft, data)

    def route(self, draft: str, route: str = "nominated", pharmacy: str = "", course: str = "acute"):
        return self.client.post(
            draft, {"action": "review", "course": course, "route": route, "pharmacy": pharmacy}
        )

    def issue(self, draft: str, client: Client | None = None):
        return (client or self.client).post(f"{draft}/review")

    def prescribe(
        self, codes=(PARACETAMOL, AMOXICILLIN), route: str = "nominated", pharmacy: str = ""
    ) -> str:
        """Write and issue a prescription for the registered patient; return its page's URL."""
        draft = self.start()
        for code in codes:
            assert self.add(draft, code).status_code == 302
        assert self.route(draft, route, pharmacy).status_code == 302
        issued = self.issue(draft)
        assert issued.status_code == 302, text_of(issued)
        return issued["Location"]


@pytest.fixture
def steps(prescriber) -> Prescriber:
    return Prescriber(prescriber)


@pytest.fixture
def registered(steps) -> Prescriber:
    """The prescriber, with a patient registered who nominates the peer-to-peer pharmacy."""
    assert steps.register().status_code == 302
    return steps
