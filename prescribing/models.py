from __future__ import annotations

from django.db import models

from nodes.models import Node


class PrescriptionSequence(models.Model):
    """The last sequence number a prescribing node put in a Prescription ID."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="prescription_sequence")
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.node.slug}: {self.last}"
