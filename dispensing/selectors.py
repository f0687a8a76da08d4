"""What the pharmacist's screens show: the worklist, one prescription, what was dispensed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from dispensing.services import NOT_DISPENSED_REASONS
from exchange.models import Message, Partner
from fhirserver import jsonio, medication
from fhirserver.errors import FHIRError
from fhirserver.models import Resource, ResourceVersion
from fhirserver.nhs import (
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    nhs_number_is_valid,
    prescription_id_error,
    prescription_id_normalised,
)
from fhirserver.patient import nhs_number_spaced
from fhirserver.search import matching
from fhirserver.selectors import requests_for_prescription
from nodes.models import Node

# An item's (and a prescription's) status at this pharmacy: label and NHS.UK tag colour.
STATUSES = {
    "new": ("To be dispensed", "blue"),
    "with-dispenser": ("With dispenser", "yellow"),
    "owing": ("Owing", "purple"),
    "dispensed": ("Dispensed", "green"),
    "returned": ("Returned", "orange"),
    "cancelled": ("Cancelled", "red"),
    "expired": ("Expired", "grey"),
    "closed": ("Closed", "grey"),
}
OPEN = ("new", "with-dispenser", "owing")
EARLIEST = datetime.min.replace(tzinfo=UTC)
# The worklist's filters (?status=), the first the default.
FILTERS = {
    "open": ("To do", OPEN),
    "new": ("To be dispensed", ("new",)),
    "with-dispenser": ("With dispenser", ("with-dispenser",)),
    "owing": ("Owing", ("owing",)),
    "dispensed": ("Dispensed", ("dispensed",)),
    "returned": ("Returned", ("returned",)),
    "cancelled": ("Cancelled", ("cancelled",)),
    "expired": ("Expired", ("expired",)),
    "all": ("All", tuple(STATUSES)),
}


@dataclass
class ItemRow:
    record: Resource
    item_id: str
    medicine: str
    quantity: str
    quantity_value: float | int | None
    dosage: str
    status: str
    supplied: str = ""  # what this pharmacy has supplied, all supplies together
    owing: str = ""  # what it still owes, after a part supply
    owing_value: float | int | None = None
    reason: str = ""  # why it was returned
    note: str = ""
    issue: str = ""  # "Issue 2 of 6" for repeat dispensing
    earlier: bool = False  # an earlier issue of a repeat dispensing item held here too

    @property
    def label(self) -> str:
        return STATUSES[self.status][0]

    @property
    def tag(self) -> str:
        return STATUSES[self.status][1]

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def amendable(self) -> bool:
        """Its last supply may be corrected (a wrong quantity keyed)."""
        return bool(self.supplied) and self.status in ("owing", "dispensed")


@dataclass
class PrescriptionRow:
    prescription_id: str
    nhs_number: str  # 3-3-4, as people read it
    patient_name: str
    prescriber: str
    received: datetime | None
    items: list[ItemRow]
    status: str = ""

    def __post_init__(self) -> None:
        current = [item for item in self.items if not item.earlier] or self.items
        self.status = self.status or prescription_status([item.status for item in current])

    @property
    def label(self) -> str:
        return STATUSES[self.status][0]

    @property
    def tag(self) -> str:
        return STATUSES[self.status][1]


@dataclass(frozen=True)
class Filter:
    key: str
    label: str
    count: int
    selected: bool


@dataclass
class Worklist:
    status: str
    label: str
    rows: list[PrescriptionRow]
    filters: list[Filter]


@dataclass(frozen=True)
class Event:
    when: datetime | None
    medicine: str
    text: str
    tag: str = ""


@dataclass
class PrescriptionPage(PrescriptionRow):
    authored: datetime | None = None
    prescriber_ods: str = ""
    notes: list[str] = field(default_factory=list)
    history: list[Event] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def can_start(self) -> bool:
        return any(item.status == "new" for item in self.items)

    @property
    def open(self) -> bool:
        return any(item.open for item in self.items)

    @property
    def final(self) -> bool:
        """Nothing on the page can change any more: no open item, no message still to go."""
        return not self.open and not any(m.status == Message.Status.PENDING for m in self.messages)


def prescription_status(items: list[str]) -> str:
    """Return a prescription's status at this pharmacy from its items' statuses."""
    found = set(items)
    if "with-dispenser" in found or ("new" in found and found & {"dispensed", "returned", "owing"}):
        return "with-dispenser"
    if "owing" in found:
        return "owing"
    return next(
        (key for key in ("new", "dispensed", "returned", "cancelled", "expired") if key in found), "closed"
    )


def worklist_view(*, node: Node, status: str = "open", limit: int = 500) -> Worklist:
    """Return this pharmacy's prescriptions (one row each, newest `limit` items) with the given
    status, oldest first while open, newest first otherwise, and the count of each filter."""
    status = status if status in FILTERS else "open"
    records = Resource.objects.filter(node=node, resource_type="MedicationRequest", deleted=False)
    rows = _rows(node, list(records.order_by("-pk")[:limit]))
    wanted = FILTERS[status][1]
    chosen = [row for row in rows if row.status in wanted]
    chosen.sort(key=lambda row: row.received or EARLIEST, reverse=status not in (*OPEN, "open"))
    filters = [
        Filter(key, label, sum(1 for row in rows if row.status in statuses), key == status)
        for key, (label, statuses) in FILTERS.items()
    ]
    return Worklist(status=status, label=FILTERS[status][0], rows=chosen, filters=filters)


def prescription_page(*, node: Node, prescription_id: str) -> PrescriptionPage | None:
    """Return a prescription this pharmacy holds, with what it did about it; None when it holds none."""
    pid = prescription_id_normalised(prescription_id)
    records = list(requests_for_prescription(node=node, prescription_id=pid))
    if not records:
        return None
    (row,) = _rows(node, records)
    first = jsonio.loads(records[0].text)
    dispenses = _mine(node, [item.item_id for item in row.items])
    notes = [
        note["text"]
        for record in records
        for note in jsonio.loads(record.text).get("note", [])
        if note.get("text")
    ]
    medicines = {item.item_id: item.medicine for item in row.items}
    keys = [pid, *medicines]
    return PrescriptionPage(
        **row.__dict__,
        authored=parse_datetime(first.get("authoredOn", "")),
        prescriber_ods=medication.requester_ods(first),
        notes=list(dict.fromkeys(notes)),
        history=sorted(
            (
                event
                for records in dispenses.values()
                for record in records
                for event in _history(record, medicines)
            ),
            key=lambda e: e.when or EARLIEST,
        ),
        messages=list(Message.objects.filter(node=node, key__in=keys).order_by("pk")),
    )


def _rows(node: Node, records: list[Resource]) -> list[PrescriptionRow]:
    """One row per prescription (its items grouped by Prescription ID, each request once)."""
    unique = {record.pk: record for record in records}
    contents = {pk: jsonio.loads(record.text) for pk, record in unique.items()}
    received = dict(
        ResourceVersion.objects.filter(resource_id__in=list(unique), version_id=1).values_list(
            "resource_id", "last_updated"
        )
    )
    dispenses = {
        item: [jsonio.loads(record.text) for record in records]
        for item, records in _mine(node, [medication.item_id(c) for c in contents.values()]).items()
    }
    names = dict(Partner.objects.filter(node=node).values_list("ods_code", "name"))
    groups: dict[str, list[int]] = {}
    for pk in sorted(unique):
        groups.setdefault(medication.group_id(contents[pk]), []).append(pk)
    rows = []
    for pid, pks in groups.items():
        first = contents[pks[0]]
        subject = first.get("subject", {})
        rows.append(
            PrescriptionRow(
                prescription_id=pid,
                nhs_number=nhs_number_spaced(subject.get("identifier", {}).get("value", "")),
                patient_name=subject.get("display", ""),
                prescriber=_prescriber(first, names),
                received=min((received[pk] for pk in pks if pk in received), default=None),
                items=_issues_marked(
                    [_item(unique[pk], contents[pk], dispenses) for pk in pks], contents, pks
                ),
            )
        )
    return rows


def _item(record: Resource, content: dict, dispenses: dict[str, list[dict]]) -> ItemRow:
    item = medication.item_id(content)
    mine = dispenses.get(item, [])
    supply = medication.item_supply(content, mine)
    prescribed = medication.prescribed_quantity(content)
    latest = mine[-1] if mine else {}
    reasons = latest.get("statusReasonCodeableConcept", {}).get("coding", [])
    return ItemRow(
        record=record,
        item_id=item,
        medicine=medication.medicine_name(content),
        quantity=medication.quantity_text(prescribed),
        quantity_value=prescribed.get("value"),
        dosage=medication.dosage_text(content),
        status=item_status(content, supply),
        supplied=supply.text(supply.supplied) if any(d.get("status") == "completed" for d in mine) else "",
        owing=supply.text(supply.owing) if supply.owed else "",
        owing_value=medication.json_number(supply.owing)
        if supply.owed and supply.owing is not None
        else None,
        reason=next((_reason(c.get("code", "")) for c in reasons), "")
        if latest.get("status") == "declined"
        else "",
        note="; ".join(n["text"] for d in mine for n in d.get("note", []) if n.get("text")),
        issue=medication.issue_text(content),
    )


def _issues_marked(items: list[ItemRow], contents: dict[int, dict], pks: list[int]) -> list[ItemRow]:
    """Mark the items that a later issue of the same repeat dispensing item has followed."""
    latest: dict[str, int] = {}
    for pk in pks:
        chain = medication.original_item(contents[pk])
        latest[chain] = max(latest.get(chain, 0), medication.issue_number(contents[pk]) or 0)
    for item, pk in zip(items, pks, strict=True):
        item.earlier = (medication.issue_number(contents[pk]) or 0) < latest[
            medication.original_item(contents[pk])
        ]
    return items


def item_status(request: dict, supply: medication.Supply) -> str:
    """Return an item's status here from its request and what this pharmacy has supplied."""
    if medication.is_expired(request) or supply.status == medication.ITEM_EXPIRED:
        return "expired"
    if supply.status == medication.FULLY_DISPENSED or (supply.done and supply.supplied):
        return "dispensed"
    if supply.status == medication.ITEM_NOT_DISPENSED:
        return "returned"
    if request.get("status") == "cancelled":
        return "cancelled"
    if request.get("status") != "active":
        return "closed"
    if supply.owed:
        return "owing"
    return "with-dispenser" if supply.status == medication.WITH_DISPENSER else "new"


