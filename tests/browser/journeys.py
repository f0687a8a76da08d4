"""What a pharmacist and a prescriber do in the browser, step by step, for the browser tests."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

# Arrivals go through the outbox and a worker: allow for a retry or a poll.
ARRIVAL_MS = 20_000


def pharmacist_opens_arrival(page: Page, pharmacy: str, prescription_id: str) -> None:
    """On the worklist (already open), wait for the prescription to appear, then open it."""
    link = page.locator("#worklist").get_by_role("link", name=prescription_id)
    expect(link).to_be_visible(timeout=ARRIVAL_MS)
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(prescription_id)


def pharmacist_starts_and_dispenses(page: Page) -> None:
    """On the pharmacy's prescription page: start dispensing, then dispense every item as prescribed."""
    page.get_by_role("button", name="Start dispensing").click()
    expect(page.get_by_role("status")).to_contain_text("Dispensing started")
    expect(page.locator("#prescription-status")).to_have_text("With dispenser")
    dispense = page.locator("#item-table").get_by_role("link", name=re.compile(r"^Dispense "))
    while dispense.count():
        dispense.first.click()
        page.get_by_role("button", name="Dispense", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("dispensed")
    expect(page.locator("#prescription-status")).to_have_text("Dispensed")
