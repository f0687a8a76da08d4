"""NHS identifier checks: the NHS number's Modulus 11 and the Prescription ID's MOD 37-2."""

from __future__ import annotations

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
PRESCRIPTION_ID_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"

_PRESCRIPTION_ID = re.compile(r"^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$")
_CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+"


def nhs_number_is_valid(value: str) -> bool:
    """Return whether value is ten digits whose last is the Modulus 11 check digit."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=False))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


def _mod37_2(data: str) -> int:
    p = 0
    for char in data:
        p = ((p + int(char, 36)) * 2) % 37
    return p


def prescription_id_check_character(data: str) -> str:
    """Return the check character for the 17 data characters of a short-form Prescription ID."""
    return _CHECK_ALPHABET[(38 - _mod37_2(data.replace("-", ""))) % 37]


def prescription_id_problem(value: str) -> str | None:
    """Return what is wrong with a short-form Prescription ID, or None when it is valid."""
    upper = value.upper()
    if not _PRESCRIPTION_ID.match(upper):
        return "does not have the layout XXXXXX-XXXXXX-XXXXXC"
    data, check = upper[:-1].replace("-", ""), upper[-1]
    if (_mod37_2(data) + _CHECK_ALPHABET.index(check)) % 37 != 1:
        return "has an invalid checksum"
    return None


def prescription_id_normalised(value: str) -> str:
    """Return a typed or scanned Prescription ID as stored: no spaces, upper case, and hyphens
    where they go when it was given without them."""
    compact = "".join(value.split()).upper()
    bare = compact.replace("-", "")
    return f"{bare[:6]}-{bare[6:12]}-{bare[12:]}" if len(bare) == 18 else compact


def prescription_id_error(value: str) -> str | None:
    """Return what is wrong with a typed Prescription ID, as the person typing it reads it, or None."""
    value = prescription_id_normalised(value)
    if not value:
        return "Enter the Prescription ID"
    problem = prescription_id_problem(value)
    if problem is None:
        return None
    if "checksum" in problem:
        return "The check character (the last one) does not match: check the Prescription ID"
    return "Enter a Prescription ID in the format 24F5DA-A83008-7EFE6Z"
