from __future__ import annotations

from django.conf import settings
from django.db import models

from nodes.models import Node


class PrescriptionSequence(models.Model):
    """The last sequence number a prescribing node put in a Prescription ID."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="prescription_sequence")
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.node.slug}: {self.last}"


class PrescriptionDraft(models.Model):
    """A prescription being written: its items and route until it is issued. Its token is the
    one-time key of the issue form, so a double click, a resubmitted form or two concurrent
    posts issue one prescription."""

    class Course(models.TextChoices):
        ACUTE = "acute", "Acute (one supply)"
        REPEAT = "repeat", "Repeat (re-authorised by the prescriber)"
        ERD = "erd", "Repeat dispensing (eRD: issues released one by one, each when due)"

    class Route(models.TextChoices):
        NOMINATED = "nominated", "The patient's nominated pharmacy"
        OTHER = "other", "Another pharmacy"
        NONE = "none", "No pharmacy: the patient takes the token to any pharmacy"

    token = models.UUIDField(unique=True)
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="drafts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    nhs_number = models.CharField(max_length=10)
    items = models.JSONField(default=list, blank=True)
    course = models.CharField(max_length=8, choices=Course.choices, default=Course.ACUTE)
    route = models.CharField(max_length=12, choices=Route.choices, default=Route.NOMINATED)
    pharmacy_ods = models.CharField(max_length=12, blank=True)
    # Repeat dispensing only: how many issues, how many days apart, valid for how many months.
    issues = models.PositiveSmallIntegerField(null=True, blank=True)
    interval_days = models.PositiveSmallIntegerField(null=True, blank=True)
    validity_months = models.PositiveSmallIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    prescription_id = models.CharField(max_length=20, blank=True, help_text="Set once issued.")
    issued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prescription_id or 'draft'} for {self.nhs_number}"
