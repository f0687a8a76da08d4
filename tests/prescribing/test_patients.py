"""A prescriber registers, finds and nominates for patients on the screens."""

from __future__ import annotations

from fhirserver import patient
from tests.pages import text_of
from tests.prescribing.conftest import NHS_NUMBER, stored


def test_registering_a_patient_stores_them_and_opens_their_page(steps, gp):
    response = steps.register()
    assert response.status_code == 302
    assert response["Location"] == f"/gp/patients/{NHS_NUMBER}"
    [record] = stored(gp, "Patient")
    assert patient.nhs_number(record) == NHS_NUMBER
    assert patient.nominated_ods(record) == "FA565"
    page = text_of(steps.client.get(response["Location"]))
    assert "Jane SMITH" in page
    assert "944 930 4130" in page
    assert "15 March 1984" in page
    assert "Station Road Pharmacy (FA565)" in page


def test_an_nhs_number_failing_modulus_11_shows_the_error_linked_to_its_field_and_stores_nothing(steps, gp):
    response = steps.register(nhs_number="9449304131")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Error: " in html
    assert "nhsuk-error-summary" in html
    assert 'href="#id_nhs_number"' in html
    assert 'id="id_nhs_number"' in html
    assert 'value="9449304131"' in html  # what was typed is kept
    assert stored(gp, "Patient") == []


def test_missing_details_are_each_listed_in_the_error_summary(steps, gp):
    response = steps.register(given="", day="31", month="2", gender="")
    html = response.content.decode()
    assert response.status_code == 200
    for field in ("id_given", "id_day", "id_gender"):
        assert f'href="#{field}"' in html
    assert "Date of birth must be a real date" in html
    assert stored(gp, "Patient") == []


def test_an_nhs_number_registered_already_is_refused_at_its_field(registered, gp):
    response = registered.register(given="Other")
    assert response.status_code == 200
    assert 'href="#id_nhs_number"' in response.content.decode()
    assert len(stored(gp, "Patient")) == 1


def test_a_patient_is_found_by_nhs_number_typed_with_spaces(registered):
    response = registered.client.get("/gp/patients", {"nhs_number": "944 930 4130"})
    assert response.status_code == 302
    assert response["Location"] == f"/gp/patients/{NHS_NUMBER}"


def test_a_patient_is_found_by_last_name_and_date_of_birth(registered):
    found = registered.client.get(
        "/gp/patients", {"family": "smi", "day": "15", "month": "3", "year": "1984"}
    )
    assert found.status_code == 200
    assert f'href="/gp/patients/{NHS_NUMBER}"' in found.content.decode()
    assert "944 930 4130" in text_of(found)
    other_day = registered.client.get(
        "/gp/patients", {"family": "smith", "day": "16", "month": "3", "year": "1984"}
    )
    assert "No patient found" in text_of(other_day)


def test_an_unknown_nhs_number_offers_to_register_it(steps):
    response = steps.client.get("/gp/patients", {"nhs_number": "9990548609"})
    assert response.status_code == 200
    assert "No patient found" in text_of(response)
    assert 'href="/gp/patients/new?nhs_number=9990548609"' in response.content.decode()


def test_a_search_with_neither_an_nhs_number_nor_a_name_and_birth_date_says_what_to_enter(steps):
    response = steps.client.get("/gp/patients", {"family": "smith"})
    assert response.status_code == 200
    assert "Enter an NHS number, or a last name and date of birth" in text_of(response)
    assert 'href="#id_nhs_number"' in response.content.decode()


def test_the_nominated_pharmacy_can_be_changed_and_removed(registered, gp):
    response = registered.client.post(f"/gp/patients/{NHS_NUMBER}", {"pharmacy": "VNE51"})
    assert response.status_code == 302
    assert patient.nominated_ods(stored(gp, "Patient")[0]) == "VNE51"
    page = registered.client.get(f"/gp/patients/{NHS_NUMBER}")
    assert "Market Place Chemist (VNE51)" in text_of(page)
    registered.client.post(f"/gp/patients/{NHS_NUMBER}", {"pharmacy": ""})
    assert patient.nominated_ods(stored(gp, "Patient")[0]) == ""


def test_a_pharmacy_not_in_the_directory_is_refused_at_its_field(registered, gp):
    response = registered.client.post(f"/gp/patients/{NHS_NUMBER}", {"pharmacy": "ZZZ99"})
    assert response.status_code == 200
    assert 'href="#id_pharmacy"' in response.content.decode()
    assert "ZZZ99 is not a pharmacy" in text_of(response)
    assert patient.nominated_ods(stored(gp, "Patient")[0]) == "FA565"
