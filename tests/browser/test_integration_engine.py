"""A hospital prescription in Chromium: the trust's outpatient prescriber issues it, it crosses
the trust's integration engine to the broker, a community pharmacist dispenses it, and the
prescriber sees it dispensed; the engine's administrator sees what passed through, and requeues
what failed."""

from __future__ import annotations

from playwright.sync_api import expect

from exchange.models import Message
from tests.browser.conftest import axe_problems, screenshot
from tests.browser.journeys import (
    ARRIVAL_MS,
    PARACETAMOL,
    pharmacist_opens_arrival,
    pharmacist_starts_and_dispenses,
    prescriber_issues,
    prescriber_registers,
    prescriber_writes,
)
from tests.exchange.flows import cut_off

EVENTS, EVENTS_ODS = "pharmacy-shared-record-events", "FEW08"


def test_a_hospital_prescription_travels_through_the_engine_to_a_pharmacy_and_back(sign_in, demo):
    prescriber = sign_in("outpatient-prescriber")
    prescriber_registers(prescriber, pharmacy=EVENTS_ODS, node="trust")
    prescriber_writes(prescriber, [PARACETAMOL])
    pid = prescriber_issues(prescriber, node="trust")

    pharmacist = sign_in("pharmacist-shared-record-events")
    pharmacist.goto(f"/{EVENTS}/worklist")
    pharmacist_opens_arrival(pharmacist, EVENTS, pid)
    expect(pharmacist.locator("main")).to_contain_text("Dr Miriam OkoyePractice ODS RZZ")
    pharmacist_starts_and_dispenses(pharmacist)

    expect(prescriber.locator("#items [data-status='completed']")).to_have_count(1, timeout=ARRIVAL_MS)
    screenshot(prescriber, "trust-prescription-dispensed")

    admin = sign_in("engine-admin")  # lands on the engine's traffic
    expect(admin.get_by_role("heading", level=1)).to_have_text("Traffic through Riverbank Integration Engine")
    relays = admin.locator("#relays")
    expect(relays).to_contain_text("Outpatient clinic prescribing")
    expect(relays).to_contain_text("POST MedicationRequest")
    expect(relays).to_contain_text("Stamped prescription type 1001")
    expect(relays).to_contain_text("notifications/RZZ")
    assert axe_problems(admin) == []
    screenshot(admin, "engine-traffic")


def test_the_engine_administrator_requeues_what_the_broker_never_took(sign_in, demo, live_server):
    engine, broker = demo["engine"], demo["broker"]
    front = cut_off(engine, broker, live_server.url)  # the broker is out of the engine's reach
    prescriber = sign_in("outpatient-prescriber")
    prescriber_registers(prescriber, pharmacy=EVENTS_ODS, node="trust")
    prescriber_writes(prescriber, [PARACETAMOL])
    prescriber_issues(prescriber, node="trust")
    held = Message.objects.filter(node=engine, kind="relay.post", url__endswith="/MedicationRequest")
    admin = sign_in("engine-admin")
    admin.get_by_role("link", name="Waiting").click()
    expect(admin.locator("#relays")).to_contain_text("Held message", timeout=ARRIVAL_MS)
    held.update(
        status=Message.Status.DEAD, last_error="Gave up: the broker could not be reached"
    )  # as after 24 h
    front.start()
    try:
        admin.get_by_role("link", name="Failed").click()
        expect(admin.locator("#relays")).to_contain_text("Gave up: the broker could not be reached")
        screenshot(admin, "engine-failed")
        admin.get_by_role("button", name="Requeue").click()
        expect(admin.get_by_role("status")).to_contain_text("requeued")
        expect(admin.locator("main")).to_contain_text("Delivered", timeout=ARRIVAL_MS)
    finally:
        front.stop()
    assert held.get().status == Message.Status.DELIVERED
