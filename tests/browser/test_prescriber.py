"""The prescriber in Chromium: cancelling (accepted, and refused once dispensed), re-nominating a
returned prescription, form errors that store nothing, the printed token's codes, who may act,
and an issue form sent twice; each screen scanned by axe-core."""

from __future__ import annotations

import io
import re

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from exchange.models import Partner
from fhirserver.models import Resource
from tests.browser.conftest import axe_problems, mark, not_reloaded, screenshot
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

P2P, P2P_ODS = "pharmacy-peer-to-peer", "FA565"
HOSTED, HOSTED_ODS = "pharmacy-dispenser-hosted", "VNE51"


def requests_at_gp(demo) -> int:
    return Resource.objects.filter(node=demo["gp"], resource_type="MedicationRequest").count()


def csrf_token(page) -> str:
    """The CSRF token the page's forms carry (the body's hx-headers), to post as the browser would."""
    return page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")


def statuses(page) -> list[str]:
    return page.locator("#items [data-status]").evaluate_all("els => els.map(e => e.dataset.status)")


def test_a_cancellation_before_dispensing_is_seen_by_prescriber_and_pharmacist(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=P2P_ODS)
    assert axe_problems(prescriber) == []
    screenshot(prescriber, "patient")
    prescriber_writes(prescriber, [PARACETAMOL, AMOXICILLIN])
    assert axe_problems(prescriber) == []
    screenshot(prescriber, "review")
    pid = prescriber_issues(prescriber)

    pharmacist = sign_in("pharmacist-peer-to-peer")
    pharmacist.goto(f"/{P2P}/worklist")
    pharmacist_opens_arrival(pharmacist, P2P, pid)
    mark(pharmacist)

    prescriber.get_by_label("What to cancel").select_option(label="The whole prescription")
    prescriber.get_by_label("Reason for cancelling").select_option("0005")
    prescriber.get_by_role("button", name="Cancel prescription").click()
    mark(prescriber)
    expect(prescriber.locator("#items [data-status='cancelled']")).to_have_count(2, timeout=ARRIVAL_MS)
    expect(prescriber.locator("#items")).to_contain_text("At the patient's request")
    assert not_reloaded(prescriber)
    assert axe_problems(prescriber) == []
    screenshot(prescriber, "prescription-cancelled")

    expect(pharmacist.locator("#items")).to_contain_text("The prescriber has cancelled", timeout=ARRIVAL_MS)
    expect(pharmacist.get_by_role("button", name="Start dispensing")).to_have_count(0)
    assert not_reloaded(pharmacist)


def test_a_cancellation_after_dispensing_is_refused_and_the_prescriber_is_told_why(sign_in, demo):
    # The GP polls this pharmacy rarely here, so it still thinks the item active when it cancels.
    Partner.objects.filter(node=demo["gp"], ods_code=HOSTED_ODS).update(poll_interval=3600)
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=HOSTED_ODS)
    prescriber_writes(prescriber, [PARACETAMOL])
    pid = prescriber_issues(prescriber)

    pharmacist = sign_in("pharmacist-dispenser-hosted")
    pharmacist.goto(f"/{HOSTED}/worklist")
    pharmacist_opens_arrival(pharmacist, HOSTED, pid)
    pharmacist_starts_and_dispenses(pharmacist)

    prescriber.get_by_label("Reason for cancelling").select_option("0001")
    prescriber.get_by_role("button", name="Cancel prescription").click()
    mark(prescriber)
    expect(prescriber.locator("#items")).to_contain_text("Cancellation refused: R-0004", timeout=ARRIVAL_MS)
    assert not_reloaded(prescriber)
    assert statuses(prescriber) == ["active"] or statuses(prescriber) == ["completed"]
    screenshot(prescriber, "prescription-cancellation-refused")


def test_a_returned_prescription_is_renominated_to_another_pharmacy_which_dispenses_it(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=P2P_ODS)
    prescriber_writes(prescriber, [PARACETAMOL])
    pid = prescriber_issues(prescriber)
    mark(prescriber)

    pharmacist = sign_in("pharmacist-peer-to-peer")
    pharmacist.goto(f"/{P2P}/worklist")
    pharmacist_opens_arrival(pharmacist, P2P, pid)
    pharmacist.get_by_role("link", name="Return the prescription").click()
    pharmacist.get_by_label("Why is it not dispensed?").select_option("0002")
    pharmacist.get_by_role("button", name="Return, not dispensed").click()
    expect(pharmacist.locator("#prescription-status")).to_have_text("Returned")

    expect(prescriber.locator("#items")).to_contain_text("Returned", timeout=ARRIVAL_MS)
    assert not_reloaded(prescriber)
    prescriber.locator("#items").get_by_role("link", name=re.compile("another pharmacy")).click()
    prescriber.get_by_label("Pharmacy", exact=True).select_option(value=P2P_ODS)
    prescriber.get_by_role("button", name="Send to this pharmacy").click()
    expect(prescriber.locator(".nhsuk-error-summary")).to_contain_text("declined")  # not back to it

    other = sign_in("pharmacist-dispenser-hosted")
    other.goto(f"/{HOSTED}/worklist")
    prescriber.get_by_label("Pharmacy", exact=True).select_option(value=HOSTED_ODS)
    prescriber.get_by_role("button", name="Send to this pharmacy").click()
    mark(prescriber)
    expect(prescriber.locator("#items [data-status='active']")).to_have_text(
        "To be dispensed"
    )  # not "Declined"
    pharmacist_opens_arrival(other, HOSTED, pid)
    pharmacist_starts_and_dispenses(other)
    expect(prescriber.locator("#items [data-status='completed']")).to_have_count(1, timeout=ARRIVAL_MS)
    assert not_reloaded(prescriber)


