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


# The prescriber's side.

PATIENT = {"nhs_number": "9449304130", "given": "Ellie", "family": "Jones", "born": ("14", "6", "1978")}
PARACETAMOL = ("parac", "Paracetamol 500mg soluble tablets", "Two tablets four times a day", "60")
AMOXICILLIN = ("amox", "Amoxicillin 250mg capsules", "One capsule three times a day", "21")


def prescriber_registers(
    page: Page, *, pharmacy: str | None, patient: dict = PATIENT, node: str = "gp"
) -> None:
    """Look the patient up by NHS number at the prescribing node, find none, register them
    (nominating `pharmacy`, an ODS code, or none) and land on their page."""
    page.goto(f"/{node}/patients")
    page.get_by_label("NHS number").fill(patient["nhs_number"])
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Register a new patient").click()
    expect(page.get_by_label("NHS number")).to_have_value(patient["nhs_number"])
    page.get_by_label("First name").fill(patient["given"])
    page.get_by_label("Last name").fill(patient["family"])
    for part, value in zip(("Day", "Month", "Year"), patient["born"], strict=True):
        page.get_by_label(part, exact=True).fill(value)
    page.get_by_label("Female").check()
    if pharmacy:
        page.get_by_label("Nominated pharmacy").select_option(value=pharmacy)
    page.get_by_role("button", name="Register patient").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(patient["family"].upper())


def prescriber_adds_item(page: Page, item: tuple[str, str, str, str]) -> None:
    """On the new prescription: search the catalogue as one types, choose, say how much."""
    typed, name, dosage, quantity = item
    page.get_by_label("Medicine", exact=True).press_sequentially(typed, delay=20)
    page.get_by_role("radio", name=name).check()
    page.get_by_label("Dosage instructions").fill(dosage)
    page.get_by_label("Quantity").fill(quantity)
    page.get_by_role("button", name="Add item").click()
    expect(page.locator("#draft-items")).to_contain_text(name)


def prescriber_writes(page: Page, items, *, route: str = "nominated", pharmacy: str = "") -> None:
    """From the patient's page: a new prescription of these items, to the nominated pharmacy,
    `other` (then `pharmacy`, an ODS code) or `none`; on to the review page."""
    page.get_by_role("button", name="New prescription").click()
    for item in items:
        prescriber_adds_item(page, item)
    page.get_by_role(
        "radio",
        name=re.compile({"nominated": "nominated", "other": "^Another", "none": "^No pharmacy"}[route]),
    ).check()
    if route == "other":
        page.get_by_role("combobox", name="Another pharmacy").select_option(value=pharmacy)
    page.get_by_role("button", name="Continue to review").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the prescription before you issue it")


def prescriber_issues(page: Page, node: str = "gp") -> str:
    """On the review page: issue, land on the prescription's page, and return its ID."""
    page.get_by_role("button", name="Issue prescription").click()
    page.wait_for_url(
        re.compile(rf"/{node}/prescriptions/[0-9A-F]{{6}}-[0-9A-Z]{{6}}-[0-9A-F]{{5}}[0-9A-Z+]$")
    )
    return page.get_by_role("heading", level=1).inner_text().strip()