def _mine(node: Node, items: list[str]) -> dict[str, list[Resource]]:
    """This pharmacy's dispenses of each item, oldest first (a node may hold others' copies)."""
    items = sorted(set(items) - {""})
    if not items:
        return {}
    params = [
        ("prescription:identifier", ",".join(f"{medication.ITEM_SYSTEM}|{item}" for item in items)),
        ("performer:identifier", f"{ODS_SYSTEM}|{node.ods_code}"),
    ]
    found = matching(node=node, resource_type="MedicationDispense", params=params, strict=True)
    mine: dict[str, list[Resource]] = {}
    for record in found.order_by("pk"):
        mine.setdefault(medication.prescribed_item(jsonio.loads(record.text)), []).append(record)
    return mine


def _history(record: Resource, medicines: dict[str, str]) -> list[Event]:
    """Every version of one of this pharmacy's dispenses, as what it did."""
    events, before = [], ""
    for version in record.versions.order_by("version_id"):
        if not version.text:
            continue
        content = jsonio.loads(version.text)
        medicine = medicines.get(medication.prescribed_item(content), "")
        status = content.get("status")
        if status == "in-progress":
            events.append(
                Event(version.last_updated, medicine, "Started dispensing (with dispenser)", "yellow")
            )
        elif status == "completed":
            notes = "; ".join(n["text"] for n in content.get("note", []) if n.get("text"))
            text = medication.supply_words(content) + (f". Note: {notes}" if notes else "")
            if before == "completed":
                text = f"Amended: {text[0].lower()}{text[1:]}"
            events.append(Event(version.last_updated, medicine, text, "green"))
        elif status == "declined":
            codes = content.get("statusReasonCodeableConcept", {}).get("coding", [])
            reason = next((_reason(c.get("code", "")) for c in codes), "no reason given")
            events.append(Event(version.last_updated, medicine, f"Returned: {reason}", "orange"))
        else:
            events.append(Event(version.last_updated, medicine, f"Dispense {status}"))
        before = status
    return events


