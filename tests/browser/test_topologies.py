"""A prescription's whole journey in Chromium, over each of the five topologies: the prescriber
registers a patient and issues a two-item prescription, the pharmacist (another browser context)
sees it arrive, starts dispensing and dispenses it, and the prescriber's open page shows it
dispensed; neither page is reloaded meanwhile."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from nodes.demo import NODES, TOPOLOGIES
from tests.browser.conftest import mark, not_reloaded, screenshot
from tests.browser.journeys import (
    AMOXICILLIN,
    ARRIVAL_MS,
    PARACETAMOL,
    pharmacist_opens_arrival,
    pharmacist_starts_and_dispenses,
    prescriber_issues,
    prescriber_registers,
    prescriber_writes,
)

NAMES = {slug: name for slug, _kind, _ods, name in NODES}
ODS = {slug: ods for slug, _kind, ods, _name in NODES}


def expect_dispensed(page, count: int = 2) -> None:
    """The prescriber's page shows every item completed (the GP has learnt of the dispense)."""
    expect(page.locator("#items [data-status='completed']")).to_have_count(count, timeout=ARRIVAL_MS)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_a_two_item_prescription_is_issued_dispensed_and_seen_dispensed(sign_in, demo, topology):
    pharmacy = f"pharmacy-{topology}"
    pharmacist = sign_in(f"pharmacist-{topology}")
    pharmacist.goto(f"/{pharmacy}/worklist")
    mark(pharmacist)

    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=ODS[pharmacy])
    prescriber_writes(prescriber, [PARACETAMOL, AMOXICILLIN])
    expect(prescriber.locator("#review-pharmacy")).to_contain_text(NAMES[pharmacy])
    pid = prescriber_issues(prescriber)
    mark(prescriber)

    pharmacist_opens_arrival(pharmacist, pharmacy, pid)  # arrived on the worklist by itself
    pharmacist_starts_and_dispenses(pharmacist)

    expect_dispensed(prescriber)
    assert not_reloaded(prescriber)
    expect(prescriber.locator("#items")).to_contain_text(NAMES[pharmacy])
    expect(prescriber.get_by_role("button", name="Cancel prescription")).to_have_count(0)  # nothing to cancel
    screenshot(prescriber, f"prescription-dispensed-{topology}")
    screenshot(pharmacist, f"pharmacy-prescription-dispensed-{topology}")


def test_a_token_with_no_nomination_is_found_at_a_shared_record_pharmacy_and_dispensed(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=None)
    prescriber_writes(prescriber, [PARACETAMOL, AMOXICILLIN], route="none")
    pid = prescriber_issues(prescriber)
    prescriber.get_by_role("link", name="Print the prescription token").click()
    token_id = prescriber.locator("#prescription-id").inner_text().strip()
    assert token_id == pid
    prescriber.go_back()
    mark(prescriber)

    pharmacist = sign_in("pharmacist-shared-record")
    pharmacist.goto("/pharmacy-shared-record/find")
    pharmacist.get_by_label("Prescription ID").fill(token_id)
    pharmacist.get_by_label("Prescription ID").press("Enter")
    expect(pharmacist.get_by_role("heading", level=1)).to_have_text(pid, timeout=ARRIVAL_MS)
    pharmacist_starts_and_dispenses(pharmacist)

    expect_dispensed(prescriber)
    assert not_reloaded(prescriber)
