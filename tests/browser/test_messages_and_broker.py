"""A node's messages and the broker's shared record, in Chromium with a worker delivering."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dispensing.services import dispense_start
from exchange.models import Message
from fhirserver import jsonio, medication
from tests.browser.conftest import axe_problems, mark, not_reloaded, screenshot
from tests.exchange.flows import held_at, issue
from tests.processes import wait_for


def prescription_id(request) -> str:
    return medication.group_id(jsonio.loads(request.text))


def test_the_messages_screen_updates_itself_and_the_administrator_requeues_a_dead_message(sign_in, demo):
    page = sign_in("gp-admin")
    page.goto("/gp/messages")
    mark(page)
    [request] = issue(demo, "pharmacy-peer-to-peer")
    issued = prescription_id(request)
    row = page.locator("#sent tr", has_text=issued)
    expect(row.locator(".nhsuk-tag", has_text="Delivered")).to_be_visible()  # polled in, not reloaded
    assert not_reloaded(page)
    expect(row.get_by_role("link", name="Request sent to the pharmacy")).to_be_visible()
    assert axe_problems(page) == []
    screenshot(page, "messages")

    message = Message.objects.get(node=demo["gp"], key=issued, kind="request.create")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.DEAD, last_error="HTTP 503: the pharmacy was down for too long"
    )
    page.goto("/gp/messages?status=dead")
    page.locator("#sent").get_by_role("link", name="Request sent to the pharmacy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request sent to the pharmacy")
    assert axe_problems(page) == []
    page.get_by_role("button", name="Requeue this message").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("The message was requeued")
    expect(page.locator("#delivery .nhsuk-tag")).to_have_text("Delivered")  # sent again, once
    screenshot(page, "message")


def test_a_prescriber_sees_the_messages_but_no_requeue(sign_in, demo):
    page = sign_in("prescriber")
    page.goto("/gp/messages")
    expect(page.get_by_role("heading", name="Messages")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Requeue"))).to_have_count(0)


def test_the_broker_admin_finds_a_shared_record_prescription_by_its_prescription_id(sign_in, demo):
    pharmacy = demo["pharmacy-shared-record"]
    [request] = issue(demo, "pharmacy-shared-record")
    wanted = prescription_id(request)
    copy = wait_for(lambda: held_at(pharmacy, request), message="the pharmacy's copy, read from the broker")
    dispense_start(node=pharmacy, request=copy)  # at the broker, while the pharmacist waits

    page = sign_in("broker-admin")
    page.goto("/broker/shared-record")
    expect(page.get_by_role("heading", name="Newest prescriptions")).to_be_visible()
    assert axe_problems(page) == []
    page.get_by_label("Prescription ID or NHS number").fill(wanted.lower())
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name=f"Prescription {wanted}")).to_be_visible()
    expect(page.get_by_role("heading", name="1 prescription found")).to_be_visible()
    expect(page.get_by_text("Being dispensed by FH542")).to_be_visible()
    assert axe_problems(page) == []
    screenshot(page, "shared-record")

    wrong = wanted[:-1] + ("A" if wanted[-1] != "A" else "B")
    page.get_by_label("Prescription ID or NHS number").fill(wrong)
    page.get_by_role("button", name="Search").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text("check character")
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.classList.contains('nhsuk-error-summary')")
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "id_q"
    assert axe_problems(page) == []
    screenshot(page, "shared-record-error")

    page.goto("/broker/shared-record")
    page.get_by_role("link", name="subscriptions at Medicines Broker").click()
    expect(page.get_by_role("heading", name="Subscriptions", exact=True)).to_be_visible()
    expect(page.locator(".nhsuk-tag", has_text="Active")).to_have_count(3)  # the pharmacy, the gp, the trust
    assert axe_problems(page) == []
    screenshot(page, "subscriptions")

    pharmacist = sign_in("pharmacist-shared-record")
    pharmacist.goto("/pharmacy-shared-record/messages")
    received = pharmacist.locator("#received tr", has_text="Hallgarth Surgery")
    expect(received.first).to_contain_text("A prescription item became active")
    expect(pharmacist.locator("#sent")).to_contain_text("Fetched a prescription item from the broker")
    assert axe_problems(pharmacist) == []
    screenshot(pharmacist, "messages-received")
