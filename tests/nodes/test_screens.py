"""Screens are for signed-in users, and only for the nodes they work at."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from engine.models import Connection
from fhirserver.models import Resource
from nodes.demo import NODES, USERS, demo_seed
from nodes.models import Membership, Node


@pytest.fixture
def prescriber(gp):
    user = get_user_model().objects.create_user("prescriber", password="pw-123456")
    Membership.objects.create(user=user, node=gp, role=Membership.Role.PRESCRIBER)
    return user


@pytest.fixture
def outsider(broker):
    user = get_user_model().objects.create_user("outsider", password="pw-123456")
    Membership.objects.create(user=user, node=broker, role=Membership.Role.ADMINISTRATOR)
    return user


def test_screens_need_a_sign_in(client, gp):
    response = client.get("/gp/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_sign_in_with_a_wrong_password_shows_the_error_summary(client, prescriber):
    response = client.post("/accounts/login/", {"username": "prescriber", "password": "wrong"})
    assert response.status_code == 200
    assert b"nhsuk-error-summary" in response.content
    assert b"There is a problem" in response.content


def test_a_member_sees_their_node(client, prescriber):
    client.force_login(prescriber)
    home = client.get("/", follow=True)
    assert home.redirect_chain == [("/gp/patients", 302)]  # one node: straight to its work
    assert b"Hallgarth Surgery" in home.content
    page = client.get("/gp/")
    assert page.status_code == 200
    assert b"A83008" in page.content
    assert b"/gp/fhir" in page.content


def test_a_user_from_another_node_gets_404_not_a_hint(client, prescriber, outsider):
    client.force_login(outsider)
    assert client.get("/gp/").status_code == 404
    assert b"Hallgarth Surgery" not in client.get("/", follow=True).content


def test_demo_seed_can_run_twice(db):
    demo_seed()
    demo_seed()
    assert Node.objects.count() == len(NODES) == 9
    assert Membership.objects.count() == len(USERS)
    assert {n.slug for n in Node.objects.all()} >= {"gp", "broker", "pharmacy-shared-record-events", "trust"}
    assert Node.objects.get(slug="engine").kind == Node.Kind.INTEGRATION_ENGINE
    assert Connection.objects.count() == 1  # the trust's outpatient system, connected once
    assert Resource.objects.filter(resource_type="ConceptMap").count() == 1
    assert get_user_model().objects.get(username="admin").is_superuser


def test_each_kind_of_node_has_its_own_screen(client, prescriber):
    client.force_login(prescriber)
    assert client.get("/gp/prescriptions").status_code == 200
    assert b"No prescriptions yet" in client.get("/gp/prescriptions").content
    assert client.get("/gp/worklist").status_code == 404


def test_a_request_from_elsewhere_without_an_item_id_is_listed_not_a_500(client, prescriber, gp):
    from fhirserver.services import resource_create
    from tests.factories import make_medication_request

    resource_create(
        node=gp, resource_type="MedicationRequest", content=make_medication_request(identifier=[])
    )
    client.force_login(prescriber)
    page = client.get("/gp/prescriptions")
    assert page.status_code == 200
    assert b"Paracetamol" in page.content


def test_a_screen_and_its_htmx_partial_are_told_apart_by_caches(client, prescriber):
    client.force_login(prescriber)
    page = client.get("/gp/prescriptions")
    partial = client.get("/gp/prescriptions", HTTP_HX_REQUEST="true")
    assert "HX-Request" in page["Vary"]
    assert "HX-Request" in partial["Vary"]