def _reason(code: str) -> str:
    return f"{NOT_DISPENSED_REASONS[code]} ({code})" if code in NOT_DISPENSED_REASONS else code


def _prescriber(request: dict, names: dict[str, str]) -> str:
    """The prescriber's name, else the prescribing organisation (the ODS code only without a name)."""
    requester = request.get("requester", {})
    if requester.get("display"):
        return requester["display"]
    ods = medication.requester_ods(request)
    return f"{names[ods]} ({ods})" if ods in names else ods


# What this pharmacy dispensed.


@dataclass(frozen=True)
class DispensedRow:
    when: datetime | None
    prescription_id: str
    nhs_number: str
    patient_name: str
    medicine: str
    supplied: str


def dispensed(*, node: Node, query: str = "", limit: int = 100) -> list[DispensedRow]:
    """Return what this pharmacy dispensed (completed dispenses), newest first, for an NHS number
    or a Prescription ID when asked; 400 for a query that is neither."""
    params = [("status", "completed"), ("performer:identifier", f"{ODS_SYSTEM}|{node.ods_code}")]
    params += _dispensed_search(node, query)
    found = matching(node=node, resource_type="MedicationDispense", params=params, strict=True)
    contents = [jsonio.loads(r.text) for r in found.order_by("-last_updated", "-pk")[:limit]]
    requests = _requests_by_item(node, [medication.prescribed_item(c) for c in contents])
    rows = []
    for content in contents:
        request = requests.get(medication.prescribed_item(content), {})
        subject = content.get("subject", {})
        rows.append(
            DispensedRow(
                when=parse_datetime(content.get("whenHandedOver", "")),
                prescription_id=medication.group_id(request) if request else "",
                nhs_number=nhs_number_spaced(subject.get("identifier", {}).get("value", "")),
                patient_name=subject.get("display", "") or request.get("subject", {}).get("display", ""),
                medicine=medication.medicine_name(content),
                supplied=medication.quantity_text(content.get("quantity", {})),
            )
        )
    return rows


