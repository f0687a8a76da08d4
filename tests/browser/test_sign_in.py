"""Signing in, as the design system asks, and the site's own error pages."""

from __future__ import annotations

from tests.browser.conftest import axe_problems, screenshot


def test_a_wrong_password_shows_the_error_summary_with_focus(browser, live_server, nodes):
    page = browser.new_page(base_url=live_server.url)
    page.goto("/accounts/login/")
    assert axe_problems(page) == []
    page.get_by_label("Username").fill("prescriber")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "There is a problem" in summary.inner_text()
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.classList.contains('nhsuk-error-summary')")
    assert axe_problems(page) == []
    screenshot(page, "sign-in-error")
    page.close()


def test_a_signed_in_prescriber_sees_their_practice_and_not_another_node(sign_in, nodes):
    page = sign_in("prescriber")
    assert page.url.endswith("/gp/patients")  # straight to where a prescriber's work starts
    assert "Hallgarth Surgery" in page.inner_text("header")
    assert "Station Road Pharmacy" not in page.inner_text("body")
    response = page.goto("/pharmacy-peer-to-peer/worklist")
    assert response.status == 404
    assert "Page not found" in page.inner_text("h1")


def test_the_content_security_policy_lets_the_screens_work_and_blocks_an_injected_script(sign_in, nodes):
    """Every browser test fails on a CSP violation (the sign_in fixture listens to the console);
    here, the positive control: a script injected into a working screen is refused, and said so."""
    page = sign_in("pharmacist-peer-to-peer")
    assert page.evaluate("typeof window.htmx") == "object"  # the site's own scripts run
    assert page.evaluate("document.body.classList.contains('js-enabled')")
    assert sign_in.blocked == []
    injected = "<img src='/static/none.png' onerror='window.ran = 1'>"
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text, timeout=10_000):
        page.evaluate(f"document.body.insertAdjacentHTML('beforeend', \"{injected}\")")
    assert page.evaluate("window.ran") is None
    assert any("inline event handler" in text for text in sign_in.blocked), sign_in.blocked
    page.close()  # nothing more from this page: then its own violation is not the screens'
    sign_in.blocked.clear()
