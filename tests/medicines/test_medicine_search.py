"""Prescribers find medicines by the words of their names, generic ones first."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.contrib.admin import site
from django.contrib.auth import get_user_model
from django.urls import reverse

from medicines.models import (
    AMP,
    AMPP,
    VMP,
    VMPP,
    VTM,
    BasisOfName,
    ControlDrugCategory,
    Form,
    ImportLog,
    Supplier,
    UnitOfMeasure,
)
from medicines.selectors import medicine_get, medicine_search
from medicines.services import catalogue_demo_seed


@pytest.fixture
def catalogue(db) -> None:
    catalogue_demo_seed()


def _names(query: str, **kwargs) -> list[str]:
    return [medicine.name for medicine in medicine_search(query=query, **kwargs)]


def test_every_word_of_the_query_must_be_in_the_name_in_any_case(catalogue):
    assert _names("para 500") == ["Paracetamol 500mg soluble tablets", "Paracetamol 500mg tablets"]
    assert _names("PARA tablets 500") == _names("para 500")
    assert _names("para 600") == []
    assert _names("   ") == []


def test_generic_products_come_before_branded_ones_then_by_name(catalogue):
    found = medicine_search(query="6mg/2ml")
    assert [m.kind for m in found] == ["VMP"] + ["AMP"] * 6
    assert found[0].name == "Adenosine 6mg/2ml solution for injection vials"
    assert found[1].name == "Adenocor 6mg/2ml solution for injection vials (Sanofi)"
    assert found[1].generic_name == found[0].name
    assert [m.name for m in medicine_search(query="6mg/2ml", limit=2)] == [found[0].name, found[1].name]


def test_a_brand_is_found_by_its_name_and_carries_its_generic_and_unit(catalogue):
    [sudafed] = medicine_search(query="TABLETS decongestant")
    assert (sudafed.code, sudafed.kind, sudafed.name) == (
        "381511000001101",
        "AMP",
        "Sudafed Decongestant 60mg tablets (McNeil Products Ltd)",
    )
    assert (sudafed.generic_name, sudafed.unit, sudafed.unit_code) == (
        "Pseudoephedrine hydrochloride 60mg tablets",
        "tablet",
        "428673006",
    )
    assert [m.kind for m in medicine_search(query="pseudoephedrine")] == ["VMP"]
    assert medicine_get(code="381511000001101") == sudafed


def test_invalid_products_are_not_offered_but_can_still_be_looked_up(catalogue):
    assert _names("2.32% gel") == [
        "Diclofenac 2.32% gel",
        "Voltarol 12 Hour Emulgel P 2.32% gel (GlaxoSmithKline Consumer Healthcare)",
    ]
    assert (
        medicine_get(code="29915211000001103").name == "Diclofenac 2.32% gel (Colorama Pharmaceuticals Ltd)"
    )
    assert medicine_get(code="999") is None


def test_controlled_drugs_carry_their_schedule(catalogue):
    fentanyl = medicine_search(query="fentanyl patches")[0]
    assert (fentanyl.code, fentanyl.controlled_drug_schedule) == ("36120011000001101", "2")
    assert (fentanyl.unit, fentanyl.unit_code) == ("patch", "419702001")
    assert medicine_search(query="morphine modified-release")[0].controlled_drug_schedule == "2"
    assert medicine_search(query="co-codamol")[0].controlled_drug_schedule == "5"
    assert {m.controlled_drug_schedule for m in medicine_search(query="paracetamol")} == {""}


def test_the_unit_comes_from_the_packs_else_from_the_unit_dose(catalogue):
    gel = medicine_get(code="22480211000001104")
    assert (gel.unit, gel.unit_code, gel.pack_sizes) == (
        "gram",
        "258682000",
        (Decimal(30), Decimal(50), Decimal(100)),
    )
    adenocor = medicine_get(code="4744411000001104")
    assert (adenocor.unit, adenocor.pack_sizes) == ("vial", (Decimal(6),))
    amoxicillin = medicine_get(code="39732311000001104")
    assert (amoxicillin.unit, amoxicillin.unit_code, amoxicillin.pack_sizes) == ("capsule", "428641000", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        amoxicillin.name = "x"


CONSOLE = {
    UnitOfMeasure: "tablet",
    Form: "gel",
    BasisOfName: "rINN",
    Supplier: "McNeil",
    ControlDrugCategory: "Schedule",
    VTM: "paracetamol",
    VMP: "fentanyl",
    AMP: "sudafed",
    VMPP: "gel",
    AMPP: "adenocor",
    ImportLog: "",
}


@pytest.fixture
def console(client, catalogue):
    client.force_login(get_user_model().objects.create_superuser("catalogue-admin", password=None))
    return client


@pytest.mark.parametrize("model", CONSOLE, ids=lambda model: model._meta.model_name)
def test_every_console_page_of_the_catalogue_renders_read_only(console, model):
    pages = f"/admin/medicines/{model._meta.model_name}/"
    listing = console.get(pages)
    assert listing.status_code == 200
    assert f"{pages}add/".encode() not in listing.content
    admin_class = site._registry[model]
    if admin_class.search_fields:
        found = console.get(pages, {"q": CONSOLE[model]})
        assert found.status_code == 200
        assert found.context["cl"].result_count > 0, CONSOLE[model]
    for name in admin_class.get_list_filter(None):
        field = name[0] if isinstance(name, tuple) else name
        assert console.get(pages, {f"{field}__isnull": "False"}).status_code == 200, field
    row = model.objects.order_by("pk").first()
    shown = console.get(reverse(f"admin:medicines_{model._meta.model_name}_change", args=[row.pk]))
    assert shown.status_code == 200
    assert b'name="_save"' not in shown.content
    assert console.get(f"{pages}{row.pk}/delete/").status_code == 403


def test_the_console_filters_by_controlled_drug_category(console):
    assert console.get("/admin/medicines/").status_code == 200
    page = console.get("/admin/medicines/vmp/?control_drug_category__code__exact=0002")
    assert b"Fentanyl 25micrograms/hour" in page.content
    assert b"Paracetamol" not in page.content
    page = console.get("/admin/medicines/amp/?source__exact=eps")
    assert b"Sudafed Decongestant" in page.content
    assert b"Adenocor" not in page.content
