"""Following an issued prescription: its page, its token, cancelling it, and who may do what."""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote

import pytest

from exchange.models import Message
from fhirserver import medication
from tests.exchange.flows import deliver_all
from tests.pages import text_of
from tests.prescribing.conftest import NHS_NUMBER, PARACETAMOL, stored

HOSTED = "FCG71"  # the prescriber-hosted pharmacy: this node holds the record, cancels at once


@pytest.fixture
def issued(registered) -> str:
    """A two-item prescription to the peer-to-peer pharmacy; its page's URL."""
    return registered.prescribe()


@pytest.fixture
def hosted(registered) -> str:
    return registered.prescribe(codes=(PARACETAMOL,), route="other", pharmacy=HOSTED)


def test_the_token_page_shows_the_prescription_id_with_its_barcode_and_qr_code(registered, issued):
    prescription_id = issued.rsplit("/", 1)[1]
    page = registered.client.get(f"{issued}/token")
    assert page.status_code == 200
    html = page.content.decode()
    assert prescription_id in text_of(page)
    assert "Jane SMITH" in text_of(page)
    assert "Dr Asha Patel" in text_of(page)
    for image in ("token-barcode", "token-qr"):
        src = html.split(f'id="{image}" src="')[1].split('"')[0]
        assert src.startswith("data:image/svg+xml")
    barcode = html.split('id="token-barcode" src="data:image/svg+xml;base64,')[1].split('"')[0]
    assert "<svg" in base64.b64decode(barcode).decode()


