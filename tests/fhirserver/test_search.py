"""Search as a HAPI FHIR user expects it: every parameter type, modifiers, AND/OR, sorting, paging."""

from __future__ import annotations

import json
import uuid

import pytest

from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM, PRESCRIPTION_ID_SYSTEM
from tests.factories import DISPENSE_SYSTEM, ITEM_SYSTEM, make_medication_request

FHIR_JSON = "application/fhir+json"


def create(client, body: dict) -> dict:
    response = client.post(f"/store/fhir/{body['resourceType']}", json.dumps(body), content_type=FHIR_JSON)
    assert response.status_code == 201, response.content
    return response.json()


def ids(client, query: str) -> list[str]:
    response = client.get(f"/store/fhir/{query}")
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in response.json()["entry"] if e["search"]["mode"] == "match"]


def patient(family: str, given: str, nhs_number: str = "9449304130", **extra) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs_number}],
        "name": [{"family": family, "given": [given]}],
        **extra,
    }


def dispense(prescription: dict, **extra) -> dict:
    return {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": DISPENSE_SYSTEM, "value": str(uuid.uuid4())}],
        "status": "completed",
        "medicationCodeableConcept": prescription["medicationCodeableConcept"],
        "subject": prescription["subject"],
        "authorizingPrescription": [{"identifier": prescription["identifier"][0]}],
        **extra,
    }


# token


def test_token_forms_and_not(client, store):
    active = create(client, make_medication_request())
    cancelled = create(client, make_medication_request(status="cancelled"))
    assert ids(client, "MedicationRequest?status=active") == [active["id"]]
    assert ids(client, "MedicationRequest?status=active,cancelled") == [active["id"], cancelled["id"]]
    assert ids(client, "MedicationRequest?status:not=active") == [cancelled["id"]]
    assert ids(client, "MedicationRequest?code=http://snomed.info/sct|39720311000001101") == [
        active["id"],
        cancelled["id"],
    ]
    assert ids(client, "MedicationRequest?code=http://other|39720311000001101") == []


def test_group_identifier_finds_every_line_item_of_a_prescription(client, store):
    first = create(client, make_medication_request())
    second = create(client, make_medication_request())
    other = make_medication_request(
        groupIdentifier={"system": PRESCRIPTION_ID_SYSTEM, "value": "060CC0-A83008-5A2E6T"}
    )
    create(client, other)
    found = ids(client, f"MedicationRequest?group-identifier={PRESCRIPTION_ID_SYSTEM}|24F5DA-A83008-7EFE6Z")
    assert found == [first["id"], second["id"]]


# string


def test_string_is_starts_with_case_and_accent_insensitive_with_exact_and_contains(client, store):
    zoe = create(client, patient("Brontë", "Zoë"))
    create(client, patient("Smith", "Anne", "9990548609"))
    assert ids(client, "Patient?family=bron") == [zoe["id"]]
    assert ids(client, "Patient?given=ZOE") == [zoe["id"]]
    assert ids(client, "Patient?family=ront") == []
    assert ids(client, "Patient?family:contains=ONT") == [zoe["id"]]
    assert ids(client, "Patient?family:exact=Brontë") == [zoe["id"]]
    assert ids(client, "Patient?family:exact=bronte") == []
    assert ids(client, "Patient?name=zo") == [zoe["id"]]


# date


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("2024-03-15", True),
        ("2024-03", True),
        ("2024", True),
        ("eq2024-03-16", False),
        ("ne2024-03-16", True),
        ("lt2024-03-16", True),
        ("lt2024-03-15", False),
        ("le2024-03-15", True),
        ("gt2024-03-14", True),
        ("gt2024-03-15", False),
        ("ge2024-03-15", True),
        ("sa2024-03-14", True),
        ("sa2024-03-15", False),
        ("eb2024-03-16", True),
        ("eb2024-03-15", False),
        ("ap2024-03-14", True),
        ("2024-03-15T10:30:00Z", False),
    ],
)
def test_date_prefixes_and_partial_dates(client, store, query, found):
    request = create(client, make_medication_request(authoredOn="2024-03-15"))
    assert ids(client, f"MedicationRequest?authoredon={query}") == ([request["id"]] if found else [])


def test_datetime_with_time_zone_and_a_range_by_repeating(client, store):
    request = create(client, make_medication_request(authoredOn="2024-03-15T10:30:00+01:00"))
    assert ids(client, "MedicationRequest?authoredon=2024-03-15T09:30:00Z") == [request["id"]]
    assert ids(client, "MedicationRequest?authoredon=ge2024-03-01&authoredon=lt2024-04-01") == [request["id"]]
    assert ids(client, "MedicationRequest?authoredon=ge2024-04-01&authoredon=lt2024-05-01") == []


