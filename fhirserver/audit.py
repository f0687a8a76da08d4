"""AuditEvent for every access, in the style of the IHE Basic Audit Log Patterns (BALP).

Each FHIR interaction and each screen view that shows or changes a patient's prescriptions makes
one AuditEvent at the node: type and subtype (the interaction), action, outcome, the agent (the API
client, or the signed-in user), the source (the node) and the entities touched (the resources, the
patient, the query of a search). A write's event is stored at once, in a transaction of its own
after the write's (a refused write's after its rollback, so the failure is kept and nothing else);
a read's goes through a buffer that a thread writes every AUDIT_FLUSH_SECONDS, in transactions of
at most FLUSH_BATCH events (a crash loses at most that much of the reads' trail). AuditEvents are
stored like any resource, indexed for search, and never updated or deleted through the API.
"""

from __future__ import annotations

import atexit
import base64
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from fhirserver import indexing, jsonio, prepared
from fhirserver.models import Resource, ResourceVersion
from fhirserver.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from nodes.models import Node

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
CLIENT_SYSTEM = "https://dmed.example/fhir/Id/api-client"
USER_SYSTEM = "https://dmed.example/fhir/Id/user"
SCREEN_SYSTEM = "https://dmed.example/fhir/CodeSystem/screen"
ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
# What an interaction is: (BALP subtype, action C R U D E).
INTERACTIONS = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "search-type": "E",
    "search-system": "E",
    "create": "C",
    "update": "U",
    "delete": "D",
    "batch": "E",
    "transaction": "E",
    "operation": "E",
}
logger = logging.getLogger(__name__)
OUTCOMES = {"0": "success", "4": "minor failure", "8": "serious failure", "12": "major failure"}


@dataclass
class Access:
    """One access to record: who, what kind, what it touched, how it ended."""

    node_id: int
    node_ods: str
    node_name: str
    subtype: str
    action: str
    status: int
    agent: dict
    address: str = ""
    kind: str = "rest"  # rest | screen
    what: list[str] = field(default_factory=list)  # "Type/id" references
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (system, value): a Prescription ID
    patients: list[str] = field(default_factory=list)  # NHS numbers
    query: str = ""
    text: str = ""  # a resource read or written: its patient is found at flush time
    description: str = ""
    when: datetime = field(default_factory=timezone.now)  # the access, not the buffer's flush
    node_revision: str = ""  # the node's search_revision: its own search parameters


def client_agent(client) -> dict:
    """The agent of an API call: the client (its client_id), or nobody known."""
    if client is None:
        return {"display": "No credentials", "requestor": True}
    return {
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client.client_id}, "display": client.name},
        "requestor": True,
    }


def user_agent(user) -> dict:
    return {
        "who": {
            "identifier": {"system": USER_SYSTEM, "value": user.get_username()},
            "display": user.get_full_name() or user.get_username(),
        },
        "requestor": True,
    }


