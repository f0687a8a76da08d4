"""Writes to the medicines catalogue: dm+d releases, the EPS examples' medicines, the demo seed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import models, transaction

from medicines.eps_table import amp_name, table_read, table_rows
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
    Source,
    Supplier,
    UnitOfMeasure,
)
from medicines.release import Release, ReleaseError, records, release_open, required

DATA = Path(__file__).resolve().parent / "data"
SAMPLE_RELEASE = DATA / "dmd"
EPS_MEDICINES = DATA / "eps_medicines.csv"
BATCH = 2000

LOOKUPS = {
    "UNIT_OF_MEASURE": UnitOfMeasure,
    "FORM": Form,
    "BASIS_OF_NAME": BasisOfName,
    "SUPPLIER": Supplier,
    "CONTROL_DRUG_CATEGORY": ControlDrugCategory,
}


@transaction.atomic
def catalogue_import(*, path: Path) -> ImportLog:
    """Import a dm+d release folder in one transaction, upserting every row by its SNOMED id."""
    release = release_open(path)
    counts = {
        "lookups": _import_lookups(release),
        "vtms": _import_vtms(release),
        "vmps": _import_vmps(release),
        "amps": _import_amps(release),
        "vmpps": _import_vmpps(release),
        "ampps": _import_ampps(release),
    }
    _eps_categories_fill(table_read(EPS_MEDICINES))
    return ImportLog.objects.create(
        release=release.name,
        release_date=release.date,
        fingerprint=release.fingerprint,
        path=str(path.resolve()),
        **counts,
    )


@transaction.atomic
def catalogue_eps_import(*, path: Path = EPS_MEDICINES) -> int:
    """Add the EPS examples' medicines; a release's own rows keep all but a missing category."""
    rows = table_rows(path)
    generic = [row for row in rows if not row["vmp"]]
    branded = [row for row in rows if row["vmp"]]
    released = _released(VMP, generic)
    for row in generic:
        if row["code"] not in released:
            VMP.objects.update_or_create(
                vpid=row["code"],
                defaults={
                    "name": row["name"],
                    "invalid": False,
                    "unit_dose_uom_id": row["unit_code"],
                    "control_drug_category_id": row["control_drug_category"],
                    "source": Source.EPS_EXAMPLES,
                },
            )
    _eps_categories_fill(generic)
    released = _released(AMP, branded)
    for row in branded:
        if row["code"] not in released:
            AMP.objects.update_or_create(
                apid=row["code"],
                defaults={
                    "name": amp_name(row["name"]),
                    "description": row["name"],
                    "vmp_id": row["vmp"],
                    "supplier_id": row["supplier_code"],
                    "invalid": False,
                    "source": Source.EPS_EXAMPLES,
                },
            )
    return len(rows)


@transaction.atomic
def catalogue_demo_seed() -> None:
    """Load the bundled sample release (unless it or a newer one is loaded) and the EPS medicines."""
    release = release_open(SAMPLE_RELEASE)
    loaded = ImportLog.objects.filter(
        models.Q(fingerprint=release.fingerprint) | models.Q(release_date__gt=release.date or date.min)
    )
    if not loaded.exists():
        catalogue_import(path=SAMPLE_RELEASE)
    catalogue_eps_import()


def _import_lookups(release: Release) -> int:
    path = release.files["lookup"]
    rows: dict[str, list[models.Model]] = {section: [] for section in LOOKUPS}
    for section, tag, fields in records(path, "lookup", {"INFO"}):
        if section in LOOKUPS:
            code, description = required(path, tag, fields, "CD", "DESC")
            rows[section].append(LOOKUPS[section](code=code, description=description))
    return sum(_upsert(LOOKUPS[section], objs) for section, objs in rows.items())


def _import_vtms(release: Release) -> int:
    path = release.files["vtm"]

    def vtms() -> Iterator[VTM]:
        for _, tag, fields in records(path, "vtm", {"VTM"}):
            vtmid, name = required(path, tag, fields, "VTMID", "NM")
            yield VTM(vtmid=vtmid, name=name, invalid=fields.get("INVALID") == "1")

    return _upsert(VTM, vtms())


def _import_vmps(release: Release) -> int:
    """Read the VMPs, then their forms and controlled-drug categories, which follow in the file."""
    path = release.files["vmp"]
    vmps: dict[str, VMP] = {}
    for _, tag, fields in records(path, "vmp", {"VMP", "DFORM", "CONTROL_INFO"}):
        vpid = required(path, tag, fields, "VPID")[0]
        if tag == "VMP":
            vmps[vpid] = VMP(
                vpid=vpid,
                name=required(path, tag, fields, "NM")[0],
                vtm_id=fields.get("VTMID") or None,
                invalid=fields.get("INVALID") == "1",
                basis_id=fields.get("BASISCD") or None,
                unit_dose_uom_id=fields.get("UNIT_DOSE_UOMCD") or None,
                source=VMP.Source.RELEASE,
            )
        elif vpid not in vmps:
            raise ReleaseError(f"{path.name}: <{tag}> for VPID {vpid}, which has no <VMP>")
        elif tag == "DFORM":
            vmps[vpid].form_id = required(path, tag, fields, "FORMCD")[0]
        else:
            vmps[vpid].control_drug_category_id = required(path, tag, fields, "CATCD")[0]
    references = {
        "vtm_id": VTM,
        "basis_id": BasisOfName,
        "form_id": Form,
        "unit_dose_uom_id": UnitOfMeasure,
        "control_drug_category_id": ControlDrugCategory,
    }
    _check_references(path, vmps.values(), references)
    return _upsert(VMP, vmps.values())


def _import_amps(release: Release) -> int:
    path = release.files["amp"]

    def amps() -> Iterator[AMP]:
        for _, tag, fields in records(path, "amp", {"AMP"}):
            apid, vpid, name, description = required(path, tag, fields, "APID", "VPID", "NM", "DESC")
            yield AMP(
                apid=apid,
                vmp_id=vpid,
                name=name,
                description=description,
                supplier_id=fields.get("SUPPCD") or None,
                invalid=fields.get("INVALID") == "1",
            )

    return _upsert(AMP, amps(), check={"vmp_id": VMP, "supplier_id": Supplier}, path=path)


def _import_vmpps(release: Release) -> int:
    path = release.files["vmpp"]

    def vmpps() -> Iterator[VMPP]:
        for _, tag, fields in records(path, "vmpp", {"VMPP"}):
            vppid, vpid, name, quantity, uom = required(
                path, tag, fields, "VPPID", "VPID", "NM", "QTYVAL", "QTY_UOMCD"
            )
            yield VMPP(
                vppid=vppid,
                vmp_id=vpid,
                name=name,
                quantity=_quantity(path, vppid, quantity),
                quantity_uom_id=uom,
                invalid=fields.get("INVALID") == "1",
            )

    return _upsert(VMPP, vmpps(), check={"vmp_id": VMP, "quantity_uom_id": UnitOfMeasure}, path=path)


def _quantity(path: Path, vppid: str, text: str) -> Decimal:
    """Return a pack's QTYVAL as a number that fits its column, or fail naming the pack."""
    field = VMPP._meta.get_field("quantity")
    try:
        quantity = Decimal(text).quantize(Decimal(1).scaleb(-field.decimal_places))
    except (InvalidOperation, ValueError):
        quantity = None
    if (
        quantity is None
        or not quantity.is_finite()
        or quantity < 0
        or len(quantity.as_tuple().digits) > field.max_digits
    ):
        raise ReleaseError(f"{path.name}: VMPP {vppid}: QTYVAL {text!r} is not a pack quantity")
    return quantity


