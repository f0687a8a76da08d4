"""A node's FHIR API answers only holders of that node's bearer tokens (metadata excepted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.test import Client

from fhirserver import auth
from nodes.models import ApiClient
from tests.factories import bearer
from tests.processes import live_database_url, wait_for


@pytest.fixture
def anonymous() -> Client:
    return Client()


def test_no_token_is_401_with_a_bearer_challenge(anonymous, store):
    response = anonymous.get("/store/fhir/MedicationRequest")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["code"] == "login"


def test_unknown_token_is_401(anonymous, store):
    response = anonymous.get("/store/fhir/MedicationRequest", headers={"Authorization": "Bearer guessed"})
    assert response.status_code == 401


def test_revoked_token_is_401(anonymous, store):
    ApiClient.objects.filter(node=store).update(revoked=True)
    assert anonymous.get("/store/fhir/MedicationRequest", headers=bearer("store")).status_code == 401


def test_a_revoked_client_is_refused_within_the_lifetime_of_the_token_cache(
    anonymous, store, settings, django_assert_max_num_queries
):
    settings.FHIR_AUTH_CACHE_SECONDS = 1
    auth.client_of(bearer("store")["Authorization"])  # looked up once, then kept for a second
    with django_assert_max_num_queries(0):
        assert auth.client_of(bearer("store")["Authorization"]).node_id == store.pk
    assert anonymous.get("/store/fhir/Patient", headers=bearer("store")).status_code == 200
    ApiClient.objects.filter(node=store).update(revoked=True)
    revoked = time.monotonic()

    wait_for(
        lambda: anonymous.get("/store/fhir/Patient", headers=bearer("store")).status_code == 401,
        timeout=5,
        interval=0.05,
        message="the revoked client to be refused",
    )
    assert time.monotonic() - revoked <= 1.5


def test_metadata_needs_no_token(anonymous, store):
    response = anonymous.get("/store/fhir/metadata")
    assert response.status_code == 200
    assert "Bearer" in response.json()["rest"][0]["security"]["description"]


def test_valid_token_is_recorded_as_used(anonymous, store):
    assert anonymous.get("/store/fhir/MedicationRequest", headers=bearer("store")).status_code == 200
    assert ApiClient.objects.get(node=store).last_used is not None


def test_auth_can_be_switched_off_for_a_closed_network(anonymous, store, settings):
    settings.FHIR_AUTH_REQUIRED = False
    assert anonymous.get("/store/fhir/MedicationRequest").status_code == 200


def test_api_token_command_issues_a_working_token_with_the_scopes_given(live_server, store):
    import requests

    def issued(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", "api_token", "store", *args],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"DATABASE_URL": live_database_url()},
        ).stdout.strip()

    def search(token: str) -> requests.Response:
        return requests.get(
            f"{live_server.url}/store/fhir/MedicationRequest",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    reader = issued("FA565", "--scopes", "system/MedicationRequest.rs")
    assert search(reader).status_code == 200
    written = requests.post(
        f"{live_server.url}/store/fhir/MedicationRequest",
        json={"resourceType": "MedicationRequest"},
        headers={"Authorization": f"Bearer {reader}", "Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert written.status_code == 403
    assert "system/MedicationRequest.c" in written.json()["issue"][0]["diagnostics"]
    refused = search(issued("FA999"))  # a new client given no scopes can do nothing
    assert refused.status_code == 403
