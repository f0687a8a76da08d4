"""FHIR XML both ways: hand-written XML resources (from the specification's XML rules, not only
a round trip through one converter) are created, read back in JSON and in XML with the same
content; searches and errors answer in XML when it is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from fhirserver.xml import resource_from_xml
from tests.factories import stored

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "xml"
XML, JSON = "application/fhir+xml", "application/fhir+json"
F = "{http://hl7.org/fhir}"


def post_xml(client, resource_type: str, body: bytes, accept: str = JSON):
    return client.post(f"/store/fhir/{resource_type}", body, content_type=XML, headers={"Accept": accept})


def values(root, path: str) -> list[str]:
    return root.xpath(f"{path}/@value", namespaces={"f": "http://hl7.org/fhir"})


def test_a_patient_written_in_xml_reads_back_in_json_and_in_xml(client, store):
    created = post_xml(client, "Patient", (FIXTURES / "patient.xml").read_bytes())
    assert created.status_code == 201, created.content
    patient = created.json()
    assert patient["name"] == [{"use": "official", "family": "Jones", "given": ["Ellie", "Mae"]}]
    assert patient["birthDate"] == "1978-06-14"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1978-06-14T09:30:00+01:00"
    assert patient["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "A"
    assert patient["active"] is True

    url = f"/store/fhir/Patient/{patient['id']}"
    as_json = client.get(url).json()
    as_xml = client.get(url, headers={"Accept": XML})
    assert as_xml.status_code == 200
    assert as_xml["Content-Type"].startswith(XML)
    root = etree.fromstring(as_xml.content)
    assert root.tag == f"{F}Patient"
    assert values(root, "f:name/f:given") == ["Ellie", "Mae"]
    assert values(root, "f:birthDate") == ["1978-06-14"]
    assert resource_from_xml(as_xml.content) == as_json  # the same content both ways
    assert client.get(url, {"_format": "xml"}).content == as_xml.content


def test_a_decimal_in_xml_keeps_its_digits(client, store):
    created = post_xml(client, "MedicationRequest", (FIXTURES / "medication-request.xml").read_bytes())
    assert created.status_code == 201, created.content
    assert b'"value":1.50' in stored().get(resource_type="MedicationRequest").text.encode()
    again = client.get(f"/store/fhir/MedicationRequest/{created.json()['id']}", headers={"Accept": XML})
    assert values(
        etree.fromstring(again.content), "f:dosageInstruction/f:doseAndRate/f:doseQuantity/f:value"
    ) == ["1.50"]


def test_a_search_answers_a_bundle_in_xml(client, store):
    post_xml(client, "Patient", (FIXTURES / "patient.xml").read_bytes())
    answer = client.get("/store/fhir/Patient", {"family": "jones", "_format": "xml"})
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    assert root.tag == f"{F}Bundle"
    assert values(root, "f:type") == ["searchset"]
    assert values(root, "f:total") == ["1"]
    assert values(root, "f:entry/f:resource/f:Patient/f:name/f:family") == ["Jones"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"<Patient xmlns='http://hl7.org/fhir'><active value='true'/>", 400, "invalid"),  # not well-formed
        (b"<Patient><active value='true'/></Patient>", 400, "invalid"),  # no FHIR namespace
        (b"<Patient xmlns='http://hl7.org/fhir'><active value='perhaps'/></Patient>", 400, "structure"),
        (
            b"<Patient xmlns='http://hl7.org/fhir'><colour value='red'/></Patient>",
            400,
            "structure",
        ),  # unknown
    ],
)
def test_bad_xml_is_refused_with_an_xml_operation_outcome_and_nothing_stored(
    client, store, body, status, code
):
    answer = post_xml(client, "Patient", body, accept=XML)
    assert answer.status_code == status
    root = etree.fromstring(answer.content)
    assert root.tag == f"{F}OperationOutcome"
    assert values(root, "f:issue/f:code") == [code]
    assert not stored().exists()


def test_an_error_is_an_xml_operation_outcome_when_xml_was_asked_for(client, store):
    answer = client.get("/store/fhir/Patient/nobody", headers={"Accept": XML})
    assert answer.status_code == 404
    root = etree.fromstring(answer.content)
    assert root.tag == f"{F}OperationOutcome"
    assert values(root, "f:issue/f:code") == ["not-found"]


def test_an_external_entity_is_never_read(client, store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-server-secret")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<Patient xmlns="http://hl7.org/fhir"><name><family value="&x;"/></name></Patient>'
    ).encode()
    answer = post_xml(client, "Patient", body)
    assert b"the-server-secret" not in answer.content
    assert all("the-server-secret" not in r.text for r in stored())


def test_an_answer_xml_cannot_carry_is_a_406_not_a_500(client, store):
    """_elements leaves out what XML's schema requires (an Observation's status): JSON can say it
    (tagged SUBSETTED), XML cannot."""
    client.post(
        "/store/fhir/Observation",
        '{"resourceType": "Observation", "status": "final", "code": {"text": "glucose"}}',
        content_type=JSON,
    )
    assert client.get("/store/fhir/Observation", {"_elements": "code"}).status_code == 200  # the control
    answer = client.get("/store/fhir/Observation", {"_elements": "code", "_format": "xml"})
    assert answer.status_code == 406
    root = etree.fromstring(answer.content)
    assert root.tag == f"{F}OperationOutcome"
    assert "ask for JSON" in values(root, "f:issue/f:diagnostics")[0]


def test_an_xml_body_over_the_limit_is_413(client, store, settings):
    settings.FHIR_MAX_BODY_BYTES = 200
    answer = post_xml(client, "Patient", (FIXTURES / "patient.xml").read_bytes(), accept=XML)
    assert answer.status_code == 413
    assert values(etree.fromstring(answer.content), "f:issue/f:code") == ["too-long"]
    assert not stored().exists()