def test_the_page_polls_while_open_and_answers_286_once_the_prescription_is_finished(registered, hosted):
    polled = registered.client.get(hosted, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200
    assert "<html" not in polled.content.decode()
    assert 'hx-trigger="every' in polled.content.decode()
    cancelled = registered.client.post(f"{hosted}/cancel", {"reason": "0001", "item": ""})
    assert cancelled.status_code == 302
    deliver_all()
    finished = registered.client.get(hosted, HTTP_HX_REQUEST="true")
    assert finished.status_code == 286
    assert "hx-trigger" not in finished.content.decode()
    assert "Cancelled: Prescribing error" in text_of(finished)


def test_a_poll_from_a_page_showing_old_actions_swaps_in_the_current_ones(registered, hosted):
    page = registered.client.get(hosted).content.decode()
    key = unquote(re.search(r"actions=([^&\"]*)", page).group(1))
    assert "Cancel prescription" in page
    current = registered.client.get(hosted, {"actions": key}, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-swap-oob="true"' not in current  # the page's actions are still right

    registered.client.post(f"{hosted}/cancel", {"reason": "0001", "item": ""})
    deliver_all()
    stale = registered.client.get(hosted, {"actions": key}, HTTP_HX_REQUEST="true").content.decode()
    assert '<div id="actions" hx-swap-oob="true">' in stale
    assert "Cancel prescription" not in stale  # nothing left to cancel


def test_a_cancellation_sent_twice_before_the_answer_asks_the_pharmacy_once(registered, gp):
    pushed = registered.prescribe(codes=(PARACETAMOL,))  # to the peer-to-peer pharmacy, which holds it
    for _ in range(2):  # a double click, or the form sent again while the first is on its way
        assert registered.client.post(f"{pushed}/cancel", {"reason": "0001", "item": ""}).status_code == 302
    assert Message.objects.filter(node=gp, kind="request.cancel.fetch").count() == 1
    deliver_all()
    assert [r["status"] for r in stored(gp, "MedicationRequest")] == ["cancelled"]
    assert Message.objects.filter(node=gp, kind="request.cancel").count() == 1


def test_cancelling_one_item_of_a_hosted_prescription_cancels_only_it(registered, gp):
    url = registered.prescribe(route="other", pharmacy=HOSTED)
    first, _second = stored(gp, "MedicationRequest")
    response = registered.client.post(f"{url}/cancel", {"reason": "0005", "item": medication.item_id(first)})
    assert response.status_code == 302
    assert [r["status"] for r in stored(gp, "MedicationRequest")] == ["cancelled", "active"]


def test_cancelling_without_a_reason_shows_the_error_and_cancels_nothing(registered, hosted, gp):
    response = registered.client.post(f"{hosted}/cancel", {"reason": "", "item": ""})
    assert response.status_code == 200
    assert 'href="#id_reason"' in response.content.decode()
    assert [r["status"] for r in stored(gp, "MedicationRequest")] == ["active"]


def test_cancelling_what_is_cancelled_already_says_so_not_a_500(registered, hosted):
    registered.client.post(f"{hosted}/cancel", {"reason": "0001", "item": ""})
    again = registered.client.post(f"{hosted}/cancel", {"reason": "0001", "item": ""})
    assert again.status_code == 200
    assert "no longer active" in text_of(again)


def test_a_gp_administrator_sees_but_gets_403_at_issue_and_cancel_where_the_prescriber_succeeds(
    registered, gp_administrator, gp
):
    draft = registered.start()
    registered.add(draft)
    registered.route(draft, "other", HOSTED)
    assert gp_administrator.get(f"{draft}/review").status_code == 200
    assert registered.issue(draft, gp_administrator).status_code == 403
    assert stored(gp, "MedicationRequest") == []
    issued = registered.issue(draft)
    assert issued.status_code == 302
    url = issued["Location"]
    page = gp_administrator.get(url)
    assert page.status_code == 200
    assert "/cancel" not in page.content.decode()  # no cancel form for a role that may not cancel
    assert gp_administrator.post(f"{url}/cancel", {"reason": "0001", "item": ""}).status_code == 403
    assert [r["status"] for r in stored(gp, "MedicationRequest")] == ["active"]
    assert registered.client.post(f"{url}/cancel", {"reason": "0001", "item": ""}).status_code == 302
    assert [r["status"] for r in stored(gp, "MedicationRequest")] == ["cancelled"]


def test_a_gp_administrator_cannot_start_a_prescription_or_register_a_patient(registered, gp_administrator):
    assert gp_administrator.post(f"/gp/patients/{NHS_NUMBER}/prescribe").status_code == 403
    assert gp_administrator.post("/gp/patients/new", {"nhs_number": "9990548609"}).status_code == 403
    page = gp_administrator.get(f"/gp/patients/{NHS_NUMBER}")
    assert page.status_code == 200
    assert "New prescription" not in text_of(page)


def test_a_pharmacist_gets_404_at_the_gps_screens(screens, issued):
    pharmacist = screens.as_user("pharmacist-peer-to-peer")
    for url in ("/gp/patients", f"/gp/patients/{NHS_NUMBER}", issued, f"{issued}/token", "/gp/prescriptions"):
        assert pharmacist.get(url).status_code == 404, url
    assert pharmacist.post(f"{issued}/cancel", {"reason": "0001"}).status_code == 404


def test_another_nodes_or_an_unknown_prescription_is_404(registered):
    assert registered.client.get("/gp/prescriptions/24F5DA-A83008-7EFE6Z").status_code == 404
    assert registered.client.get("/gp/patients/9990548609").status_code == 404
    assert (
        registered.client.get("/gp/prescriptions/new/00000000-0000-0000-0000-000000000000").status_code == 404
    )


def test_a_returned_item_can_be_sent_to_another_pharmacy(registered, gp, nodes):
    from dispensing.services import prescription_return

    url = registered.prescribe(codes=(PARACETAMOL,))
    deliver_all()
    prescription_return(
        node=nodes["pharmacy-peer-to-peer"], prescription_id=url.rsplit("/", 1)[1], reason_code="0002"
    )
    deliver_all()
    page = registered.client.get(url)
    assert "Returned by the pharmacy" in text_of(page)
    assert 'action="' + url + '/renominate"' in page.content.decode()
    [request] = stored(gp, "MedicationRequest")
    again = registered.client.post(f"{url}/renominate", {"item": medication.item_id(request), "pharmacy": ""})
    assert again.status_code == 200
    assert 'href="#renominate_pharmacy"' in again.content.decode()
    response = registered.client.post(
        f"{url}/renominate", {"item": medication.item_id(request), "pharmacy": "VNE51"}
    )
    assert response.status_code == 302
    assert medication.nominated_ods(stored(gp, "MedicationRequest")[0]) == "VNE51"
    assert "Re-nominated to Market Place Chemist (VNE51)" in text_of(registered.client.get(url))
