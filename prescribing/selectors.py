"""What the prescriber's screens show: patients, prescriptions, and each item's story."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exchange.models import Message, Partner
from fhirserver import jsonio, medication, patient
from fhirserver.models import Resource
from fhirserver.nhs import NHS_NUMBER_SYSTEM
from fhirserver.search import matching
from fhirserver.selectors import dispenses_for_item, requests_for_prescription
from nodes.models import Node

FINAL = {"completed", "cancelled", "stopped", "entered-in-error"}
COURSE_WORDS = {"acute": "Acute", "repeat": "Repeat", "erd": "Repeat dispensing (eRD)"}
# What the pharmacy has done, by the item's line status there.
DISPENSE_WORDS = {
    medication.WITH_DISPENSER: "With dispenser",
    medication.PART_DISPENSED: "Part dispensed",
    medication.OWING: "Owing",
    medication.FULLY_DISPENSED: "Dispensed",
    medication.ITEM_NOT_DISPENSED: "Declined",
}
DISPENSING_TAGS = {
    "With dispenser": "aqua-green",
    "Part dispensed": "purple",
    "Owing": "purple",
    "Dispensed": "green",
    "Declined": "orange",
}
ITEM_WORDS = {
    "cancelled": ("Cancelled", "red"),
    "completed": ("Dispensed", "green"),
    "stopped": ("Stopped", "grey"),
    "entered-in-error": ("Entered in error", "grey"),
}


@dataclass(frozen=True)
class PatientView:
    nhs_number: str
    name: str
    birth_date: str
    gender: str
    pharmacy_ods: str
    pharmacy: str  # name and ODS code, "" for none

    @property
    def born(self) -> date | None:
        try:
            return date.fromisoformat(self.birth_date)
        except ValueError:
            return None


@dataclass(frozen=True)
class Event:
    when: datetime | None
    text: str
    tag: str = ""  # an NHS.UK tag colour for the event, "" for none


@dataclass
class ItemView:
    record: Resource
    item_id: str
    medicine: str
    quantity: str
    dosage: str
    status: str
    returned: bool
    pharmacy_ods: str
    pharmacy: str
    dispensing: str  # what this node knows of the pharmacy's work: "", With dispenser, Part dispensed, …
    owing: str = ""  # what the pharmacy still owes, after a part supply
    expired: bool = False
    expires: datetime | None = None  # when it expires if not dispensed by then
    issue: str = ""  # "Issue 2 of 6" for repeat dispensing
    repeats_to_come: bool = False  # the latest issue of a repeat dispensing chain with more to come
    next_due: datetime | None = None  # when the next issue is due, once this one is dispensed
    events: list[Event] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def label(self) -> str:
        """The item's status in words, as the prescriber's screens show it."""
        return self._label_and_tag()[0]

    @property
    def tag(self) -> str:
        """The NHS.UK tag colour of that status."""
        return self._label_and_tag()[1]

    def _label_and_tag(self) -> tuple[str, str]:
        if self.expired:
            return "Expired", "grey"
        if self.status in ITEM_WORDS:
            return ITEM_WORDS[self.status]
        if self.returned:
            return "Returned by the pharmacy", "orange"
        if self.dispensing:
            return self.dispensing, DISPENSING_TAGS.get(self.dispensing, "blue")
        if self.status == "active":
            return ("To be dispensed" if self.pharmacy_ods else "Waiting for a pharmacy"), "blue"
        return self.status.capitalize() or "Unknown", "grey"


@dataclass
class PrescriptionView:
    prescription_id: str
    authored: datetime | None
    nhs_number: str
    patient_name: str
    prescriber: str
    course: str
    items: list[ItemView]
    pending: int  # messages about it still to be delivered

    @property
    def final(self) -> bool:
        return all(item.final and not item.repeats_to_come for item in self.items) and not self.pending

    @property
    def course_text(self) -> str:
        return COURSE_WORDS.get(self.course, self.course)

    @property
    def status(self) -> str:
        statuses = {item.status for item in self.items}
        return statuses.pop() if len(statuses) == 1 else "active" if "active" in statuses else "mixed"

    @property
    def pharmacies(self) -> list[str]:
        """The pharmacies its items are nominated to, each once."""
        return list(dict.fromkeys(item.pharmacy for item in self.items if item.pharmacy))

    @property
    def returned(self) -> list[ItemView]:
        """The items a pharmacy returned, which may go to another pharmacy."""
        return [item for item in self.items if item.returned and item.status == "active"]

    @property
    def active(self) -> list[ItemView]:
        return [item for item in self.items if item.status == "active"]

    @property
    def cancellable(self) -> list[ItemView]:
        """Active items, and repeat dispensing issues with more to come (cancelling stops them)."""
        return [item for item in self.items if item.status == "active" or item.repeats_to_come]

    @property
    def actions_key(self) -> str:
        """What can be done to it (which items can be cancelled, which re-nominated): a screen
        showing other actions is out of date."""
        return "|".join(
            ",".join(item.item_id for item in items) for items in (self.cancellable, self.returned)
        )


def patient_view(*, node: Node, record: Resource) -> PatientView:
    content = jsonio.loads(record.text)
    ods = patient.nominated_ods(content)
    return PatientView(
        nhs_number=patient.nhs_number(content),
        name=patient.display_name(content),
        birth_date=content.get("birthDate", ""),
        gender=content.get("gender", ""),
        pharmacy_ods=ods,
        pharmacy=_pharmacy_name(node, ods),
    )


def prescriptions_for_patient(*, node: Node, nhs_number: str) -> list[PrescriptionView]:
    """Return the patient's prescriptions, newest first."""
    params = [("subject:identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]
    requests = matching(node=node, resource_type="MedicationRequest", params=params, strict=True)
    return _prescriptions(node, requests.order_by("-pk")[:200])


def prescriptions_recent(*, node: Node, limit: int = 30) -> list[PrescriptionView]:
    """Return the node's newest prescriptions."""
    requests = Resource.objects.filter(node=node, resource_type="MedicationRequest", deleted=False)
    return _prescriptions(node, requests.order_by("-pk")[: limit * 4])[:limit]


def _prescriptions(node: Node, requests) -> list[PrescriptionView]:
    seen: dict[str, list[Resource]] = {}
    for record in requests:
        seen.setdefault(medication.group_id(jsonio.loads(record.text)), []).append(record)
    return [
        _prescription(node, pid, sorted(records, key=lambda r: r.pk), story=False)
        for pid, records in seen.items()
    ]


def prescription_view(*, node: Node, prescription_id: str) -> PrescriptionView | None:
    """Return a prescription with each item's story, or None when the node has no such one."""
    records = list(requests_for_prescription(node=node, prescription_id=prescription_id))
    return _prescription(node, prescription_id.upper(), records, story=True) if records else None


def _prescription(node: Node, pid: str, records: list[Resource], *, story: bool) -> PrescriptionView:
    first = jsonio.loads(records[0].text)
    items = [_item(node, record, story=story) for record in records]
    pending = Message.objects.filter(node=node, key__in=[pid, *(i.item_id for i in items)])
    pending = pending.filter(status=Message.Status.PENDING).exclude(kind="dispense.poll")
    if medication.course(first) == "erd":
        _repeats_known(node, items)
    return PrescriptionView(
        prescription_id=pid,
        authored=parse_datetime(first.get("authoredOn", "")),
        nhs_number=first.get("subject", {}).get("identifier", {}).get("value", ""),
        patient_name=first.get("subject", {}).get("display", ""),
        prescriber=first.get("requester", {}).get("display", "") or medication.requester_ods(first),
        course=medication.course(first),
        items=items,
        pending=pending.count(),
    )


def _repeats_known(node: Node, items: list[ItemView]) -> None:
    """Mark the latest issue of each repeat dispensing chain: more to come, and when the next is due."""
    from prescribing.repeats import chain_of, next_due

    by_item = {item.item_id: item for item in items}
    for original in {
        i.record.pk: i.record for i in items if not medication.based_on_item(_content(i))
    }.values():
        chain = chain_of(node=node, original=original)
        latest = by_item.get(medication.item_id(chain.latest))
        if latest is None:
            continue
        ends = medication.authorisation_ends(chain.authorisation)
        number, allowed = (
            medication.issue_number(chain.latest) or 1,
            medication.issues_allowed(chain.authorisation) or 1,
        )
        latest.repeats_to_come = number < allowed and (ends is None or ends > timezone.now())
        latest.next_due = next_due(node=node, chain=chain) if latest.repeats_to_come else None


def _content(item: ItemView) -> dict:
    return jsonio.loads(item.record.text)


def _item(node: Node, record: Resource, *, story: bool) -> ItemView:
    content = jsonio.loads(record.text)
    item = medication.item_id(content)
    dispenses = (
        [jsonio.loads(d.text) for d in dispenses_for_item(node=node, item=item).order_by("pk")]
        if item
        else []
    )
    ods = medication.nominated_ods(content)
    # What the pharmacy it is with now has done (a re-nominated item's earlier decline is history).
    current = [d for d in dispenses if not ods or medication.performer_ods(d) == ods]
    supply = medication.item_supply(content, current)
    view = ItemView(
        record=record,
        item_id=item,
        medicine=medication.medicine_name(content),
        quantity=medication.quantity_text(medication.prescribed_quantity(content)),
        dosage=medication.dosage_text(content),
        status=content.get("status", ""),
        returned=medication.returned(content),
        pharmacy_ods=ods,
        pharmacy=_pharmacy_name(node, ods),
        dispensing=DISPENSE_WORDS.get(supply.status, "") if current else "",
        owing=supply.text(supply.owing) if supply.owed else "",
        expired=medication.is_expired(content),
        expires=medication.expires_at(content),
        issue=medication.issue_text(content),
    )
    if story:
        view.events = sorted(_events(node, record, content, item), key=lambda e: e.when or datetime.min)
    return view


def _events(node: Node, record: Resource, content: dict, item: str) -> list[Event]:
    """The item's story: its versions here, the messages about it, the dispenses learnt of."""
    events: list[Event] = []
    previous: dict = {}
    for version in record.versions.order_by("version_id"):
        if not version.text:
            continue
        current = jsonio.loads(version.text)
        events += _changes(node, previous, current, version.last_updated)
        previous = current
    for when, code in _outcomes(content):
        if code == medication.EXPIRED:
            continue  # told by the status change
        refused = code != "R-0001"
        words = medication.CANCELLATION_OUTCOMES.get(code, "")
        text = f"Cancellation {'refused' if refused else 'accepted'}: {code} {words}"
        events.append(Event(when, text.strip(), "red" if refused else "grey"))
    events += _message_events(node, medication.group_id(content), item)
    for dispense in dispenses_for_item(node=node, item=item) if item else []:
        events += _dispense_events(node, dispense)
    return events


def _changes(node: Node, before: dict, after: dict, when: datetime) -> list[Event]:
    if not before:
        return [Event(when, "Issued", "blue")]
    events = []
    if after.get("status") != before.get("status"):
        status = after.get("status", "")
        if status == "cancelled":
            reason = medication.CANCELLATION_REASONS.get(medication.cancellation_reason(after), "")
            events.append(Event(when, f"Cancelled{': ' + reason if reason else ''}", "red"))
        elif status == "completed":
            events.append(Event(when, "Completed: the pharmacy has dispensed it", "green"))
        elif medication.is_expired(after):
            events.append(Event(when, "Expired: not dispensed in time", "grey"))
        else:
            events.append(Event(when, f"Status {status}"))
    if medication.returned(after) and not medication.returned(before):
        events.append(Event(when, "Returned by the pharmacy (not dispensed)", "orange"))
    if medication.nominated_ods(after) != medication.nominated_ods(before):
        name = _pharmacy_name(node, medication.nominated_ods(after))
        events.append(Event(when, f"Re-nominated to {name}", "blue"))
    return events


def _outcomes(content: dict) -> list[tuple[datetime | None, str]]:
    found = []
    for extension in content.get("extension", []):
        if extension.get("url") != medication.STATUS_HISTORY:
            continue
        parts = {p.get("url"): p for p in extension.get("extension", [])}
        code = parts.get("status", {}).get("valueCoding", {}).get("code", "")
        found.append((parse_datetime(parts.get("statusDate", {}).get("valueDateTime", "")), code))
    return found


MESSAGE_WORDS = {
    "request.create": "Sent to {partner}",
    "request.renominate": "Sent to {partner}",
    "request.cancel": "Cancellation sent to {partner}",
    "request.complete": "Completion sent to {partner}",
    "notification": "{partner} notified",
}


def _message_events(node: Node, pid: str, item: str) -> list[Event]:
    about = Q(key=item) | Q(key=pid, body__contains=item) if item else Q(key=pid)
    events = []
    for message in (
        Message.objects.filter(about, node=node).exclude(kind="dispense.poll").select_related("partner")
    ):
        partner = message.partner.name if message.partner else "a partner"
        words = MESSAGE_WORDS.get(message.kind, message.kind.replace(".", " ").capitalize() + " ({partner})")
        text = words.format(partner=partner)
        if message.status == Message.Status.DELIVERED:
            events.append(Event(message.delivered_at, text))
        elif message.status == Message.Status.DEAD:
            events.append(
                Event(message.created, f"{text}: not delivered ({message.last_error[:120]})", "red")
            )
        elif message.attempts:
            retry = f"attempt {message.attempts} failed ({message.last_error[:80]}), retrying"
            events.append(Event(message.created, f"{text}: {retry}", "yellow"))
        else:
            events.append(Event(message.created, f"{text}: waiting to be sent", "grey"))
    return events


def _dispense_events(node: Node, dispense: Resource) -> list[Event]:
    events, before = [], ""
    for version in dispense.versions.order_by("version_id"):
        content = jsonio.loads(version.text) if version.text else {}
        status, amended = content.get("status", ""), before == "completed"
        if status == before and not amended:
            continue
        before = status
        pharmacy = _pharmacy_name(node, medication.performer_ods(content))
        if status == "in-progress":
            events.append(Event(version.last_updated, f"With dispenser: {pharmacy}", "blue"))
        elif status == "completed":
            words = medication.supply_words(content)
            text = (
                f"Amended by {pharmacy}: {words[0].lower()}{words[1:]}" if amended else f"{pharmacy}: {words}"
            )
            owed = medication.line_status(content) in (medication.PART_DISPENSED, medication.OWING)
            events.append(Event(version.last_updated, text, "purple" if owed else "green"))
        elif status == "declined":
            events.append(Event(version.last_updated, f"Declined by {pharmacy}", "orange"))
    return events


def pharmacy_name(*, node: Node, ods: str) -> str:
    """Return "Name (ODS)" for a partner in the node's directory ("" for no code)."""
    return _pharmacy_name(node, ods)


def _pharmacy_name(node: Node, ods: str) -> str:
    if not ods:
        return ""
    name = Partner.objects.filter(node=node, ods_code=ods).values_list("name", flat=True).first()
    return f"{name} ({ods})" if name else ods


def directory_pharmacies(*, node: Node) -> list[Partner]:
    """Return the pharmacies in the node's directory, by name."""
    return list(Partner.objects.filter(node=node, role=Partner.Role.PHARMACY).order_by("name"))
