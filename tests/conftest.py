from __future__ import annotations

import os

import pytest

from nodes.demo import demo_seed
from nodes.models import Node

BROWSER_LEFT_OUT = pytest.StashKey[int]()

# Playwright and threaded live servers touch the ORM from non-async-safe contexts.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items) -> None:
    """Without Chromium the browser tests cannot run: leave them out and say so in one line
    (unless DMED_REQUIRE_BROWSER, as in CI, where their browser fixture fails instead)."""
    from tests.browser.conftest import chromium_path

    if chromium_path() or os.environ.get("DMED_REQUIRE_BROWSER"):
        return
    browser = [item for item in items if item.nodeid.startswith("tests/browser/")]
    if browser:
        items[:] = [item for item in items if not item.nodeid.startswith("tests/browser/")]
        config.hook.pytest_deselected(items=browser)
        config.stash[BROWSER_LEFT_OUT] = len(browser)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    left_out = config.stash.get(BROWSER_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} browser tests skipped: Chromium is not installed (apt-get install chromium)",
            yellow=True,
        )


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """The demo seed hashes every demo user's password; a fast hasher keeps the tests quick.
    AuditEvents are written at once, inside each test's own database transaction (the buffer's
    thread has a test of its own, through gunicorn); bearer tokens are looked up every time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUDIT_FLUSH_SECONDS = 0
    # Each test's database starts anew while token names repeat: nothing is kept between them
    # (the cache has a test of its own).
    settings.FHIR_AUTH_CACHE_SECONDS = 0
    settings.ENGINE_ROUTES_CACHE_SECONDS = 0


@pytest.fixture
def gp(db):
    from tests.factories import make_node

    return make_node("gp", "prescribing", "A83008", "Hallgarth Surgery")


@pytest.fixture
def broker(db):
    from tests.factories import make_node

    return make_node("broker", "broker", "X26", "Medicines Broker")


@pytest.fixture
def nodes(live_server, monkeypatch, transactional_db) -> dict[str, Node]:
    """The demo ecosystem, its directory pointing at the live server."""
    monkeypatch.setenv("DMED_DEMO_URL", live_server.url)
    demo_seed()
    return {node.slug: node for node in Node.objects.all()}


@pytest.fixture
def worker(live_server, tmp_path):
    """A real Celery worker (with beat) delivering every node's outbox to the live server."""
    from dmed.celery import app
    from tests.processes import Worker

    app.control.purge()
    running = Worker(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def screens(client, nodes):
    """A browser session of a demo user: screens.as_user("prescriber").get("/gp/prescriptions")."""
    from django.contrib.auth import get_user_model

    class Screens:
        def as_user(self, username: str):
            client.force_login(get_user_model().objects.get(username=username))
            return client

    return Screens()
