"""Steps of a hospital prescription's journey through the demo trust's integration engine."""

from __future__ import annotations

import uuid

from django.utils import timezone
from fhirpy import SyncFHIRClient

from fhirserver.medication import request_build
from fhirserver.models import Resource
from nodes.demo import demo_password
from nodes.demo_engine import FORMULARY, FORMULARY_CODES
from nodes.models import Node
from prescribing import services as prescribing

LOCAL = {code: (name, dmd) for code, name, dmd in FORMULARY_CODES}


def local_coding(code: str) -> dict:
    return {"system": FORMULARY, "code": code, "display": LOCAL[code][0]}


def outpatient_request(
    trust: Node, code: str, *, pharmacy_ods: str = "FEW08", group: str = "", requester: str = ""
) -> dict:
    """One item of the trust's (prescription `group`, else a new one), coded as the trust's own
    system codes it (its formulary); `requester` stands in for the trust's ODS code."""
    content = request_build(
        item_id=str(uuid.uuid4()),
        group_id=group or prescribing.prescription_id_new(trust),
        long_id=str(uuid.uuid4()),
        nhs_number="9449304130",
        prescriber_ods=requester or trust.ods_code,
        pharmacy_ods=pharmacy_ods,
        code="",
        display="",
        quantity=28,
        unit="tablet",
        dosage="Two four times a day",
        authored_on=timezone.now(),
    )
    content["medicationCodeableConcept"] = {"coding": [local_coding(code)]}
    return content


def issue_at_trust(trust: Node, pharmacy: Node, code: str = "RB0001", *, group: str = "") -> Resource:
    """Issue one locally coded item at the trust, as its outpatient system would."""
    content = outpatient_request(trust, code, pharmacy_ods=pharmacy.ods_code, group=group)
    return prescribing.request_issue(node=trust, content=content).resource


def engine_api(live_server, token: str | None = None) -> SyncFHIRClient:
    """The engine's FHIR base as the trust's outpatient system reaches it."""
    return SyncFHIRClient(
        f"{live_server.url}/engine/fhir", authorization=f"Bearer {token or f'trust@engine.{demo_password()}'}"
    )
