from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medicines.models import (
    AMP,
    AMPP,
    VMP,
    VMPP,
    VTM,
    BasisOfName,
    ControlDrugCategory,
    Form,
    Supplier,
    UnitOfMeasure,
)
from medicines.services import SAMPLE_RELEASE

CATALOGUE = [UnitOfMeasure, Form, BasisOfName, Supplier, ControlDrugCategory, VTM, VMP, AMP, VMPP, AMPP]


def catalogue_dump() -> dict[str, list[dict]]:
    """Return every catalogue row, field by field, in primary-key order."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in CATALOGUE}


@pytest.fixture
def release(tmp_path) -> Path:
    """A copy of the bundled sample release that a test may change."""
    folder = tmp_path / "release"
    shutil.copytree(SAMPLE_RELEASE, folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    """Replace one piece of a release file's text, failing if it is not there exactly once."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path.name}"
    path.write_text(text.replace(old, new))
