"""Repeat dispensing in Chromium: the prescriber writes an eRD prescription, the pharmacist
dispenses issue 1, the beat's release task (called with a later moment) brings issue 2 to the
open worklist; a schedule 2 drug is refused for eRD with the NHS error summary."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from fhirserver.models import Resource
from prescribing.repeats import repeats_release
from tests.browser.conftest import axe_problems, mark, not_reloaded, screenshot
from tests.browser.journeys import (
    ARRIVAL_MS,
    PARACETAMOL,
    pharmacist_opens_arrival,
    pharmacist_starts_and_dispenses,
    prescriber_adds_item,
    prescriber_issues,
    prescriber_registers,
)

P2P, P2P_ODS = "pharmacy-peer-to-peer", "FA565"
MORPHINE = ("morph", "Morphine 15mg modified-release tablets", "One tablet twice a day", "56")


def writes_repeat_dispensing(page, item, *, issues: str = "3", days: str = "28") -> None:
    """From the patient's page: a repeat dispensing prescription of one item, to the nominated pharmacy."""
    page.get_by_role("button", name="New prescription").click()
    prescriber_adds_item(page, item)
    page.get_by_role("radio", name=re.compile("^Repeat dispensing")).check()
    page.get_by_label("Number of issues").fill(issues)
    page.get_by_label("Days between issues").fill(days)
    page.get_by_role("radio", name=re.compile("nominated")).check()
    page.get_by_role("button", name="Continue to review").click()


def test_a_repeat_dispensing_prescription_issue_by_issue(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=P2P_ODS)
    writes_repeat_dispensing(prescriber, PARACETAMOL)
    expect(prescriber.locator("#review-repeat")).to_have_text("3 issues, 28 days apart, valid for 12 months")
    pid = prescriber_issues(prescriber)
    expect(prescriber.locator("[data-issue]")).to_have_text("Issue 1 of 3")
    expect(prescriber.locator("[data-next-due]")).to_have_text(
        "The next issue is due once this one is dispensed"
    )

    pharmacist = sign_in(f"pharmacist-{P2P.removeprefix('pharmacy-')}")
    pharmacist.goto(f"/{P2P}/worklist")
    pharmacist_opens_arrival(pharmacist, P2P, pid)
    expect(pharmacist.locator("[data-issue]")).to_have_text("Issue 1 of 3")
    pharmacist_starts_and_dispenses(pharmacist)
    expect(prescriber.locator("[data-next-due]")).to_contain_text("Next issue due", timeout=ARRIVAL_MS)

    pharmacist.goto(f"/{P2P}/worklist")
    mark(pharmacist)
    assert repeats_release(node=demo["gp"], now=timezone.now() + timedelta(days=22)) == 1
    row = pharmacist.locator("#worklist").get_by_role("row").filter(has_text=pid)
    expect(row).to_contain_text("issue 2 of 3", timeout=ARRIVAL_MS)
    assert not_reloaded(pharmacist)
    assert axe_problems(pharmacist) == []
    screenshot(pharmacist, "worklist-repeat-issue")
    expect(prescriber.locator("[data-issue]")).to_have_text(
        ["Issue 1 of 3", "Issue 2 of 3"], timeout=ARRIVAL_MS
    )
    assert axe_problems(prescriber) == []
    screenshot(prescriber, "prescription-repeat-dispensing")


def test_a_schedule_2_drug_cannot_be_repeat_dispensed(sign_in, demo):
    page = sign_in("prescriber")
    prescriber_registers(page, pharmacy=P2P_ODS)
    writes_repeat_dispensing(page, MORPHINE)
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text(
        "schedule 2 controlled drug: it cannot be prescribed for repeat dispensing"
    )
    assert page.title().startswith("Error: ")
    assert axe_problems(page) == []
    # The positive control: the same medicine as an acute prescription goes on to review.
    page.get_by_role("radio", name=re.compile("^Acute")).check()
    page.get_by_role("button", name="Continue to review").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the prescription before you issue it")
    assert not Resource.objects.filter(node=demo["gp"], resource_type="MedicationRequest").exists()
