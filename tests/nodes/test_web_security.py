"""The web app's defences: sign-in throttling with an administrator's unlock, a strict
Content-Security-Policy on every screen, no caching of patient data, sessions that end when idle,
and a deployment check that passes in the production settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from nodes.demo import USERS, demo_seed
from nodes.models import Membership
from tests.factories import bearer
from tests.processes import ROOT


@pytest.fixture
def prescriber(gp):
    user = get_user_model().objects.create_user("prescriber", password="pw-123456-right")
    Membership.objects.create(user=user, node=gp, role=Membership.Role.PRESCRIBER)
    return user


def sign_in(client: Client, password: str, username: str = "prescriber"):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_username_until_an_administrator_unlocks_it(
    client, prescriber, admin_client
):
    for _ in range(4):
        assert sign_in(client, "wrong").status_code == 200  # the error summary, not yet locked
    locked = sign_in(client, "wrong")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "This account is locked after 5 wrong passwords" in text
    assert "for 15 minutes" in text
    assert sign_in(client, "pw-123456-right").status_code == 429  # even the right one, while locked
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")  # the username is locked wherever it is tried from
    assert sign_in(elsewhere, "pw-123456-right").status_code == 429

    from axes.models import AccessAttempt

    attempts = AccessAttempt.objects.filter(username="prescriber")
    assert attempts.exists()
    changelist = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )
    assert changelist.status_code == 302
    assert sign_in(client, "pw-123456-right").status_code == 302  # unlocked: signed in


def test_every_screen_has_a_strict_content_security_policy_and_patient_pages_are_not_stored(
    transactional_db, settings
):
    demo_seed()
    pages = {"/accounts/login/": Client()}
    for username, slug, _role, _name in USERS:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        pages[f"/{slug}/"] = client
        start = client.get("/", follow=True)
        pages[start.redirect_chain[-1][0]] = client
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    pages["/admin/"] = admin
    pages["/admin/nodes/apiclient/"] = admin
    assert len(pages) > 10
    for url, client in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        policy = dict(
            part.strip().split(" ", 1)
            for part in response["Content-Security-Policy"].split(";")
            if part.strip()
        )
        assert policy["script-src"] == "'self'", url
        assert policy["style-src"] == "'self'", url
        assert "unsafe" not in response["Content-Security-Policy"], url
        assert "no-store" in response["Cache-Control"], url


def test_fhir_answers_are_not_stored_and_static_files_are(client, gp):
    answer = Client(headers=bearer("gp")).get("/gp/fhir/MedicationRequest")
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    from django.contrib.staticfiles import finders

    assert finders.find("dmed/dmed.css")


def test_the_api_passes_by_the_screens_middleware_and_the_screens_do_not(client, gp, prescriber):
    api = Client(headers=bearer("gp"))
    for answer in (api.get("/gp/fhir/MedicationRequest"), api.get("/gp/fhir/Nothing/1")):
        assert answer["Content-Type"].startswith("application/fhir+json")
        assert answer["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "HX-Request" not in answer.get("Vary", "")
        assert not answer.cookies  # no session, no CSRF cookie
        assert answer["X-Frame-Options"] == "DENY"
        assert answer["X-Content-Type-Options"] == "nosniff"
    assert api.get("/gp/fhir/Nothing/1").status_code == 404
    assert sign_in(client, "pw-123456-right").status_code == 302
    page = client.get("/gp/prescriptions")
    assert page.status_code == 200
    assert "script-src" in page["Content-Security-Policy"]
    assert "HX-Request" in page["Vary"]
    assert page.wsgi_request.user.username == "prescriber"


def test_a_session_idle_for_longer_than_the_limit_is_signed_out_and_a_poll_keeps_nothing_alive(
    client, prescriber, settings
):
    settings.SESSION_IDLE_SECONDS = 60
    client.force_login(prescriber)
    assert client.get("/gp/patients").status_code == 200
    session = client.session
    session["active"] -= 50
    session.save()
    # A screen's own poll 50 s later does not count as a view...
    assert client.get("/gp/patients", HTTP_HX_REQUEST="true").status_code == 200
    assert client.session["active"] == session["active"]
    session = client.session
    session["active"] -= 20  # ...so 70 s after the last view the session has ended
    session.save()
    poll = client.get("/gp/patients", HTTP_HX_REQUEST="true")
    assert poll.status_code == 204
    assert poll["HX-Redirect"].startswith("/accounts/login/")
    assert client.get("/gp/patients").status_code == 302  # signed out


def test_the_deployment_check_passes_in_the_production_settings():
    test_only = {"DJANGO_ALLOW_ASYNC_UNSAFE"}  # the browser tests' switch, never set in production
    base = {name: value for name, value in os.environ.items() if name not in test_only}
    env = base | {
        "SECURE_COOKIES": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "ALLOWED_HOSTS": "dmed.example",
        "DEBUG": "false",
    }
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout
    loose = subprocess.run(  # the positive control: the demo's plain-HTTP settings are reported
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=base | {"SECURE_COOKIES": "false"},
        capture_output=True,
        text=True,
    )
    assert loose.returncode != 0
    assert "SESSION_COOKIE_SECURE" in loose.stdout + loose.stderr