def _import_ampps(release: Release) -> int:
    path = release.files["ampp"]

    def ampps() -> Iterator[AMPP]:
        for _, tag, fields in records(path, "ampp", {"AMPP"}):
            appid, apid, vppid, name = required(path, tag, fields, "APPID", "APID", "VPPID", "NM")
            yield AMPP(
                appid=appid, amp_id=apid, vmpp_id=vppid, name=name, invalid=fields.get("INVALID") == "1"
            )

    return _upsert(AMPP, ampps(), check={"amp_id": AMP, "vmpp_id": VMPP}, path=path)


def _upsert(
    model: type[models.Model],
    objs: Iterable[models.Model],
    *,
    check: dict[str, type[models.Model]] | None = None,
    path: Path | None = None,
) -> int:
    """Insert or update rows by primary key in batches, checking their values and references first."""
    fields = [field.name for field in model._meta.concrete_fields if not field.primary_key]
    known = _known(check or {})
    count, batch = 0, {}

    def flush() -> None:
        _check_lengths(path, batch.values())
        if check:
            _check_references(path, batch.values(), check, known)
        model.objects.bulk_create(
            batch.values(), update_conflicts=True, unique_fields=[model._meta.pk.name], update_fields=fields
        )

    for obj in objs:
        batch[obj.pk] = obj  # an id repeated in one file: the last one wins
        if len(batch) == BATCH:
            flush()
            count, batch = count + len(batch), {}
    if batch:
        flush()
    return count + len(batch)


