"""The catalogue in the console: read-only, since dm+d releases are its only source."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _link(obj) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:medicines_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj)


@admin.register(UnitOfMeasure, Form, BasisOfName, Supplier)
class LookupAdmin(ReadOnlyAdmin):
    list_display = ["code", "description"]
    search_fields = ["description", "=code"]


@admin.register(ControlDrugCategory)
class ControlDrugCategoryAdmin(ReadOnlyAdmin):
    list_display = ["code", "description", "schedule"]


@admin.register(VTM)
class VTMAdmin(ReadOnlyAdmin):
    list_display = ["vtmid", "name", "invalid"]
    list_filter = ["invalid"]
    search_fields = ["name", "=vtmid"]


@admin.register(VMP)
class VMPAdmin(ReadOnlyAdmin):
    list_display = ["vpid", "name", "form", "unit_dose_uom", "controlled_drug", "invalid", "source"]
    list_filter = ["invalid", "control_drug_category", "source"]
    search_fields = ["name", "=vpid"]
    list_select_related = ["form", "unit_dose_uom", "control_drug_category"]

    @admin.display(description="Controlled drug", ordering="control_drug_category")
    def controlled_drug(self, vmp: VMP) -> str:
        category = vmp.control_drug_category
        return f"Schedule {category.schedule}" if category and category.schedule else "-"


@admin.register(AMP)
class AMPAdmin(ReadOnlyAdmin):
    list_display = ["apid", "description", "generic", "supplier", "invalid", "source"]
    list_filter = ["invalid", ("vmp__control_drug_category", admin.RelatedOnlyFieldListFilter), "source"]
    search_fields = ["description", "=apid"]
    list_select_related = ["vmp", "supplier"]

    @admin.display(description="VMP", ordering="vmp__name")
    def generic(self, amp: AMP) -> str:
        return _link(amp.vmp)


@admin.register(VMPP)
class VMPPAdmin(ReadOnlyAdmin):
    list_display = ["vppid", "name", "quantity", "quantity_uom", "invalid"]
    list_filter = ["invalid"]
    search_fields = ["name", "=vppid"]
    list_select_related = ["quantity_uom"]


@admin.register(AMPP)
class AMPPAdmin(ReadOnlyAdmin):
    list_display = ["appid", "name", "product", "invalid"]
    list_filter = ["invalid"]
    search_fields = ["name", "=appid"]
    list_select_related = ["amp"]

    @admin.display(description="AMP", ordering="amp__description")
    def product(self, ampp: AMPP) -> str:
        return _link(ampp.amp)


@admin.register(ImportLog)
class ImportLogAdmin(ReadOnlyAdmin):
    list_display = [
        "release",
        "release_date",
        "imported_at",
        "vmps",
        "amps",
        "vmpps",
        "ampps",
        "vtms",
        "lookups",
    ]
    list_filter = ["release"]
    readonly_fields = ["fingerprint", "path"]
