"""The subscription topics a node offers (R4 Subscriptions Backport): what triggers each, and
which search parameters a subscriber may filter it by."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exchange.notifications import TOPIC_BASE
from fhirserver import medication


@dataclass(frozen=True)
class Topic:
    name: str
    resource_type: str
    description: str
    filters: tuple[str, ...]  # search parameters (chains start with one of them)
    triggered: Callable[[dict | None, dict], bool]  # (previous version or None, new version)

    @property
    def url(self) -> str:
        return TOPIC_BASE + self.name


def _request_for_dispenser(previous: dict | None, current: dict) -> bool:
    """Active, cancelled or expired, newly so or newly for this dispenser (created, re-nominated)."""
    if current.get("status") not in ("active", "cancelled") and not medication.is_expired(current):
        return False
    return (
        previous is None
        or previous.get("status") != current.get("status")
        or medication.nominated_ods(previous) != medication.nominated_ods(current)
    )


def _dispense_status_changed(previous: dict | None, current: dict) -> bool:
    """New, or its status changed, or (an amended supply) its quantity."""
    return previous is None or any(previous.get(key) != current.get(key) for key in ("status", "quantity"))


TOPICS = {
    topic.url: topic
    for topic in (
        Topic(
            "medication-request",
            "MedicationRequest",
            "A MedicationRequest for a dispenser became active or was cancelled "
            "(filter by intended-dispenser).",
            (
                "intended-dispenser",
                "status",
                "patient",
                "subject",
                "requester",
                "identifier",
                "group-identifier",
            ),
            _request_for_dispenser,
        ),
        Topic(
            "medication-dispense",
            "MedicationDispense",
            "A MedicationDispense changed status (filter by the prescriber, as "
            "prescription.requester:identifier, or by performer).",
            ("prescription", "performer", "status", "patient", "subject", "identifier"),
            _dispense_status_changed,
        ),
    )
}
