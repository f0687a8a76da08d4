from __future__ import annotations

import pytest

from fhirserver.nhs import (
    nhs_number_is_valid,
    prescription_id_check_character,
    prescription_id_error,
    prescription_id_normalised,
    prescription_id_problem,
)

VALID_IDS = [
    "24F5DA-A83008-7EFE6Z",
    "060CC0-A83008-5A2E6T",
    "0A446C-A99968-4CC380",
    "0EB38D-A99968-424EAR",
    "124C9E-A83008-49E282",
    "1A7D94-0RRERP-549310",
    "4243A0-A99968-4E149+",
    "04F4C2-A99968-7F717P",
]


@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_prescription_ids_pass(value):
    assert prescription_id_problem(value) is None
    assert prescription_id_check_character(value[:-1]) == value[-1]


@pytest.mark.parametrize(("value", "right"), [("269CA9-A99968-4577BP", "F"), ("6FOCBU-E776BJ-CMPMTX", None)])
def test_wrong_check_characters_fail(value, right):
    assert prescription_id_problem(value) is not None
    if right:
        assert prescription_id_check_character(value[:-1]) == right


def test_prescription_id_layout_is_checked():
    assert "layout" in prescription_id_problem("24F5DA-A83008-7EFE6")


@pytest.mark.parametrize(
    "value",
    ["9449304130", "9990548609", "9449305552", "9453740519", "5839945242", "9912003489", "9434765919"],
)
def test_valid_nhs_numbers_pass(value):
    assert nhs_number_is_valid(value)


@pytest.mark.parametrize(
    "value", ["9449304131", "9990548600", "1234567890", "944930413", "94493041300", "944930413X"]
)
def test_invalid_nhs_numbers_fail(value):
    assert not nhs_number_is_valid(value)


@pytest.mark.parametrize("typed", ["24f5da-a83008-7efe6z", " 24F5DAA830087EFE6Z ", "24F5 DA-A830 08-7EFE6Z"])
def test_a_typed_or_scanned_prescription_id_is_normalised_and_accepted(typed):
    assert prescription_id_normalised(typed) == "24F5DA-A83008-7EFE6Z"
    assert prescription_id_error(typed) is None


def test_a_typed_prescription_id_gets_an_error_a_person_can_act_on():
    assert prescription_id_error("") == "Enter the Prescription ID"
    assert "check character" in prescription_id_error("24F5DA-A83008-7EFE6A")
    assert "in the format" in prescription_id_error("24F5DA-A83008")