def _check_lengths(path: Path | None, objs: Iterable[models.Model]) -> None:
    """Fail, naming the file and row, when a text is longer than its column (PostgreSQL would refuse it)."""
    for obj in objs:
        for field in obj._meta.concrete_fields:
            value = getattr(obj, field.attname)
            if (
                isinstance(field, models.CharField)
                and isinstance(value, str)
                and len(value) > field.max_length
            ):
                where = f"{path.name}: " if path else ""
                raise ReleaseError(
                    f"{where}{obj._meta.verbose_name} {obj.pk}: {field.verbose_name} is longer than "
                    f"{field.max_length} characters"
                )


def _known(targets: dict[str, type[models.Model]]) -> dict[str, set[str]]:
    return {attname: set(target.objects.values_list("pk", flat=True)) for attname, target in targets.items()}


def _check_references(
    path: Path,
    objs: Iterable[models.Model],
    targets: dict[str, type[models.Model]],
    known: dict[str, set[str]] | None = None,
) -> None:
    """Fail, naming the file and row, when a row refers to a code the catalogue does not have."""
    known = known if known is not None else _known(targets)
    for obj in objs:
        for attname, target in targets.items():
            value = getattr(obj, attname)
            if value is not None and value not in known[attname]:
                name = type(obj)._meta.verbose_name
                raise ReleaseError(
                    f"{path.name}: {name} {obj.pk} refers to {target._meta.verbose_name} {value}, "
                    "which is not in the release"
                )


def _released(model: type[VMP | AMP], rows: list[dict[str, str]]) -> set[str]:
    """Return the codes of these rows that a dm+d release has loaded: the table leaves those alone."""
    codes = [row["code"] for row in rows]
    return set(model.objects.filter(pk__in=codes, source=Source.RELEASE).values_list("pk", flat=True))


def _eps_categories_fill(rows: Iterable[dict[str, str]]) -> None:
    """Give a release's VMP that has no controlled-drug category the table's, where it is known."""
    categories = {row["code"]: row["control_drug_category"] for row in rows if not row.get("vmp")}
    known = set(ControlDrugCategory.objects.filter(pk__in=categories.values()).values_list("pk", flat=True))
    missing = VMP.objects.filter(
        vpid__in=categories, source=VMP.Source.RELEASE, control_drug_category__isnull=True
    )
    for vmp in missing:
        if categories[vmp.vpid] in known:
            vmp.control_drug_category_id = categories[vmp.vpid]
            vmp.save(update_fields=["control_drug_category"])