def outcome(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def audit_event(access: Access) -> dict:
    """The AuditEvent resource for one access."""
    if access.kind == "rest":
        event_type = {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        subtype = {"system": RESTFUL, "code": access.subtype}
    else:
        event_type = {"system": DCM, "code": "110110", "display": "Patient Record"}
        subtype = {"system": SCREEN_SYSTEM, "code": access.subtype}
    agent = dict(access.agent)
    if access.address:
        agent["network"] = {"address": access.address, "type": "2"}
    entities = [
        {
            "what": {"reference": ref},
            "type": {"system": ENTITY_TYPE, "code": "2"},
            "role": {"system": ROLE, "code": "4"},
        }
        for ref in dict.fromkeys(access.what)
    ]
    entities += [
        {
            "what": {"identifier": {"system": system, "value": value}},
            "type": {"system": ENTITY_TYPE, "code": "2"},
            "role": {"system": ROLE, "code": "4"},
        }
        for system, value in access.identifiers
    ]
    patients = list(dict.fromkeys(access.patients + _patients_in(access.text)))
    entities += [
        {
            "what": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs}},
            "type": {"system": ENTITY_TYPE, "code": "1"},
            "role": {"system": ROLE, "code": "1", "display": "Patient"},
        }
        for nhs in patients
    ]
    if access.query:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2"},
                "role": {"system": ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(access.query.encode()).decode(),
            }
        )
    code = outcome(access.status)
    event = {
        "resourceType": "AuditEvent",
        "type": event_type,
        "subtype": [subtype],
        "action": access.action,
        "recorded": access.when.isoformat(timespec="milliseconds"),
        "outcome": code,
        "outcomeDesc": access.description or f"HTTP {access.status} ({OUTCOMES[code]})",
        "agent": [agent],
        "source": {
            "observer": {
                "identifier": {"system": ODS_SYSTEM, "value": access.node_ods},
                "display": access.node_name,
            },
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if entities:
        event["entity"] = entities
    return event


def _patients_in(text: str) -> list[str]:
    """The NHS numbers of the patient a resource's JSON text is about."""
    if not text:
        return []
    try:
        return patients_of(jsonio.loads(text))
    except jsonio.JSONError:
        return []


def patients_of(content: object) -> list[str]:
    """The NHS numbers of the patient a resource (or each resource of a Bundle) is about."""
    if not isinstance(content, dict):
        return []
    entries = content.get("entry") if content.get("resourceType") == "Bundle" else None
    resources = (
        [e.get("resource") for e in entries if isinstance(e, dict)]
        if isinstance(entries, list)
        else [content]
    )
    found = []
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "Patient":
            identifiers = resource.get("identifier") if isinstance(resource.get("identifier"), list) else []
        else:
            subject = resource.get("subject") if isinstance(resource.get("subject"), dict) else {}
            identifiers = [subject.get("identifier")]
        found += [
            str(i.get("value", ""))
            for i in identifiers
            if isinstance(i, dict) and i.get("system") == NHS_NUMBER_SYSTEM
        ]
    return [nhs for nhs in dict.fromkeys(found) if nhs][:50]


def store(accesses: list[Access]) -> None:
    """Write AuditEvents, indexed, in one transaction of their own."""
    if not accesses:
        return
    now = timezone.now()
    # The nodes as they were at the access, for their own search parameters.
    nodes = {a.node_id: Node(pk=a.node_id, search_revision=a.node_revision) for a in accesses}
    with transaction.atomic():
        records = []
        contents = []
        for access in accesses:
            logical_id = str(uuid.uuid4())
            content = audit_event(access)
            body = {
                "resourceType": "AuditEvent",
                "id": logical_id,
                "meta": {"versionId": "1", "lastUpdated": now.isoformat(timespec="milliseconds")},
            }
            body.update((k, v) for k, v in content.items() if k != "resourceType")
            records.append(
                Resource(
                    node_id=access.node_id,
                    resource_type="AuditEvent",
                    logical_id=logical_id,
                    version_id=1,
                    last_updated=now,
                    text=jsonio.dumps(body),
                )
            )
            contents.append(body)
        prepared.RESOURCE_INSERT.save_many(records, by=("node", "resource_type", "logical_id"))
        prepared.VERSION_INSERT.save_many(
            [
                ResourceVersion(
                    resource=record,
                    node_id=record.node_id,
                    resource_type="AuditEvent",
                    version_id=1,
                    last_updated=now,
                    method="POST",
                    text=record.text,
                )
                for record in records
            ]
        )
        indexing.save_index_rows(
            [
                row
                for record, body in zip(records, contents, strict=True)
                for row in indexing.index_rows(record, body, nodes.get(record.node_id))
            ]
        )


# The most AuditEvents written in one transaction: a write waiting for SQLite's one lock waits for
# at most this many (under load a worker's buffer held up to about 1,000 when its thread got its turn).
FLUSH_BATCH = 100


class Buffer:
    """The reads' AuditEvents, written by a thread every AUDIT_FLUSH_SECONDS (0: at once)."""

    def __init__(self) -> None:
        self._pending: list[Access] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, access: Access) -> None:
        if settings.AUDIT_FLUSH_SECONDS <= 0:
            store([access])
            return
        with self._lock:
            self._pending.append(access)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), FLUSH_BATCH):
            store(pending[start : start + FLUSH_BATCH])

    def _run(self) -> None:
        while True:
            seconds = settings.AUDIT_FLUSH_SECONDS
            self._wake.wait(seconds)
            try:
                self.flush()
            finally:
                close_old_connections()
            if seconds <= 0:  # written at once from now on (add): the thread would only spin
                connections.close_all()  # this thread's own
                return


BUFFER = Buffer()
atexit.register(BUFFER.flush)


def record(access: Access) -> None:
    """Audit one access: a write now (its own transaction), a read through the buffer. An audit
    that cannot be written is logged, and the answer the client already has stands."""
    if not settings.AUDIT_ENABLED:
        return
    try:
        if access.action == "R" or access.subtype.startswith("search"):
            BUFFER.add(access)
        else:
            store([access])
    except Exception:
        logger.exception("could not write the AuditEvent of %s %s", access.subtype, access.what)


def interaction(method: str, path: str, body: object = None) -> str:
    """The BALP subtype (FHIR restful-interaction code) of a request to `path` (relative to a FHIR
    base); "" for what is not audited (metadata, SMART configuration)."""
    parts = [part for part in path.strip("/").split("/") if part]
    if parts and parts[0] in ("metadata", ".well-known"):
        return ""
    if parts and parts[-1].startswith("$"):
        return "operation"
    if not parts:
        kind = body.get("type") if isinstance(body, dict) else ""
        return "transaction" if kind == "transaction" else "batch"
    if parts == ["_history"]:
        return "history-system"
    if len(parts) == 1:
        return "create" if method == "POST" else "search-type"
    if parts[1] == "_search":
        return "search-type"
    if parts[1] == "_history":
        return "history-type"
    if len(parts) == 2:
        return {"PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(method, "read")
    return "vread" if len(parts) == 4 else "history-instance"


def patients_searched(query: str) -> list[str]:
    """The NHS numbers a search names (patient:identifier=…|9449304130, subject:identifier=…)."""
    from urllib.parse import parse_qsl

    return [
        value.split("|", 1)[1]
        for _, values in parse_qsl(query)
        for value in values.split(",")
        if value.startswith(f"{NHS_NUMBER_SYSTEM}|")
    ]
