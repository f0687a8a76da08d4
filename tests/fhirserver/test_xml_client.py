"""FHIR XML through an independent implementation, against a live server: FHIR.js (the npm `fhir`
package, driven by tests/xmlclient/client.js) writes the XML the server must accept and reads the
XML it answers, so the server's XML is checked by a converter other than its own
(fhir.resources). Needs node and tests/xmlclient/node_modules (`make test` installs them with npm):
without them these tests are skipped, unless DMED_REQUIRE_BROWSER (as in CI) makes them fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from fhirserver import jsonio
from tests.eps import EPS_DIR, medication_resources
from tests.factories import bearer

CLIENT_DIR = Path(__file__).resolve().parent.parent / "xmlclient"
XML = "application/fhir+xml"
UCUM = "http://unitsofmeasure.org"
ITEM_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-item-number"
ORDER_SYSTEM = "https://fhir.nhs.uk/Id/prescription-order-number"


def missing() -> str | None:
    """Why FHIR.js cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (CLIENT_DIR / "node_modules" / "fhir").is_dir():
        return "tests/xmlclient/node_modules is missing (make test runs npm ci there when npm exists)"
    return None


# As the browser tests: left out in one line without their tools, unless DMED_REQUIRE_BROWSER (as
# in CI), where the fixture fails instead.
if missing() and not os.environ.get("DMED_REQUIRE_BROWSER"):
    pytest.skip(f"FHIR.js tests skipped: {missing()}", allow_module_level=True)


@pytest.fixture
def fhirjs(store_base):
    """Run the FHIR.js client against the store node: fhirjs("read", "Patient/1") -> its answer,
    with decimals as Decimal (1.50 keeps its digits)."""
    if reason := missing():
        pytest.fail(f"{reason}, and DMED_REQUIRE_BROWSER says the FHIR.js tests must run")
    environment = os.environ | {
        "FHIR_BASE": store_base,
        "FHIR_TOKEN": bearer("store")["Authorization"].removeprefix("Bearer "),
    }

    def run(*args: str, resource: dict | None = None) -> dict:
        done = subprocess.run(
            ["node", str(CLIENT_DIR / "client.js"), *args],
            input=None if resource is None else jsonio.dumps(resource),
            capture_output=True,
            text=True,
            timeout=60,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return jsonio.loads(done.stdout)

    return run


@pytest.fixture
def read_json(store_base):
    """The JSON the server answers for a path (decimals as Decimal)."""

    def read(path: str, **params) -> dict:
        answer = requests.get(f"{store_base}/{path}", params=params, headers=bearer("store"), timeout=30)
        assert answer.status_code == 200, answer.text
        return jsonio.loads(answer.content)

    return read


def eps_example(name: str) -> list[dict]:
    return medication_resources(EPS_DIR / name)


def without_id_and_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


def test_a_prescription_fhirjs_writes_in_xml_is_created_and_reads_back_as_it_does_in_json(fhirjs, read_json):
    """An EPS repeat-dispensing item (nested extensions, a dateTime, decimals), with a dose of
    0.20 mL (10 mg of the 10mg/0.2ml syringe) whose trailing zero must survive."""
    (sent,) = eps_example("05-order-sc-outpatient-erd-1item.json")
    sent.pop("id")
    dose = sent["dosageInstruction"][0]["doseAndRate"][0]
    dose["doseQuantity"] = {"value": Decimal("0.20"), "unit": "millilitre", "system": UCUM, "code": "mL"}

    created = fhirjs("create", resource=sent)
    assert created["sent"].startswith('<?xml version="1.0" encoding="UTF-8"?><MedicationRequest xmlns=')
    assert '<doseQuantity><value value="0.20"/>' in created["sent"]  # FHIR.js wrote the digits
    assert created["status"] == 201, created
    assert created["headers"]["content-type"].startswith(XML)
    logical_id = created["resource"]["id"]
    assert created["headers"]["location"].endswith(f"/MedicationRequest/{logical_id}/_history/1")

    read = fhirjs("read", f"MedicationRequest/{logical_id}")
    assert read["status"] == 200
    assert read["headers"]["content-type"].startswith(XML)
    assert read["headers"]["etag"] == 'W/"1"'
    as_json = read_json(f"MedicationRequest/{logical_id}")
    # The same content both ways, meta.lastUpdated's text included.
    assert read["resource"] == as_json
    assert read["resource"] == created["resource"]
    assert without_id_and_meta(as_json) == sent
    for resource in (read["resource"], as_json):
        assert str(resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]) == "0.20"
    repeat = read["resource"]["extension"][1]
    assert repeat["extension"] == [{"url": "authorisationExpiryDate", "valueDateTime": "2024-11-30"}]
    assert read["resource"]["dispenseRequest"]["validityPeriod"]["end"] == "2021-10-03T23:59:59Z"


