"""The pharmacist's screens over the Django test client: the worklist, finding a prescription by
its token, starting, dispensing and returning it, and what was dispensed. No worker runs: the
tests deliver the outbox themselves, in order, as a worker would."""

from __future__ import annotations

import re

import pytest

from fhirserver import jsonio, medication
from fhirserver.models import Resource
from prescribing import services as prescribing
from tests.exchange.flows import PARACETAMOL, deliver_all, dispenses_at, held_at, issue
from tests.pages import text_of

AMOXICILLIN = prescribing.Item(
    "39732311000001104", "Amoxicillin 250mg capsules", 21, "capsule", "One three times a day"
)
P2P = "pharmacy-peer-to-peer"
SHARED = "pharmacy-shared-record"


def prescription_id(records: list[Resource]) -> str:
    return medication.group_id(jsonio.loads(records[0].text))


@pytest.fixture
def pharmacist(screens):
    return screens.as_user("pharmacist-peer-to-peer")


@pytest.fixture
def arrived(nodes) -> str:
    """A two-item prescription issued to the peer-to-peer pharmacy and delivered there."""
    records = issue(nodes, P2P, items=(PARACETAMOL, AMOXICILLIN))
    deliver_all()
    return prescription_id(records)


def test_the_worklist_lists_an_arrived_prescription_once_to_be_dispensed(pharmacist, arrived):
    page = pharmacist.get(f"/{P2P}/worklist")
    assert page.status_code == 200
    text = text_of(page)
    assert text.count(arrived) == 1
    assert "Paracetamol 500mg soluble tablets" in text
    assert "Amoxicillin 250mg capsules" in text
    assert "To be dispensed" in text
    poll = pharmacist.get(f"/{P2P}/worklist", HTTP_HX_REQUEST="true")
    assert "<html" not in poll.content.decode()
    assert arrived in poll.content.decode()


def test_a_poll_of_an_unchanged_worklist_or_prescription_swaps_nothing_and_a_change_swaps_it_in(
    pharmacist, nodes, arrived
):
    for url in (f"/{P2P}/worklist", f"/{P2P}/dispensing/{arrived}"):
        page = pharmacist.get(url).content.decode()
        seen = re.search(r"seen=([0-9a-f]{16})", page).group(1)
        assert pharmacist.get(url, {"seen": seen}, HTTP_HX_REQUEST="true").status_code == 204
        assert pharmacist.get(url, {"seen": "0" * 16}, HTTP_HX_REQUEST="true").status_code == 200
    pharmacist.post(f"/{P2P}/dispensing/{arrived}/start")
    changed = pharmacist.get(f"/{P2P}/dispensing/{arrived}", {"seen": seen}, HTTP_HX_REQUEST="true")
    assert changed.status_code == 200
    assert "With dispenser" in text_of(changed)


