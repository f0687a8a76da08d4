"""The audit trail on a screen: what a prescriber saw, as the GP's administrator finds it."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import axe_problems, screenshot
from tests.browser.journeys import prescriber_registers


def test_the_administrator_finds_what_the_prescriber_saw_and_did(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=None)  # the search, the registration, the patient
    prescriber.goto("/gp/prescriptions")
    page = sign_in("gp-admin")
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("NHS number").fill("944 930 4130")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#audit tbody tr")
    # The search that found no one, the registration form and its post, the patient's page.
    expect(rows.filter(has_text="Dr Asha Patel (prescriber)")).to_have_count(4)
    expect(rows.filter(has_text="Screen: patients")).to_have_count(1)
    expect(rows.filter(has_text="Screen: patient register")).to_have_count(2)
    assert axe_problems(page) == []
    screenshot(page, "audit")
    page.get_by_label("NHS number").fill("1234")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Enter a valid 10-digit NHS number")
