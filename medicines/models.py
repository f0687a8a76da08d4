"""The medicines catalogue: what a prescriber needs of NHSBSA's dm+d, plus its import log.

Field names follow the dm+d technical specification (the XML tag is in each verbose name); every
SNOMED CT identifier is kept as a string.
"""

from __future__ import annotations

import re

from django.db import models

SNOMED_ID = {"max_length": 20}


class Lookup(models.Model):
    """A row of one of dm+d's code lists (`f_lookup2`: `CD`, `DESC`)."""

    code = models.CharField("code (CD)", max_length=20, primary_key=True)
    description = models.CharField("description (DESC)", max_length=255)

    class Meta:
        abstract = True
        ordering = ["description"]

    def __str__(self) -> str:
        return self.description


class UnitOfMeasure(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = "unit of measure"


class Form(Lookup):
    pass


class BasisOfName(Lookup):
    class Meta(Lookup.Meta):
        verbose_name_plural = "bases of name"


class Supplier(Lookup):
    pass


class ControlDrugCategory(Lookup):
    class Meta(Lookup.Meta):
        verbose_name = "controlled drug category"
        verbose_name_plural = "controlled drug categories"

    @property
    def schedule(self) -> str:
        """Return the Misuse of Drugs Regulations schedule ("2", "3", ...), "" for none."""
        found = re.match(r"Schedule (\d)", self.description)
        return found.group(1) if found else ""


class VTM(models.Model):
    """Virtual therapeutic moiety, e.g. "Paracetamol"."""

    vtmid = models.CharField("VTMID", primary_key=True, **SNOMED_ID)
    name = models.CharField("name (NM)", max_length=255)
    invalid = models.BooleanField("invalid (INVALID)", default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "VTM"

    def __str__(self) -> str:
        return self.name


class Source(models.TextChoices):
    """Where a product's row came from: a dm+d release, or the EPS examples' table alone."""

    RELEASE = "dmd", "dm+d release"
    EPS_EXAMPLES = "eps", "EPS examples table"


class VMP(models.Model):
    """Virtual medicinal product: the generic, prescribable product."""

    Source = Source

    vpid = models.CharField("VPID", primary_key=True, **SNOMED_ID)
    name = models.CharField("name (NM)", max_length=255)
    vtm = models.ForeignKey(VTM, models.PROTECT, null=True, blank=True, verbose_name="VTM (VTMID)")
    invalid = models.BooleanField("invalid (INVALID)", default=False)
    basis = models.ForeignKey(
        BasisOfName, models.PROTECT, null=True, blank=True, verbose_name="basis of name (BASISCD)"
    )
    form = models.ForeignKey(Form, models.PROTECT, null=True, blank=True, verbose_name="form (DFORM FORMCD)")
    unit_dose_uom = models.ForeignKey(
        UnitOfMeasure,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="unit dose unit of measure (UNIT_DOSE_UOMCD)",
    )
    control_drug_category = models.ForeignKey(
        ControlDrugCategory,
        models.PROTECT,
        null=True,
        blank=True,
        verbose_name="controlled drug category (CONTROL_INFO CATCD)",
    )
    source = models.CharField(max_length=3, choices=Source.choices, default=Source.RELEASE)

    class Meta:
        ordering = ["name"]
        verbose_name = "VMP"

    def __str__(self) -> str:
        return self.name


class AMP(models.Model):
    """Actual medicinal product: one supplier's product of a VMP."""

    apid = models.CharField("APID", primary_key=True, **SNOMED_ID)
    name = models.CharField("name (NM)", max_length=255)
    description = models.CharField("description (DESC)", max_length=700)
    vmp = models.ForeignKey(VMP, models.PROTECT, related_name="amps", verbose_name="VMP (VPID)")
    supplier = models.ForeignKey(
        Supplier, models.PROTECT, null=True, blank=True, verbose_name="supplier (SUPPCD)"
    )
    invalid = models.BooleanField("invalid (INVALID)", default=False)
    source = models.CharField(max_length=3, choices=Source.choices, default=Source.RELEASE)

    Source = Source

    class Meta:
        ordering = ["description"]
        verbose_name = "AMP"

    def __str__(self) -> str:
        return self.description


class VMPP(models.Model):
    """Virtual medicinal product pack: a VMP in a quantity."""

    vppid = models.CharField("VPPID", primary_key=True, **SNOMED_ID)
    name = models.CharField("name (NM)", max_length=420)
    vmp = models.ForeignKey(VMP, models.PROTECT, related_name="vmpps", verbose_name="VMP (VPID)")
    quantity = models.DecimalField("quantity (QTYVAL)", max_digits=10, decimal_places=2)
    quantity_uom = models.ForeignKey(
        UnitOfMeasure, models.PROTECT, related_name="+", verbose_name="quantity unit (QTY_UOMCD)"
    )
    invalid = models.BooleanField("invalid (INVALID)", default=False)

    class Meta:
        ordering = ["vmp", "quantity"]
        verbose_name = "VMPP"

    def __str__(self) -> str:
        return self.name


class AMPP(models.Model):
    """Actual medicinal product pack: an AMP in one of its VMP's packs."""

    appid = models.CharField("APPID", primary_key=True, **SNOMED_ID)
    name = models.CharField("name (NM)", max_length=774)
    amp = models.ForeignKey(AMP, models.PROTECT, related_name="ampps", verbose_name="AMP (APID)")
    vmpp = models.ForeignKey(VMPP, models.PROTECT, related_name="ampps", verbose_name="VMPP (VPPID)")
    invalid = models.BooleanField("invalid (INVALID)", default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "AMPP"

    def __str__(self) -> str:
        return self.name


class ImportLog(models.Model):
    """One import of a dm+d release, with what it read."""

    release = models.CharField(max_length=40, help_text="The files' release suffix, e.g. 3010419.")
    release_date = models.DateField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the files read.")
    path = models.CharField(max_length=500)
    imported_at = models.DateTimeField(auto_now_add=True)
    lookups = models.PositiveIntegerField(default=0)
    vtms = models.PositiveIntegerField("VTMs", default=0)
    vmps = models.PositiveIntegerField("VMPs", default=0)
    amps = models.PositiveIntegerField("AMPs", default=0)
    vmpps = models.PositiveIntegerField("VMPPs", default=0)
    ampps = models.PositiveIntegerField("AMPPs", default=0)

    class Meta:
        ordering = ["-imported_at", "-id"]
        get_latest_by = "imported_at"

    def __str__(self) -> str:
        return f"dm+d {self.release} imported {self.imported_at:%Y-%m-%d %H:%M}"