def test_last_updated(client, store):
    request = create(client, make_medication_request())
    assert ids(client, "MedicationRequest?_lastUpdated=gt2020-01-01") == [request["id"]]
    assert ids(client, "MedicationRequest?_lastUpdated=lt2020-01-01") == []


# reference


def test_reference_by_type_and_id_plain_id_absolute_url_and_identifier(client, store):
    person = create(client, patient("Jones", "Ann"))
    request = create(client, make_medication_request(subject={"reference": f"Patient/{person['id']}"}))
    logical = create(client, make_medication_request())  # subject by NHS number only
    assert ids(client, f"MedicationRequest?patient=Patient/{person['id']}") == [request["id"]]
    assert ids(client, f"MedicationRequest?subject={person['id']}") == [request["id"]]
    assert ids(client, f"MedicationRequest?subject:Patient={person['id']}") == [request["id"]]
    absolute = f"http://testserver/store/fhir/Patient/{person['id']}"
    assert ids(client, f"MedicationRequest?patient={absolute}") == [request["id"]]
    assert ids(client, f"MedicationRequest?patient:identifier={NHS_NUMBER_SYSTEM}|9449304130") == [
        logical["id"]
    ]
    assert ids(client, f"MedicationRequest?intended-dispenser:identifier={ODS_SYSTEM}|FA565") == [
        request["id"],
        logical["id"],
    ]


def test_chained_identifier_matches_logical_and_literal_references(client, store):
    person = create(client, patient("Jones", "Ann"))
    literal = create(client, make_medication_request(subject={"reference": f"Patient/{person['id']}"}))
    logical = create(client, make_medication_request())
    found = ids(client, f"MedicationRequest?patient.identifier={NHS_NUMBER_SYSTEM}|9449304130")
    assert sorted(found) == sorted([literal["id"], logical["id"]])


def test_chained_other_parameter_one_level_deep(client, store):
    person = create(client, patient("Jones", "Ann"))
    request = create(client, make_medication_request(subject={"reference": f"Patient/{person['id']}"}))
    assert ids(client, "MedicationRequest?subject:Patient.family=jon") == [request["id"]]
    assert ids(client, "MedicationRequest?patient.family=smith") == []


def test_dispense_found_by_its_prescriptions_identifier(client, store):
    request = make_medication_request()
    create(client, request)
    handed = create(client, dispense(request))
    create(client, dispense(make_medication_request()))
    identifier = request["identifier"][0]
    assert ids(client, f"MedicationDispense?prescription:identifier={ITEM_SYSTEM}|{identifier['value']}") == [
        handed["id"]
    ]
    assert ids(client, f"MedicationDispense?prescription.identifier={ITEM_SYSTEM}|{identifier['value']}") == [
        handed["id"]
    ]


# AND / OR


def test_repeated_parameters_and_and_commas_or(client, store):
    a = create(client, make_medication_request(status="active", intent="order"))
    b = create(client, make_medication_request(status="active", intent="original-order"))
    create(client, make_medication_request(status="stopped", intent="order"))
    assert ids(client, "MedicationRequest?status=active&intent=order") == [a["id"]]
    assert ids(client, "MedicationRequest?status=active&intent=order,original-order") == [a["id"], b["id"]]
    assert ids(client, "MedicationRequest?intent=order&intent=original-order") == []


# _include / _revinclude


