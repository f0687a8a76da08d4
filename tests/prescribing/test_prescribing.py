"""A prescriber writes, reviews and issues a prescription; the issue form issues it once."""

from __future__ import annotations

import threading

from django.db import connection
from django.test import Client

from fhirserver import medication
from prescribing.models import PrescriptionDraft
from tests.pages import text_of
from tests.prescribing.conftest import AMOXICILLIN, NHS_NUMBER, PARACETAMOL, stored


def group_ids(gp) -> set[str]:
    return {medication.group_id(request) for request in stored(gp, "MedicationRequest")}


def test_a_two_item_prescription_issued_to_the_nominated_pharmacy_is_stored_with_the_prescribers_name(
    registered, gp
):
    page_url = registered.prescribe(codes=(PARACETAMOL, AMOXICILLIN))
    requests = stored(gp, "MedicationRequest")
    assert len(requests) == 2
    [prescription_id] = group_ids(gp)
    assert page_url == f"/gp/prescriptions/{prescription_id}"
    assert {r["requester"]["display"] for r in requests} == {"Dr Asha Patel"}
    assert {medication.nominated_ods(r) for r in requests} == {"FA565"}
    assert {r["subject"]["identifier"]["value"] for r in requests} == {NHS_NUMBER}
    assert [medication.medicine_name(r) for r in requests] == [
        "Paracetamol 500mg soluble tablets",
        "Amoxicillin 250mg capsules",
    ]
    page = text_of(registered.client.get(page_url))
    assert prescription_id in page
    assert "Dr Asha Patel" in page
    assert "Station Road Pharmacy (FA565)" in page
    assert "Issued" in page
    assert "waiting to be sent" in page
    patient_page = registered.client.get(f"/gp/patients/{NHS_NUMBER}").content.decode()
    assert f'href="/gp/prescriptions/{prescription_id}"' in patient_page


def test_the_review_page_shows_everything_and_its_form_carries_only_the_csrf_token(registered):
    draft = registered.start()
    registered.add(draft, PARACETAMOL)
    registered.route(draft, "other", "VNE51", course="repeat")
    review = registered.client.get(f"{draft}/review")
    text = text_of(review)
    assert "Paracetamol 500mg soluble tablets" in text
    assert "60 tablet" in text
    assert "Market Place Chemist (VNE51)" in text
    assert "Repeat" in text
    form = review.content.decode().split('action="' + draft + '/review"')[1].split("</form>")[0]
    assert form.count("<input") == 1
    assert 'name="csrfmiddlewaretoken"' in form


def test_a_prescription_to_no_pharmacy_goes_to_the_shared_record_for_the_token(registered, gp):
    registered.prescribe(codes=(PARACETAMOL,), route="none")
    [request] = stored(gp, "MedicationRequest")
    assert medication.nominated_ods(request) == ""


def test_another_pharmacy_must_be_chosen_from_the_directory(registered):
    draft = registered.start()
    registered.add(draft)
    response = registered.route(draft, "other", "")
    assert response.status_code == 200
    assert 'href="#id_pharmacy"' in response.content.decode()


def test_no_items_is_an_error_and_nothing_is_issued(registered, gp):
    draft = registered.start()
    response = registered.route(draft)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Error: " in html
    assert "Add at least one item to the prescription" in html
    assert 'href="#id_medicine"' in html
    issued = registered.issue(draft)  # the review page posted anyway
    assert issued.status_code == 200
    assert "nhsuk-error-summary" in issued.content.decode()
    assert stored(gp, "MedicationRequest") == []


def test_a_quantity_of_0_is_an_error_linked_to_its_field_and_nothing_is_added(registered, gp):
    draft = registered.start()
    response = registered.add(draft, quantity="0")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="#id_quantity"' in html
    assert "Quantity must be more than 0" in html
    assert 'value="Two four times a day"' in html  # nothing typed is lost
    assert f'value="{PARACETAMOL}" aria-describedby' in html
    assert "checked" in html
    assert PrescriptionDraft.objects.get().items == []
    assert stored(gp, "MedicationRequest") == []


def test_an_item_can_be_removed_before_the_review_and_a_repeated_remove_takes_no_other(registered):
    draft = registered.start()
    registered.add(draft, PARACETAMOL)
    registered.add(draft, AMOXICILLIN)
    first = PrescriptionDraft.objects.get().items[0]["key"]
    registered.client.post(draft, {"action": "remove", "item": first})
    registered.client.post(draft, {"action": "remove", "item": first})  # a double click
    registered.client.post(draft, {"action": "remove", "item": "no such item"})
    assert [i["display"] for i in PrescriptionDraft.objects.get().items] == ["Amoxicillin 250mg capsules"]


def test_medicines_are_offered_as_you_type_and_by_the_search_button_without_javascript(registered):
    typed = registered.client.get("/gp/medicines", {"q": "parac 500"}, HTTP_HX_REQUEST="true")
    assert typed.status_code == 200
    assert "<html" not in typed.content.decode()
    assert f'value="{PARACETAMOL}"' in typed.content.decode()
    assert "unit: tablet" in text_of(typed)
    draft = registered.start()
    searched = registered.client.post(draft, {"action": "search", "q": "amoxicillin", "dosage": "One a day"})
    html = searched.content.decode()
    assert f'value="{AMOXICILLIN}"' in html
    assert 'value="One a day"' in html
    nothing = registered.client.post(draft, {"action": "search", "q": "no such medicine"})
    assert "No medicine matches" in text_of(nothing)


def test_the_review_posted_twice_issues_one_prescription(registered, gp):
    draft = registered.start()
    registered.add(draft, PARACETAMOL)
    registered.add(draft, AMOXICILLIN)
    registered.route(draft)
    first, second = registered.issue(draft), registered.issue(draft)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert len(group_ids(gp)) == 1
    assert len(stored(gp, "MedicationRequest")) == 2
    assert registered.client.get(draft)["Location"] == first["Location"]  # the draft is spent


def test_the_review_posted_twice_at_once_issues_one_prescription(registered, gp, django_user_model):
    draft = registered.start()
    registered.add(draft, PARACETAMOL)
    registered.route(draft)
    user = django_user_model.objects.get(username="prescriber")
    start, answers = threading.Barrier(2), []

    def post() -> None:
        client = Client()
        client.force_login(user)
        start.wait()
        try:
            answers.append(registered.issue(draft, client))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
    assert len(stored(gp, "MedicationRequest")) == 1