def test_start_then_dispense_each_item_with_quantity_and_note_moves_it_to_dispensed(
    pharmacist, nodes, arrived
):
    pharmacy = nodes[P2P]
    page = pharmacist.get(f"/{P2P}/dispensing/{arrived}")
    assert "Start dispensing" in text_of(page)

    started = pharmacist.post(f"/{P2P}/dispensing/{arrived}/start", follow=True)
    assert "Dispensing started" in text_of(started)
    assert sorted(d["status"] for d in dispenses_at(pharmacy)) == ["in-progress", "in-progress"]
    assert "With dispenser" in text_of(pharmacist.get(f"/{P2P}/worklist?status=with-dispenser"))

    page = pharmacist.get(f"/{P2P}/dispensing/{arrived}")
    items = re.findall(
        rf"/{P2P}/dispensing/{re.escape(arrived)}/items/([0-9a-f-]+)/dispense", page.content.decode()
    )
    assert len(items) == 2
    first = pharmacist.post(
        f"/{P2P}/dispensing/{arrived}/items/{items[0]}/dispense", {"quantity": "30", "note": "Half now"}
    )
    assert first.status_code == 302
    pharmacist.post(f"/{P2P}/dispensing/{arrived}/items/{items[1]}/dispense", {"quantity": "21"})

    done = {medication.prescribed_item(d): d for d in dispenses_at(pharmacy)}
    assert {d["status"] for d in done.values()} == {"completed"}
    assert done[items[0]]["quantity"]["value"] == 30
    assert done[items[0]]["note"] == [{"text": "Half now"}]
    text = text_of(pharmacist.get(f"/{P2P}/dispensing/{arrived}"))
    assert "Supplied 30 tablet" in text
    assert "Note: Half now" in text
    assert "Owing 30 tablet" in text
    # 30 of the 60 is a part supply: the prescription is owing, still to do, until the rest goes.
    assert arrived in text_of(pharmacist.get(f"/{P2P}/worklist?status=owing"))
    form = text_of(pharmacist.get(f"/{P2P}/dispensing/{arrived}/items/{items[0]}/dispense"))
    assert "Supply the rest of Paracetamol" in form
    rest = pharmacist.post(f"/{P2P}/dispensing/{arrived}/items/{items[0]}/dispense", {"quantity": "31"})
    assert "cannot be more than still owed (30 tablet)" in text_of(rest)
    pharmacist.post(f"/{P2P}/dispensing/{arrived}/items/{items[0]}/dispense", {"quantity": "30"})
    assert arrived not in text_of(pharmacist.get(f"/{P2P}/worklist"))  # not "to do" any more
    assert arrived in text_of(pharmacist.get(f"/{P2P}/worklist?status=dispensed"))
    assert arrived in text_of(pharmacist.get(f"/{P2P}/dispensed", {"q": "944 930 4130"}))
    assert arrived in text_of(pharmacist.get(f"/{P2P}/dispensed", {"q": arrived.lower()}))


@pytest.mark.parametrize(
    ("quantity", "error"),
    [("0", "The quantity supplied must be more than 0"), ("61", "cannot be more than prescribed")],
)
def test_a_wrong_quantity_shows_the_error_summary_and_stores_nothing(
    pharmacist, nodes, arrived, quantity, error
):
    page = pharmacist.get(f"/{P2P}/dispensing/{arrived}")
    item = re.search(r"/items/([0-9a-f-]+)/dispense", page.content.decode()).group(1)
    answer = pharmacist.post(f"/{P2P}/dispensing/{arrived}/items/{item}/dispense", {"quantity": quantity})
    assert answer.status_code == 200
    body = answer.content.decode()
    assert "There is a problem" in body
    assert error in body
    assert 'href="#id_quantity"' in body
    assert "<title>Error: " in body
    assert dispenses_at(nodes[P2P]) == []


def test_return_with_a_reason_declines_each_open_item(pharmacist, nodes, arrived):
    missing = pharmacist.post(f"/{P2P}/dispensing/{arrived}/return", {"reason": ""})
    assert "Select why it is not dispensed" in text_of(missing)
    assert dispenses_at(nodes[P2P]) == []

    answer = pharmacist.post(f"/{P2P}/dispensing/{arrived}/return", {"reason": "0002"}, follow=True)
    assert "Returned to the prescriber" in text_of(answer)
    declined = dispenses_at(nodes[P2P])
    assert [d["status"] for d in declined] == ["declined", "declined"]
    assert {d["statusReasonCodeableConcept"]["coding"][0]["code"] for d in declined} == {"0002"}
    assert "Clinically unsuitable (0002)" in text_of(pharmacist.get(f"/{P2P}/dispensing/{arrived}"))


