"""The pharmacist in Chromium: the worklist updating itself, finding a token, dispensing,
returning, and what was dispensed; each screen scanned by axe-core."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from fhirserver import jsonio, medication
from prescribing import services as prescribing
from tests.browser.conftest import axe_problems, mark, not_reloaded, screenshot
from tests.browser.journeys import pharmacist_opens_arrival, pharmacist_starts_and_dispenses
from tests.exchange.flows import PARACETAMOL, dispenses_at, expiry_tasks_at, held_at, issue
from tests.processes import wait_for

P2P = "pharmacy-peer-to-peer"


def group_id(records) -> str:
    return medication.group_id(jsonio.loads(records[0].text))


def test_a_new_prescription_appears_on_the_worklist_and_is_dispensed(sign_in, demo):
    page = sign_in(f"pharmacist-{P2P.removeprefix('pharmacy-')}")
    page.goto(f"/{P2P}/worklist")
    mark(page)
    pid = group_id(issue(demo, P2P))
    expect(page.locator("#worklist").get_by_role("link", name=pid)).to_be_visible(timeout=20_000)
    assert not_reloaded(page)
    assert axe_problems(page) == []
    screenshot(page, "worklist")

    pharmacist_opens_arrival(page, P2P, pid)
    assert axe_problems(page) == []
    screenshot(page, "pharmacy-prescription")
    page.get_by_role("button", name="Start dispensing").click()
    page.locator("#item-table").get_by_role("link", name="Dispense Paracetamol 500mg soluble tablets").click()
    page.get_by_label("Quantity supplied").fill("0")
    page.get_by_role("button", name="Dispense", exact=True).click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("must be more than 0")
    assert page.title().startswith("Error: ")
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "id_quantity"
    assert axe_problems(page) == []
    screenshot(page, "dispense-form-error")
    assert {d["status"] for d in dispenses_at(demo[P2P])} == {"in-progress"}

    # A part supply: 40 of the 60 now, the rest owed; the prescriber's open page follows.
    page.get_by_label("Quantity supplied").fill("40")
    page.get_by_label("Note (optional)").fill("20 owed")
    page.get_by_role("button", name="Dispense", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("supplied 40 tablet in part")
    expect(page.locator("#prescription-status")).to_have_text("Owing")
    expect(page.locator("#items")).to_contain_text("Supplied 40 tablet")
    expect(page.locator("#items [data-owing]")).to_have_text("Owing 20 tablet")
    assert axe_problems(page) == []
    screenshot(page, "pharmacy-part-dispensed")
    prescriber = sign_in("prescriber")
    prescriber.goto(f"/gp/prescriptions/{pid}")
    expect(prescriber.locator("[data-status]")).to_have_text("Part dispensed", timeout=20_000)
    expect(prescriber.locator("[data-owing]")).to_have_text("20 tablet owing")
    expect(prescriber.locator("main")).to_contain_text("Supplied 40 tablet in part")
    mark(prescriber)
    screenshot(prescriber, "prescription-part-dispensed")

    page.goto(f"/{P2P}/worklist?status=owing")
    page.locator("#worklist").get_by_role("link", name=pid).click()
    page.locator("#item-table").get_by_role(
        "link", name="Supply the rest Paracetamol 500mg soluble tablets"
    ).click()
    expect(page.get_by_label("Quantity supplied")).to_have_value("20")
    page.get_by_role("button", name="Supply", exact=True).click()
    expect(page.locator("#prescription-status")).to_have_text("Dispensed")
    expect(page.locator("#items")).to_contain_text("Supplied 60 tablet")
    expect(prescriber.locator("[data-status]")).to_have_text("Dispensed", timeout=20_000)
    assert not_reloaded(prescriber)

    page.get_by_role("link", name="Dispensed", exact=True).click()
    page.get_by_label("NHS number or Prescription ID").fill("944 930 4130")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=pid)).to_have_count(2)  # each supply, 40 then 20
    assert axe_problems(page) == []
    screenshot(page, "dispensed")


def test_a_token_with_no_nomination_is_found_checked_as_typed_and_dispensed(sign_in, demo):
    records = prescribing.prescription_issue(
        node=demo["gp"], nhs_number="9449304130", items=[PARACETAMOL], pharmacy_ods=None
    )
    pid = group_id(records)
    page = sign_in("pharmacist-shared-record")
    page.goto("/pharmacy-shared-record/find")
    box = page.get_by_label("Prescription ID")
    wrong = pid[:-1] + ("A" if pid[-1] != "A" else "B")
    box.press_sequentially(wrong, delay=5)
    expect(page.locator("#id_prescription_id-check")).to_contain_text("check character")
    assert axe_problems(page) == []
    screenshot(page, "find-by-token-typing")
    box.press("Enter")  # as a scanner does
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("check character")

    page.get_by_label("Prescription ID").fill(pid)
    expect(page.locator("#id_prescription_id-check")).to_contain_text("matches")
    page.get_by_label("Prescription ID").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(pid, timeout=20_000)
    pharmacist_starts_and_dispenses(page)

    other = sign_in("pharmacist-shared-record-events")
    other.goto("/pharmacy-shared-record-events/find")
    other.get_by_label("Prescription ID").fill(pid)
    other.get_by_role("button", name="Find prescription").click()
    expect(other.locator(".nhsuk-error-summary")).to_contain_text("dispensed by another pharmacy")


def test_returning_a_prescription_asks_for_a_reason(sign_in, demo):
    page = sign_in("pharmacist-peer-to-peer")
    page.goto(f"/{P2P}/worklist")
    pid = group_id(issue(demo, P2P))
    pharmacist_opens_arrival(page, P2P, pid)
    page.get_by_role("link", name="Return the prescription").click()
    page.get_by_role("button", name="Return, not dispensed").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Select why it is not dispensed")
    assert axe_problems(page) == []
    page.get_by_label("Why is it not dispensed?").select_option("0002")
    page.get_by_role("button", name="Return, not dispensed").click()
    expect(page.locator("#prescription-status")).to_have_text("Returned")
    expect(page.locator("#items")).to_contain_text("Clinically unsuitable (0002)")
    assert [d["status"] for d in dispenses_at(demo[P2P])] == ["declined"]


def test_an_expired_prescription_says_so_on_both_sides_and_cannot_be_dispensed(sign_in, demo):
    (request,) = issue(demo, P2P)
    pid = group_id([request])
    wait_for(lambda: held_at(demo[P2P], request), message="the request at the pharmacy")
    pharmacist = sign_in(f"pharmacist-{P2P.removeprefix('pharmacy-')}")
    pharmacist.goto(f"/{P2P}/dispensing/{pid}")
    expect(pharmacist.get_by_role("button", name="Start dispensing")).to_be_visible()
    prescriber = sign_in("prescriber")
    prescriber.goto(f"/gp/prescriptions/{pid}")
    mark(prescriber)

    expiry_tasks_at(timezone.now() + timedelta(days=190))  # the beat's expiry tasks, 6 months on
    expect(prescriber.locator("[data-status]")).to_have_text("Expired", timeout=20_000)
    expect(prescriber.locator("main")).to_contain_text("Expired: not dispensed in time")
    assert not_reloaded(prescriber)
    expect(pharmacist.locator("#prescription-status")).to_have_text("Expired", timeout=20_000)
    expect(pharmacist.get_by_role("button", name="Start dispensing")).to_have_count(0)
    expect(pharmacist.locator("#item-table").get_by_role("link")).to_have_count(0)
    assert axe_problems(pharmacist) == []
    pharmacist.goto(f"/{P2P}/worklist?status=expired")
    expect(pharmacist.locator("#worklist").get_by_role("link", name=pid)).to_be_visible()
