"""Browser tests: Debian's Chromium driven by Playwright, against the one live server, with one
Celery worker and one browser for the whole package (each test gets fresh browser contexts)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import Worker

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    """Return Chromium's path (DMED_CHROMIUM, else the Debian package's), or None."""
    candidate = os.environ.get("DMED_CHROMIUM") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


@pytest.fixture(scope="package")
def browser():
    path = chromium_path()
    if path is None:  # only with DMED_REQUIRE_BROWSER: otherwise these tests are left out
        pytest.fail("Chromium is not installed, and DMED_REQUIRE_BROWSER says the browser tests must run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        running = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield running
        running.close()


@pytest.fixture(scope="package")
def browser_worker(live_server, django_db_setup, django_db_blocker, tmp_path_factory):
    """One real Celery worker (with beat) for every browser test, on the test database."""
    from dmed.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
        running = Worker(tmp_path_factory.mktemp("browser-worker"), POLL_TICK_SECONDS="0.5").start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _quick_screens(settings):
    """Screens poll for news every half second in tests (seconds in production)."""
    settings.SCREEN_POLL_MILLISECONDS = 500


@pytest.fixture
def catalogue(transactional_db):
    from medicines.services import catalogue_demo_seed

    catalogue_demo_seed()


@pytest.fixture
def demo(nodes, catalogue, browser_worker, live_server):
    """The demo ecosystem with its catalogue, a worker delivering its messages."""
    return nodes


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so fixtures can tell a failed test at teardown."""
    outcome = yield
    setattr(item, f"report_{call.when}", outcome.get_result())


@pytest.fixture
def sign_in(browser, live_server, transactional_db, request):
    """Open a fresh browser context signed in as a demo user: sign_in("prescriber") -> page
    (context options, such as device_scale_factor, may follow the username). Its pages close
    before the database is emptied after the test: a screen still polling then would take locks
    the emptying waits for (a deadlock on PostgreSQL)."""
    from nodes.demo import demo_password

    contexts = []
    blocked: list[str] = []  # what the Content-Security-Policy refused, on any page of the test

    def open_as(username: str, **options):
        options = {"viewport": {"width": 1200, "height": 900}} | options
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        context.on(
            "console",
            lambda message: (
                blocked.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(demo_password())
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"^(?!.*accounts/login).*$"))
        return page

    open_as.blocked = blocked
    yield open_as
    failed = getattr(request.node, "report_call", None)
    for number, context in enumerate(contexts):
        if failed is not None and failed.failed:  # what each browser showed when the test failed
            for page in context.pages:
                screenshot(page, f"failed-{request.node.name}-{number}")
        context.close()
    if failed is not None and not failed.failed:
        assert blocked == [], "the Content-Security-Policy refused something on these screens"


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under var/screenshots and return its path."""
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_problems(page) -> list[str]:
    """Return axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def mark(page) -> None:
    """Set a marker on the page's window: still there later means the page was not reloaded."""
    page.evaluate("window.dmedMarker = 'not reloaded'")


def not_reloaded(page) -> bool:
    return page.evaluate("window.dmedMarker") == "not reloaded"
