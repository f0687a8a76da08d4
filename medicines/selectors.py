"""Reads of the medicines catalogue: search and lookup by code, as prescribers see medicines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from medicines.models import AMP, AMPP, VMP, VMPP, UnitOfMeasure


@dataclass(frozen=True)
class Medicine:
    code: str  # SNOMED CT: the VPID or APID
    name: str  # an AMP's is its description, which names the supplier
    kind: str  # "VMP" or "AMP"
    generic_name: str
    unit: str  # e.g. "tablet", "ml", "patch"; "" if unknown
    unit_code: str  # SNOMED CT code of that unit of measure; "" if unknown
    controlled_drug_schedule: str  # "" for none, else "1" ... "5"
    pack_sizes: tuple[Decimal, ...]  # quantities, in `unit`, of its packs


def medicine_search(*, query: str, limit: int = 10) -> list[Medicine]:
    """Return valid medicines whose name holds every word of the query: generic ones first, by name."""
    words = query.split()
    if not words or limit <= 0:
        return []
    vmps = VMP.objects.filter(invalid=False)
    amps = AMP.objects.filter(invalid=False)
    for word in words:
        vmps = vmps.filter(name__icontains=word)
        amps = amps.filter(description__icontains=word)
    found = _vmp_medicines(vmps.order_by("name", "vpid")[:limit])
    if len(found) < limit:
        found += _amp_medicines(amps.order_by("description", "apid")[: limit - len(found)])
    return found


def medicine_get(*, code: str) -> Medicine | None:
    """Return the VMP or AMP with this SNOMED CT code (valid or not), or None."""
    return next(
        iter(_vmp_medicines(VMP.objects.filter(vpid=code)) or _amp_medicines(AMP.objects.filter(apid=code))),
        None,
    )


def _packs() -> Prefetch:
    return Prefetch(
        "vmpps",
        VMPP.objects.filter(invalid=False).select_related("quantity_uom").order_by("quantity", "vppid"),
    )


def _vmp_medicines(vmps: QuerySet[VMP]) -> list[Medicine]:
    vmps = vmps.select_related("unit_dose_uom", "control_drug_category").prefetch_related(_packs())
    return [_medicine(vmp, vmp.name, "VMP", vmp, vmp.vmpps.all()) for vmp in vmps]


def _amp_medicines(amps: QuerySet[AMP]) -> list[Medicine]:
    amps = amps.select_related("vmp__unit_dose_uom", "vmp__control_drug_category").prefetch_related(
        Prefetch("vmp__vmpps", _packs().queryset),
        Prefetch("ampps", AMPP.objects.filter(invalid=False).select_related("vmpp__quantity_uom")),
    )
    medicines = []
    for amp in amps:
        packs = sorted({ampp.vmpp for ampp in amp.ampps.all() if not ampp.vmpp.invalid}, key=_pack_order)
        medicines.append(_medicine(amp, amp.description, "AMP", amp.vmp, packs or amp.vmp.vmpps.all()))
    return medicines


def _medicine(product: VMP | AMP, name: str, kind: str, vmp: VMP, packs: Iterable[VMPP]) -> Medicine:
    """Take the unit of most of its packs (else its unit dose) and the pack sizes in that unit."""
    packs = list(packs)
    units = Counter(pack.quantity_uom for pack in packs)
    uom: UnitOfMeasure | None = units.most_common(1)[0][0] if units else vmp.unit_dose_uom
    category = vmp.control_drug_category
    return Medicine(
        code=product.pk,
        name=name,
        kind=kind,
        generic_name=vmp.name,
        unit=uom.description if uom else "",
        unit_code=uom.code if uom else "",
        controlled_drug_schedule=category.schedule if category else "",
        pack_sizes=tuple(sorted({_plain(p.quantity) for p in packs if p.quantity_uom == uom})),
    )


def _pack_order(pack: VMPP) -> tuple[Decimal, str]:
    return pack.quantity, pack.vppid


def _plain(quantity: Decimal) -> Decimal:
    """Drop the stored decimal places a whole quantity does not need (28.00 -> 28)."""
    return quantity.quantize(Decimal(1)) if quantity == quantity.to_integral_value() else quantity.normalize()
