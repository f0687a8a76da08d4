"""Finding a prescription by its token (the Prescription ID, typed or scanned): held here, or
fetched from the shared record while the pharmacist waits."""

from __future__ import annotations

from urllib.parse import urlencode

from django.db import transaction

from exchange import http
from exchange.copies import copy_store
from exchange.models import SHARED_RECORDS, Partner
from exchange.remote import broker_for
from exchange.services import attempt_log, partner_headers
from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource
from fhirserver.nhs import PRESCRIPTION_ID_SYSTEM, prescription_id_error, prescription_id_normalised
from fhirserver.selectors import requests_for_prescription
from nodes.models import Node


def prescription_find(*, node: Node, prescription_id: str) -> list[Resource]:
    """Return a prescription's requests found by its ID: held here, or else fetched from the
    shared record while the pharmacist waits and kept here. Refuse (FHIRError, storing nothing) a
    wrong ID, and a prescription not found, cancelled, with or dispensed by another pharmacy, or
    nominated to another."""
    pid = prescription_id_normalised(prescription_id)
    problem = prescription_id_error(pid)
    if problem:
        raise FHIRError(422, "invalid", problem, ["prescription_id"])
    held = list(requests_for_prescription(node=node, prescription_id=pid))
    if held:
        return held
    broker = _shared_record_for(node, pid)
    if broker is None:
        raise FHIRError(404, "not-found", f"No prescription {pid} was found at this pharmacy.")
    requests, dispenses = _fetch_prescription(node, broker, pid)
    if not requests:
        raise FHIRError(
            404, "not-found", f"No prescription {pid} was found at this pharmacy or in the shared record."
        )
    _refuse_unless_ours(node, pid, requests, dispenses)
    with transaction.atomic():
        return [copy_store(node=node, resource=request) for request in requests]


def _shared_record_for(node: Node, pid: str) -> Partner | None:
    """Return the broker to look in: the one by which this pharmacy reaches the prescriber named
    in the ID (shared record), else its broker, if it has one (it holds un-nominated tokens)."""
    block = pid.split("-")[1]
    prescribers = Partner.objects.filter(node=node, role=Partner.Role.PRESCRIBER)
    prescriber = next((p for p in prescribers if p.ods_code.upper().rjust(6, "0") == block), None)
    if prescriber is not None and prescriber.topology in SHARED_RECORDS:
        return broker_for(node=node)
    return Partner.objects.filter(node=node, role=Partner.Role.BROKER).first()


def _fetch_prescription(node: Node, broker: Partner, pid: str) -> tuple[list[dict], list[dict]]:
    """GET the prescription's requests at the broker, with the dispenses made for them."""
    query = urlencode(
        [
            ("group-identifier", f"{PRESCRIPTION_ID_SYSTEM}|{pid}"),
            ("_revinclude", "MedicationDispense:prescription"),
            ("_count", "100"),
        ]
    )
    url = f"{broker.fhir_base}/MedicationRequest?{query}"
    answer = http.send("GET", url, headers=partner_headers(broker))
    attempt_log(node_id=node.pk, method="GET", url=url, answer=answer)
    if answer.status is None or answer.status >= 500:
        raise FHIRError(
            503,
            "transient",
            f"The shared record could not be reached ({answer.error or answer.status}); try again.",
        )
    if not answer.ok:
        raise FHIRError(
            502,
            "exception",
            f"The shared record refused the search (HTTP {answer.status}): "
            f"{http.outcome_diagnostics(answer.body) or 'no reason given'}.",
        )
    try:
        found = jsonio.loads(answer.body).get("entry", [])
    except (jsonio.JSONError, AttributeError) as exc:
        raise FHIRError(
            502, "invalid", "The shared record answered with something other than a Bundle."
        ) from exc
    requests, dispenses = [], []
    for entry in found:
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "MedicationRequest" and medication.group_id(resource) == pid:
            requests.append(resource)
        elif resource.get("resourceType") == "MedicationDispense":
            dispenses.append(resource)
    return requests, dispenses


def _refuse_unless_ours(node: Node, pid: str, requests: list[dict], dispenses: list[dict]) -> None:
    """Refuse a prescription found in the shared record that this pharmacy may not dispense."""
    statuses = {request.get("status") for request in requests}
    if statuses == {"cancelled"}:
        raise FHIRError(409, "business-rule", f"Prescription {pid} has been cancelled by the prescriber.")
    for dispense in dispenses:
        holder, status = medication.performer_ods(dispense), dispense.get("status")
        if holder != node.ods_code and status == "in-progress":
            raise FHIRError(409, "conflict", f"Prescription {pid} is with another pharmacy ({holder}).")
        if holder != node.ods_code and status == "completed":
            raise FHIRError(
                409, "conflict", f"Prescription {pid} has been dispensed by another pharmacy ({holder})."
            )
    if "active" not in statuses:
        said = (
            "expired"
            if all(medication.is_expired(request) for request in requests)
            else ", ".join(sorted(statuses))
        )
        raise FHIRError(409, "business-rule", f"Prescription {pid} cannot be dispensed: it is {said}.")
    nominated = {medication.nominated_ods(request) for request in requests} - {"", node.ods_code}
    if nominated:
        raise FHIRError(
            409,
            "business-rule",
            f"Prescription {pid} is nominated to another pharmacy ({', '.join(sorted(nominated))}).",
        )
    prescriber = medication.requester_ods(requests[0])
    if not Partner.objects.filter(node=node, ods_code=prescriber, role=Partner.Role.PRESCRIBER).exists():
        raise FHIRError(
            422,
            "business-rule",
            f"Prescription {pid} is from a prescriber ({prescriber}) this pharmacy has no route to.",
        )