def test_find_by_token_checks_the_check_character_and_says_not_found(pharmacist, arrived):
    wrong = arrived[:-1] + ("A" if arrived[-1] != "A" else "B")
    answer = pharmacist.post(f"/{P2P}/find", {"prescription_id": wrong})
    body = answer.content.decode()
    assert "check character" in body
    assert 'href="#id_prescription_id"' in body

    check = pharmacist.get(f"/{P2P}/find/check", {"prescription_id": wrong}, HTTP_HX_REQUEST="true")
    assert "check character" in check.content.decode()
    good = pharmacist.get(f"/{P2P}/find/check", {"prescription_id": arrived}, HTTP_HX_REQUEST="true")
    assert "The check character matches" in good.content.decode()

    unknown = medication.prescription_id(ods_code="A83008", sequence=99999)
    assert "No prescription" in text_of(pharmacist.post(f"/{P2P}/find", {"prescription_id": unknown}))

    found = pharmacist.post(f"/{P2P}/find", {"prescription_id": arrived.replace("-", "").lower()})
    assert found.status_code == 302
    assert found.url.endswith(f"/dispensing/{arrived}")


def test_a_token_with_no_nomination_is_fetched_from_the_shared_record_then_refused_to_a_second_pharmacy(
    screens, nodes
):
    records = prescribing.prescription_issue(
        node=nodes["gp"], nhs_number="9449304130", items=[PARACETAMOL], pharmacy_ods=None
    )
    deliver_all()
    pid = prescription_id(records)
    first = screens.as_user("pharmacist-shared-record")
    found = first.post(f"/{SHARED}/find", {"prescription_id": pid})
    assert found.status_code == 302
    assert held_at(nodes[SHARED], records[0]) is not None
    first.post(f"/{SHARED}/dispensing/{pid}/start")

    second = screens.as_user("pharmacist-shared-record-events")
    refused = second.post("/pharmacy-shared-record-events/find", {"prescription_id": pid})
    assert "is with another pharmacy" in text_of(refused)
    assert held_at(nodes["pharmacy-shared-record-events"], records[0]) is None


def test_a_cancelled_prescription_says_so_and_offers_nothing_to_do(pharmacist, nodes, arrived):
    for record in Resource.objects.filter(node=nodes["gp"], resource_type="MedicationRequest"):
        prescribing.prescription_cancel(node=nodes["gp"], request=record, reason_code="0001")
    deliver_all()
    text = text_of(pharmacist.get(f"/{P2P}/dispensing/{arrived}"))
    assert "The prescriber has cancelled this prescription" in text
    assert "Start dispensing" not in text
    assert arrived in text_of(pharmacist.get(f"/{P2P}/worklist?status=cancelled"))
    finished = pharmacist.get(f"/{P2P}/dispensing/{arrived}", HTTP_HX_REQUEST="true")
    assert finished.status_code == 286


def test_another_pharmacys_pharmacist_gets_404_and_an_administrator_403_at_start(screens, nodes, arrived):
    outsider = screens.as_user("pharmacist-dispenser-hosted")
    assert outsider.get(f"/{P2P}/dispensing/{arrived}").status_code == 404
    assert outsider.post(f"/{P2P}/dispensing/{arrived}/start").status_code == 404
    assert outsider.get("/gp/patients").status_code == 404
    from django.contrib.auth import get_user_model

    from nodes.models import Membership

    admin = get_user_model().objects.create_user("p2p-admin", password="x")
    Membership.objects.create(user=admin, node=nodes[P2P], role=Membership.Role.ADMINISTRATOR)
    client = screens.as_user("p2p-admin")
    assert client.get(f"/{P2P}/dispensing/{arrived}").status_code == 200
    assert client.post(f"/{P2P}/dispensing/{arrived}/start").status_code == 403
    assert dispenses_at(nodes[P2P]) == []
    assert (
        screens.as_user("pharmacist-peer-to-peer").post(f"/{P2P}/dispensing/{arrived}/start").status_code
        == 302
    )
    assert [d["status"] for d in dispenses_at(nodes[P2P])] == ["in-progress", "in-progress"]