def test_a_search_answers_a_bundle_fhirjs_reads_with_the_resources_inside(fhirjs, read_json):
    """The four items of one EPS prescription: by item identifier one, by Prescription ID all."""
    items = eps_example("01-order-pc-acute-nominated-4items.json")
    ids = [fhirjs("create", resource=item)["resource"]["id"] for item in items]
    second = items[1]["identifier"][0]["value"]

    found = fhirjs("search", "MedicationRequest", f"identifier={ITEM_SYSTEM}|{second}")
    assert found["status"] == 200
    assert found["headers"]["content-type"].startswith(XML)
    bundle = found["resource"]
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 1
    assert len(bundle["entry"]) == 1
    (entry,) = bundle["entry"]
    assert entry["fullUrl"].endswith(f"/MedicationRequest/{ids[1]}")
    assert entry["search"] == {"mode": "match"}
    assert entry["resource"] == read_json(f"MedicationRequest/{ids[1]}")

    group = items[0]["groupIdentifier"]["value"]
    everything = fhirjs(
        "search", "MedicationRequest", f"group-identifier={ORDER_SYSTEM}|{group}", "_sort=_id", "_count=3"
    )["resource"]
    assert everything["total"] == 4
    assert len(everything["entry"]) == 3
    assert [link["relation"] for link in everything["link"]] == ["self", "next"]
    as_json = read_json(
        "MedicationRequest", **{"group-identifier": f"{ORDER_SYSTEM}|{group}", "_sort": "_id"}
    )
    assert {e["resource"]["id"] for e in as_json["entry"]} == set(ids)
    assert [e["resource"] for e in everything["entry"]] == [e["resource"] for e in as_json["entry"][:3]]


def test_a_missing_resource_is_an_xml_operation_outcome_fhirjs_reads(fhirjs):
    answer = fhirjs("read", "MedicationRequest/404404")
    assert answer["status"] == 404
    assert answer["headers"]["content-type"].startswith(XML)
    outcome = answer["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error"
    assert issue["code"] == "not-found"
    assert "404404" in issue["diagnostics"]


def test_an_invalid_prescription_in_xml_is_refused_with_an_xml_operation_outcome(fhirjs, read_json):
    """EPS example 17: a Prescription ID whose check character is wrong, sent as FHIR.js's XML."""
    (sent,) = eps_example("17-order-invalid-checksum-400.json")
    answer = fhirjs("create", resource=sent)
    assert answer["status"] == 422
    assert answer["headers"]["content-type"].startswith(XML)
    outcome = answer["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in outcome["issue"]] == ["business-rule"]
    assert "invalid checksum" in outcome["issue"][0]["diagnostics"]
    assert read_json("MedicationRequest")["total"] == 0


def test_a_patient_with_extensions_on_primitives_round_trips_through_fhirjs(fhirjs, read_json):
    """Extensions on the resource, on a primitive (birthDate's birth time) and on each of a list
    of primitives (given names, FHIR JSON's `_given`). Not on only some of the list: FHIR.js 4.12.0
    turns that XML into wrong JSON (a short `_given`) or fails (`[null, {…}]`)."""
    sent = {
        "resourceType": "Patient",
        "extension": [
            {
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                "valueCodeableConcept": {
                    "coding": [
                        {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory", "code": "A"}
                    ]
                },
            }
        ],
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449304130"}],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": "Jones",
                "given": ["Ellie", "Mae"],
                "_given": [
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                "valueCode": "BR",
                            }
                        ]
                    },
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                "valueCode": "CL",
                            }
                        ]
                    },
                ],
            }
        ],
        "gender": "female",
        "birthDate": "1978-06-14",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1978-06-14T09:30:00+01:00",
                }
            ]
        },
    }
    created = fhirjs("create", resource=sent)
    assert created["status"] == 201, created
    assert (
        '<birthDate value="1978-06-14"><extension url="http://hl7.org/fhir/StructureDefinition/'
        'patient-birthTime"><valueDateTime value="1978-06-14T09:30:00+01:00"/></extension></birthDate>'
    ) in created["sent"]
    logical_id = created["resource"]["id"]

    read = fhirjs("read", f"Patient/{logical_id}")["resource"]
    assert without_id_and_meta(read) == sent
    assert read == read_json(f"Patient/{logical_id}")