def _dispensed_search(node: Node, query: str) -> list[tuple[str, str]]:
    digits = "".join(query.split())
    if not digits:
        return []
    if digits.isascii() and digits.isdigit():
        if not nhs_number_is_valid(digits):
            raise FHIRError(400, "invalid", "Enter a valid NHS number of 10 digits, like 944 930 4130", ["q"])
        return [("subject:identifier", f"{NHS_NUMBER_SYSTEM}|{digits}")]
    if prescription_id_error(digits) is not None:
        raise FHIRError(
            400, "invalid", "Enter an NHS number (10 digits) or a Prescription ID (18 characters)", ["q"]
        )
    records = requests_for_prescription(node=node, prescription_id=prescription_id_normalised(digits))
    items = [medication.item_id(jsonio.loads(r.text)) for r in records] or ["none"]
    return [("prescription:identifier", ",".join(f"{medication.ITEM_SYSTEM}|{item}" for item in items))]


def _requests_by_item(node: Node, items: list[str]) -> dict[str, dict]:
    items = sorted(set(items) - {""})
    if not items:
        return {}
    tokens = ",".join(f"{medication.ITEM_SYSTEM}|{item}" for item in items)
    found = matching(
        node=node, resource_type="MedicationRequest", params=[("identifier", tokens)], strict=True
    )
    contents = [jsonio.loads(r.text) for r in found]
    return {medication.item_id(c): c for c in contents}
