"""A node's audit trail for its administrators: its AuditEvents, newest first, found by patient,
by who acted, and by outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.utils.dateparse import parse_datetime

from fhirserver import audit, jsonio
from fhirserver.errors import FHIRError
from fhirserver.nhs import NHS_NUMBER_SYSTEM, nhs_number_is_valid
from fhirserver.patient import nhs_number_spaced
from fhirserver.search import matching
from nodes.models import Node

SHOWN = 100
# An outcome in the words of the search form: 4 is a refusal (the caller's fault), 8 a failure.
WORDS = {"0": "Succeeded", "4": "Refused", "8": "Failed", "12": "Failed"}


class AuditSearchForm(forms.Form):
    nhs_number = forms.CharField(label="NHS number", required=False, max_length=20)
    who = forms.CharField(label="Username or API client ID", required=False, max_length=100)
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[("", "Any"), *((code, word) for code, word in WORDS.items() if code != "12")],
    )

    def clean_nhs_number(self) -> str:
        digits = "".join(self.cleaned_data["nhs_number"].split())
        if digits and not nhs_number_is_valid(digits):
            raise forms.ValidationError("Enter a valid 10-digit NHS number")
        return digits


@dataclass
class AuditRow:
    when: datetime | None
    who: str
    what: str
    outcome: str
    failed: bool
    patients: list[str]
    about: list[str]
    detail: str


def audit_trail(*, node: Node, nhs_number: str = "", who: str = "", outcome: str = "") -> list[AuditRow]:
    params = []
    if nhs_number:
        params.append(("patient:identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}"))
    if who:
        systems = (audit.USER_SYSTEM, audit.CLIENT_SYSTEM)
        params.append(("agent:identifier", ",".join(f"{system}|{who}" for system in systems)))
    if outcome:
        params.append(("outcome", outcome))
    try:
        found = matching(node=node, resource_type="AuditEvent", params=params, strict=True)
    except FHIRError:
        return []
    return [_row(jsonio.loads(r.text)) for r in found.order_by("-last_updated", "-pk")[:SHOWN]]


def _row(event: dict) -> AuditRow:
    agent = (event.get("agent") or [{}])[0]
    who = agent.get("who", {})
    identifier = who.get("identifier", {}).get("value", "")
    entities = event.get("entity", [])
    patients = [
        nhs_number_spaced(e["what"]["identifier"]["value"])
        for e in entities
        if e.get("role", {}).get("code") == "1" and "identifier" in e.get("what", {})
    ]
    about = [
        e["what"].get("reference") or e["what"].get("identifier", {}).get("value", "")
        for e in entities
        if e.get("role", {}).get("code") == "4" and "what" in e
    ]
    subtype = (event.get("subtype") or [{}])[0].get("code", "")
    kind = "Screen" if event.get("type", {}).get("code") == "110110" else "API"
    return AuditRow(
        when=parse_datetime(event.get("recorded", "")),
        who=f"{who.get('display', agent.get('display', ''))} ({identifier})"
        if identifier
        else agent.get("display", ""),
        what=f"{kind}: {subtype.replace('-', ' ')}",
        outcome=WORDS.get(event.get("outcome", ""), ""),
        failed=event.get("outcome") != "0",
        patients=patients,
        about=[a for a in about if a],
        detail=event.get("outcomeDesc", ""),
    )
