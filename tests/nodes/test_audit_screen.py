"""A node administrator searches the node's audit trail on a screen; nobody else sees it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from fhirserver.services import resource_create
from nodes.models import Membership
from tests.factories import make_patient
from tests.pages import text_of

NHS = "9449304130"


def member(gp, username: str, role: str) -> Client:
    user = get_user_model().objects.create_user(
        username, password="pw-123456-right", first_name=username.title()
    )
    Membership.objects.create(user=user, node=gp, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_an_administrator_finds_who_saw_a_patient_and_a_prescriber_may_not_look(gp):
    patient = make_patient(NHS)
    resource_create(node=gp, resource_type="Patient", content=patient)
    prescriber = member(gp, "prescriber", Membership.Role.PRESCRIBER)
    assert prescriber.get(f"/gp/patients/{NHS}").status_code == 200
    assert prescriber.get("/gp/patients").status_code == 200
    assert (
        prescriber.get("/gp/patients", {"nhs_number": "944 930 4130"}).status_code == 302
    )  # found: to the page
    administrator = member(gp, "gp-admin", Membership.Role.ADMINISTRATOR)

    everything = text_of(administrator.get("/gp/audit"))
    assert "Screen: patient" in everything
    assert "Screen: patients" in everything
    found = text_of(administrator.get("/gp/audit", {"nhs_number": "944 930 4130"}))
    assert "Screen: patient " in found
    assert "Prescriber (prescriber)" in found
    assert "NHS number 944 930 4130" in found
    assert found.count("Screen: patients") == 1  # the search for the patient; the bare list named none
    assert found.count("Succeeded") >= 2  # the outcome's tag, beside the form's option
    refused = text_of(administrator.get("/gp/audit", {"outcome": "4"}))
    assert "Screen: patient " not in refused

    wrong = administrator.get("/gp/audit", {"nhs_number": "1234567890"})
    assert wrong.status_code == 200
    assert "There is a problem" in text_of(wrong)
    assert "Enter a valid 10-digit NHS number" in text_of(wrong)
    assert prescriber.get("/gp/audit").status_code == 403
    assert 'href="/gp/audit"' not in prescriber.get("/gp/patients").content.decode()  # no link to it
    assert 'href="/gp/audit"' in administrator.get("/gp/patients").content.decode()
