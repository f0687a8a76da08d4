"""The committed table of the EPS examples' medicines (`data/eps_medicines.csv`), read and checked."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from medicines.models import ControlDrugCategory, Supplier, UnitOfMeasure
from medicines.release import ReleaseError


def table_read(path: Path) -> list[dict[str, str]]:
    """Return the table's rows as they are written."""
    try:
        with path.open(newline="") as stream:
            return list(csv.DictReader(stream))
    except OSError as error:
        raise ReleaseError(f"{path.name}: cannot be read ({error.strerror})") from None


def table_rows(path: Path) -> list[dict[str, str]]:
    """Return the table's rows, checking their units, categories, schedules and suppliers."""
    rows = table_read(path)
    units = set(UnitOfMeasure.objects.values_list("pk", flat=True))
    suppliers = set(Supplier.objects.values_list("pk", flat=True))
    categories = {category.code: category for category in ControlDrugCategory.objects.all()}
    generic = {row["code"] for row in rows if not row["vmp"]}
    for row in rows:
        if row["vmp"]:  # a branded product: its unit and category are its VMP's
            if row["vmp"] not in generic or row["supplier_code"] not in suppliers:
                raise ReleaseError(
                    f"{path.name}: {row['code']}: its VMP is not in the table or its supplier is unknown"
                )
            continue
        category = categories.get(row["control_drug_category"])
        if row["unit_code"] not in units or category is None:
            raise ReleaseError(
                f"{path.name}: {row['code']}: unit or category unknown; load a dm+d release first"
            )
        if category.schedule != row["schedule"]:
            raise ReleaseError(f"{path.name}: {row['code']}: schedule {row['schedule']!r} is not {category}")
    return rows


def amp_name(description: str) -> str:
    """Return an AMP's name from its description, which ends with its supplier in brackets."""
    return re.sub(r" \([^()]*\)$", "", description)
