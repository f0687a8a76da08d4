"""A dm+d release loads in one transaction, idempotently, and a bad one changes nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from medicines.models import AMP, VMP, ImportLog
from medicines.selectors import medicine_get
from medicines.services import SAMPLE_RELEASE, catalogue_demo_seed, catalogue_eps_import, catalogue_import
from tests.medicines.conftest import catalogue_dump, edit

EPS_EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "eps"
DICLOFENAC, PILOCARPINE, ADENOSINE = "22480211000001104", "347208002", "35894711000001106"
NEW_VMP = """<VMP>
      <VPID>99999911000001101</VPID>
      <VTMID>414984009</VTMID>
      <NM>Oxycodone 5mg capsules</NM>
      <BASISCD>0001</BASISCD>
      <UNIT_DOSE_UOMCD>428641000</UNIT_DOSE_UOMCD>
    </VMP>
  </VMPS>"""
NEW_VMP_CONTROL_INFO = (
    "<CONTROL_INFO><VPID>99999911000001101</VPID><CATCD>0002</CATCD></CONTROL_INFO></CONTROL_DRUG_INFO>"
)


def _import(path: Path) -> str:
    out = io.StringIO()
    call_command("dmd_import", str(path), stdout=out)
    return out.getvalue()


def _error(path: Path) -> str:
    with pytest.raises(CommandError) as raised:
        _import(path)
    return str(raised.value)


def test_the_project_bundles_its_own_copy_of_the_sample_release():
    assert SAMPLE_RELEASE.is_relative_to(Path(__file__).resolve().parents[2] / "medicines")
    assert len(list(SAMPLE_RELEASE.glob("f_*2_*.xml"))) == 6
    assert (SAMPLE_RELEASE / "LICENSE-openprescribing.txt").exists()


def test_the_sample_release_imported_twice_gives_the_same_catalogue(db):
    report = _import(SAMPLE_RELEASE)
    assert "7 VMPs, 15 AMPs, 14 VMPPs, 26 AMPPs, 2859 VTMs" in report
    first = catalogue_dump()
    adenosine = VMP.objects.get(vpid=ADENOSINE)
    assert (adenosine.vtm_id, adenosine.basis_id, adenosine.form.description) == (
        "108502004",
        "0002",
        "Solution for injection",
    )
    assert (adenosine.unit_dose_uom.description, adenosine.control_drug_category_id) == ("vial", "0000")
    assert AMP.objects.get(apid="29915211000001103").invalid

    VMP.objects.filter(vpid=DICLOFENAC).update(name="Changed by hand", invalid=True)
    assert _import(SAMPLE_RELEASE) == report

    assert catalogue_dump() == first
    assert [log.vmps for log in ImportLog.objects.all()] == [7, 7]
    assert ImportLog.objects.latest().release_date.isoformat() == "2019-04-01"


def test_a_newer_release_updates_invalidates_and_adds_without_duplicates(db, release):
    catalogue_import(path=SAMPLE_RELEASE)
    before = catalogue_dump()
    vmp_file = release / "f_vmp2_3010419.xml"
    edit(vmp_file, "<NM>Diclofenac 2.32% gel</NM>", "<NM>Diclofenac diethylammonium 2.32% gel</NM>")
    edit(
        vmp_file,
        f"<VMP>\n      <VPID>{PILOCARPINE}</VPID>",
        f"<VMP>\n      <VPID>{PILOCARPINE}</VPID><INVALID>1</INVALID>",
    )
    edit(
        vmp_file,
        f"<VPID>{ADENOSINE}</VPID>\n      <CATCD>0000</CATCD>",
        f"<VPID>{ADENOSINE}</VPID><CATCD>0002</CATCD>",
    )
    edit(vmp_file, "</VMP>\n  </VMPS>", "</VMP>\n    " + NEW_VMP)
    edit(vmp_file, "</CONTROL_DRUG_INFO>", NEW_VMP_CONTROL_INFO)
    for path in release.glob("f_*.xml"):  # dated a week later, as NHSBSA names the next release
        path.rename(path.with_name(path.name.replace("010419", "080419")))

    assert "8 VMPs, 15 AMPs" in _import(release)

    assert VMP.objects.count() == 8
    assert AMP.objects.count() == 15
    assert VMP.objects.get(vpid=DICLOFENAC).name == "Diclofenac diethylammonium 2.32% gel"
    assert VMP.objects.get(vpid=PILOCARPINE).invalid
    assert medicine_get(code=ADENOSINE).controlled_drug_schedule == "2"
    new = medicine_get(code="99999911000001101")
    assert (new.name, new.unit, new.controlled_drug_schedule) == ("Oxycodone 5mg capsules", "capsule", "2")
    assert VMP.objects.filter(invalid=True).count() == 1
    assert ImportLog.objects.latest().release == "3080419"
    after = catalogue_dump()
    changed = {DICLOFENAC, PILOCARPINE, ADENOSINE, "99999911000001101"}
    assert [vmp for vmp in after.pop("VMP") if vmp["vpid"] not in changed] == [
        vmp for vmp in before.pop("VMP") if vmp["vpid"] not in changed
    ]
    assert after == before  # every other row, field by field


def test_the_same_newer_release_imported_again_changes_nothing(db, release):
    edit(release / "f_vmp2_3010419.xml", "<NM>Diclofenac 2.32% gel</NM>", "<NM>Diclofenac gel</NM>")
    for path in release.glob("f_*.xml"):
        path.rename(path.with_name(path.name.replace("010419", "080419")))
    catalogue_import(path=SAMPLE_RELEASE)
    catalogue_import(path=release)
    once = catalogue_dump()

    catalogue_import(path=release)

    assert catalogue_dump() == once
    assert VMP.objects.get(vpid=DICLOFENAC).name == "Diclofenac gel"


def _truncate(release: Path) -> None:
    packs = release / "f_ampp2_3010419.xml"  # the last file read: everything else was written first
    packs.write_bytes(packs.read_bytes()[:5000])


def _wrong_root(release: Path) -> None:
    shutil.copy(release / "f_amp2_3010419.xml", release / "f_vmpp2_3010419.xml")


def _no_quantity_unit(release: Path) -> None:
    edit(release / "f_vmpp2_3010419.xml", "<QTYVAL>5</QTYVAL>\n      <QTY_UOMCD>415818006</QTY_UOMCD>", "")


def _bad_quantity(release: Path) -> None:
    edit(release / "f_vmpp2_3010419.xml", "<QTYVAL>5</QTYVAL>", "<QTYVAL>five</QTYVAL>")


def _name_too_long(release: Path) -> None:
    edit(
        release / "f_ampp2_3010419.xml",
        "<NM>Nutrison liquid (Nutricia Ltd) 500 ml 1 x 500ml bottle",
        "<NM>" + "x" * 800,
    )


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_truncate, "f_ampp2_3010419.xml: not well-formed XML"),
        (_wrong_root, "f_vmpp2_3010419.xml: root element <ACTUAL_MEDICINAL_PRODUCTS>"),
        (_no_quantity_unit, "f_vmpp2_3010419.xml: <VMPP> 34516311000001106 has no <QTYVAL>"),
        (_bad_quantity, "f_vmpp2_3010419.xml: VMPP 34516311000001106: QTYVAL 'five' is not a pack quantity"),
        (_name_too_long, "f_ampp2_3010419.xml: AMPP 1714711000001106: name (NM) is longer than 774"),
    ],
    ids=["truncated", "wrong-root", "field-missing", "bad-quantity", "name-too-long"],
)
def test_an_invalid_file_raises_one_clear_error_and_changes_nothing(db, release, breakage, expected):
    catalogue_demo_seed()
    before = catalogue_dump()
    edit(release / "f_vmp2_3010419.xml", "<NM>Diclofenac 2.32% gel</NM>", "<NM>Renamed</NM>")
    breakage(release)

    message = _error(release)

    assert message.startswith("dm+d import failed, nothing changed: ")
    assert expected in message
    assert "\n" not in message
    assert catalogue_dump() == before
    assert ImportLog.objects.count() == 1


def test_a_missing_file_raises_one_clear_error_and_changes_nothing(db, release):
    catalogue_import(path=SAMPLE_RELEASE)
    before = catalogue_dump()
    (release / "f_vmpp2_3010419.xml").unlink()

    message = _error(release)

    assert message.startswith("dm+d import failed, nothing changed: f_vmpp2_*.xml: missing in ")
    assert "\n" not in message
    assert catalogue_dump() == before
    assert ImportLog.objects.count() == 1


def test_the_command_exits_non_zero_with_one_error_line(tmp_path):
    environment = {
        **os.environ,
        "DMED_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    manage = Path(__file__).resolve().parents[2] / "manage.py"

    done = subprocess.run(
        [sys.executable, str(manage), "dmd_import", str(tmp_path / "nowhere")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"CommandError: dm+d import failed, nothing changed: {tmp_path / 'nowhere'}: not a folder"
    ]


def test_a_product_of_an_unknown_vmp_is_refused_naming_the_file_and_row(db, release):
    nutrison = "<APID>442611000001109</APID>\n      <VPID>{}</VPID>"
    edit(release / "f_amp2_3010419.xml", nutrison.format("3549611000001100"), nutrison.format("123"))

    message = _error(release)

    assert "f_amp2_3010419.xml: AMP 442611000001109 refers to VMP 123, which is not in the release" in message
    assert catalogue_dump() == {name: [] for name in catalogue_dump()}


def test_the_demo_seed_can_run_twice_and_a_reimport_keeps_the_eps_medicines(db):
    catalogue_demo_seed()
    seeded = catalogue_dump()
    catalogue_demo_seed()
    assert catalogue_dump() == seeded
    assert ImportLog.objects.count() == 1  # the same release is not read again

    catalogue_import(path=SAMPLE_RELEASE)
    assert catalogue_dump() == seeded
    assert VMP.objects.filter(source=VMP.Source.EPS_EXAMPLES).count() == 13
    assert AMP.objects.filter(source=AMP.Source.EPS_EXAMPLES).count() == 1


def _eps_medications() -> dict[str, set[str]]:
    """Return the displays of every medication code in the EPS examples (requests and dispenses)."""
    found: dict[str, set[str]] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            for coding in node.get("medicationCodeableConcept", {}).get("coding", []):
                assert coding["system"] == "http://snomed.info/sct"
                found.setdefault(coding["code"], set()).add(coding["display"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(EPS_EXAMPLES.glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def test_every_eps_example_medicine_is_in_the_catalogue_under_one_of_its_names(db):
    catalogue_demo_seed()
    medications = _eps_medications()
    assert len(medications) == 14
    for code, displays in medications.items():
        medicine = medicine_get(code=code)
        assert medicine is not None, code
        assert medicine.name in displays
        assert medicine.unit, code
        assert medicine.unit_code, code
    sudafed = medicine_get(code="381511000001101")  # the brand a pharmacy dispensed in example 12
    assert (sudafed.kind, sudafed.generic_name, sudafed.unit) == (
        "AMP",
        "Pseudoephedrine hydrochloride 60mg tablets",
        "tablet",
    )
    assert AMP.objects.get(apid="381511000001101").name == "Sudafed Decongestant 60mg tablets"


def test_the_eps_table_fills_a_missing_category_but_not_a_releases_own(db, release):
    morphine, paracetamol = "36126811000001109", "322236009"
    vmps = release / "f_vmp2_3010419.xml"
    for vpid, name in [
        (morphine, "Morphine 15mg modified-release tablets"),
        (paracetamol, "Paracetamol tabs"),
    ]:
        edit(vmps, "</VMP>\n  </VMPS>", f"</VMP><VMP><VPID>{vpid}</VPID><NM>{name}</NM></VMP>\n  </VMPS>")
    edit(
        vmps,
        "</CONTROL_DRUG_INFO>",
        f"<CONTROL_INFO><VPID>{paracetamol}</VPID><CATCD>0000</CATCD></CONTROL_INFO></CONTROL_DRUG_INFO>",
    )
    catalogue_import(path=release)
    assert medicine_get(code=morphine).controlled_drug_schedule == "2"  # dmd_import alone fills it

    catalogue_eps_import()

    assert medicine_get(code=morphine).controlled_drug_schedule == "2"
    assert VMP.objects.get(vpid=paracetamol).name == "Paracetamol tabs"  # the release's row is kept
    assert VMP.objects.get(vpid=morphine).source == VMP.Source.RELEASE