def test_form_errors_show_the_error_summary_linked_to_the_field_and_store_nothing(sign_in, demo):
    page = sign_in("prescriber")
    page.goto("/gp/patients")
    assert axe_problems(page) == []
    screenshot(page, "patients")
    page.get_by_role("link", name="Register a new patient").click()
    page.get_by_label("NHS number").fill("944 930 4131")  # fails Modulus 11
    page.get_by_role("button", name="Register patient").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("valid NHS number")
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.classList.contains('nhsuk-error-summary')")
    summary.get_by_role("link", name=re.compile("valid NHS number")).click()
    assert page.evaluate("document.activeElement.id") == "id_nhs_number"
    assert Resource.objects.filter(node=demo["gp"], resource_type="Patient").count() == 0

    prescriber_registers(page, pharmacy=P2P_ODS)
    page.get_by_role("button", name="New prescription").click()
    page.get_by_role("button", name="Continue to review").click()  # no items
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("at least one")
    page.get_by_label("Medicine", exact=True).press_sequentially("parac", delay=20)
    page.get_by_role("radio", name=PARACETAMOL[1]).check()
    page.get_by_label("Dosage instructions").fill(PARACETAMOL[2])
    page.get_by_label("Quantity").fill("0")
    page.get_by_role("button", name="Add item").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("Quantity must be more than 0")
    summary.get_by_role("link", name=re.compile("Quantity")).click()
    assert page.evaluate("document.activeElement.id") == "id_quantity"
    expect(page.locator("#draft-items")).to_have_count(0)
    assert axe_problems(page) == []
    screenshot(page, "new-prescription-error")
    assert requests_at_gp(demo) == 0


def test_the_token_codes_decode_to_the_prescription_id(sign_in, demo):
    page = sign_in("prescriber", device_scale_factor=2)  # as a printer renders it, finer than a screen
    prescriber_registers(page, pharmacy=None)
    prescriber_writes(page, [PARACETAMOL], route="none")
    pid = prescriber_issues(page)
    assert axe_problems(page) == []
    screenshot(page, "prescription")
    page.get_by_role("link", name="Print the prescription token").click()
    expect(page.locator("#prescription-id")).to_have_text(pid)
    assert axe_problems(page) == []
    screenshot(page, "token")
    page.emulate_media(media="print")
    expect(page.locator("header.nhsuk-header")).to_be_hidden()  # the printed token is the token alone
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    # Decoded, not only in the page (a busy machine may take its time over the images).
    page.wait_for_function(
        "['#token-barcode', '#token-qr'].every(s => {"
        " const i = document.querySelector(s); return i.complete && i.naturalWidth > 0; })"
    )
    for selector, kind in (("#token-barcode", "Code128"), ("#token-qr", "QRCode")):
        image = Image.open(io.BytesIO(page.locator(selector).screenshot(scale="device")))
        found = [(c.format.name, c.text) for c in zxingcpp.read_barcodes(image)]
        assert (kind, pid) in found, found


def test_an_administrator_gets_403_where_the_prescriber_succeeds_and_a_double_issue_stores_one(sign_in, demo):
    prescriber = sign_in("prescriber")
    prescriber_registers(prescriber, pharmacy=P2P_ODS)
    prescriber_writes(prescriber, [PARACETAMOL])
    review = prescriber.url

    admin = sign_in("gp-admin")
    assert admin.goto(review).status == 200  # an administrator may look
    refused = admin.request.post(review, headers={"X-CSRFToken": csrf_token(admin)})
    assert refused.status == 403
    assert requests_at_gp(demo) == 0

    prescriber.get_by_role("button", name="Issue prescription").dblclick()  # a double click
    prescriber.wait_for_url(re.compile(r"/gp/prescriptions/[0-9A-F-]+[0-9A-Z+]$"))
    pid = prescriber.get_by_role("heading", level=1).inner_text().strip()
    again = prescriber.request.post(review, headers={"X-CSRFToken": csrf_token(prescriber)})  # resubmitted
    assert again.ok
    assert again.url.endswith(f"/gp/prescriptions/{pid}")
    assert requests_at_gp(demo) == 1

    cancel = f"/gp/prescriptions/{pid}/cancel"
    admin.goto(f"/gp/prescriptions/{pid}")
    expect(admin.get_by_role("button", name="Cancel prescription")).to_have_count(0)
    refused = admin.request.post(cancel, form={"reason": "0001"}, headers={"X-CSRFToken": csrf_token(admin)})
    assert refused.status == 403
    prescriber.get_by_label("Reason for cancelling").select_option("0001")
    prescriber.get_by_role("button", name="Cancel prescription").click()
    expect(prescriber.locator("#items [data-status='cancelled']")).to_have_count(1, timeout=ARRIVAL_MS)

    pharmacist = sign_in("pharmacist-peer-to-peer")
    assert pharmacist.goto(f"/gp/prescriptions/{pid}").status == 404
    assert pharmacist.goto("/pharmacy-dispenser-hosted/worklist").status == 404