def test_revinclude_dispenses_and_include_their_prescription(client, store):
    request_body = make_medication_request()
    request = create(client, request_body)
    handed = create(client, dispense(request_body))
    bundle = client.get(
        f"/store/fhir/MedicationRequest?_id={request['id']}&_revinclude=MedicationDispense:prescription"
    ).json()
    modes = {(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {(request["id"], "match"), (handed["id"], "include")}
    bundle = client.get(
        f"/store/fhir/MedicationDispense?_id={handed['id']}&_include=MedicationDispense:prescription"
    ).json()
    modes = {(e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {(handed["id"], "match"), (request["id"], "include")}


def test_include_patient_by_literal_reference(client, store):
    person = create(client, patient("Jones", "Ann"))
    request = create(client, make_medication_request(subject={"reference": f"Patient/{person['id']}"}))
    bundle = client.get(
        f"/store/fhir/MedicationRequest?_id={request['id']}&_include=MedicationRequest:patient"
    ).json()
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]] == [
        ("MedicationRequest", "match"),
        ("Patient", "include"),
    ]


def test_include_of_an_unknown_parameter_is_400(client, store):
    assert client.get("/store/fhir/MedicationRequest?_include=MedicationRequest:colour").status_code == 400


# sorting, paging, totals, elements


def test_sort_by_date_and_last_updated_both_ways(client, store):
    old = create(client, make_medication_request(authoredOn="2023-01-01"))
    new = create(client, make_medication_request(authoredOn="2024-01-01"))
    middle = create(client, make_medication_request(authoredOn="2023-06-01"))
    assert ids(client, "MedicationRequest?_sort=authoredon") == [old["id"], middle["id"], new["id"]]
    assert ids(client, "MedicationRequest?_sort=-authoredon") == [new["id"], middle["id"], old["id"]]
    assert ids(client, "MedicationRequest?_sort=-_lastUpdated") == [middle["id"], new["id"], old["id"]]
    assert client.get("/store/fhir/MedicationRequest?_sort=colour").status_code == 400


def follow(client, url: str) -> tuple[list[str], list[dict]]:
    seen, pages = [], []
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return seen, pages


def test_paging_across_inserts_neither_skips_nor_repeats(client, store):
    before = [create(client, make_medication_request())["id"] for _ in range(5)]
    first = client.get("/store/fhir/MedicationRequest?_count=2&_sort=-_lastUpdated").json()
    shown = [e["resource"]["id"] for e in first["entry"]]
    for _ in range(3):  # written while the client pages
        create(client, make_medication_request())
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest, _ = follow(client, following)
    assert shown + rest == list(reversed(before))


def test_previous_links_walk_back(client, store):
    made = [create(client, make_medication_request())["id"] for _ in range(5)]
    seen, pages = follow(client, "/store/fhir/MedicationRequest?_count=2")
    assert seen == made
    last = pages[-1]
    previous = next(link["url"] for link in last["link"] if link["relation"] == "previous")
    back = client.get(previous).json()
    assert [e["resource"]["id"] for e in back["entry"]] == made[2:4]
    assert not any(link["relation"] == "previous" for link in pages[0]["link"])


def test_count_total_summary_and_elements(client, store):
    for _ in range(3):
        create(client, make_medication_request())
    page = client.get("/store/fhir/MedicationRequest?_count=1").json()
    assert page["total"] == 3
    assert len(page["entry"]) == 1
    assert "total" not in client.get("/store/fhir/MedicationRequest?_total=none").json()
    counted = client.get("/store/fhir/MedicationRequest?_summary=count").json()
    assert counted["total"] == 3
    assert counted["entry"] == []
    subset = client.get("/store/fhir/MedicationRequest?_elements=status").json()["entry"][0]["resource"]
    assert set(subset) == {"resourceType", "id", "meta", "status"}
    assert subset["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_count_is_capped(client, store, settings):
    settings.FHIR_SEARCH_MAX_COUNT = 2
    for _ in range(3):
        create(client, make_medication_request())
    assert len(ids(client, "MedicationRequest?_count=100")) == 2


def test_a_forged_cursor_is_400(client, store):
    assert client.get("/store/fhir/MedicationRequest?_cursor=bm9wZQ").status_code == 400


def test_post_search_takes_a_form_body(client, store):
    request = create(client, make_medication_request(status="on-hold"))
    create(client, make_medication_request())
    response = client.post(
        "/store/fhir/MedicationRequest/_search",
        "status=on-hold",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [request["id"]]


def test_subscription_parameters(client, store):
    subscription = create(
        client,
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "worklist",
            "criteria": "MedicationRequest?status=active",
            "channel": {"type": "rest-hook", "endpoint": "https://localhost/notify"},
        },
    )
    assert ids(client, "Subscription?status=requested") == [subscription["id"]]
    assert ids(client, "Subscription?url=https://localhost/notify") == [subscription["id"]]
    assert ids(client, "Subscription?criteria=MedicationRequest") == [subscription["id"]]


def test_invalid_values_are_400_with_the_parameter(client, store):
    response = client.get("/store/fhir/MedicationRequest?authoredon=yesterday")
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["authoredon"]


def test_modifier_not_supported_for_the_type_is_reported(client, store):
    bundle = client.get("/store/fhir/MedicationRequest?status:exact=active").json()
    assert bundle["entry"][-1]["search"]["mode"] == "outcome"
