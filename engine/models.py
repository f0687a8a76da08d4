"""What an integration engine keeps: the systems it serves with their rules, and a log of what
passed through it (the messages it holds to forward are the exchange's outbox)."""

from __future__ import annotations

from django.db import models

from exchange.models import Message, Partner
from nodes.models import ApiClient, Node


class Rule(models.TextChoices):
    LEAVE = "leave", "Leave as sent"
    STAMP = "stamp", "Stamp when missing"
    CHECK = "check", "Refuse when missing or different"


class Connection(models.Model):
    """One of the organisation's systems that reaches the broker through the engine (it
    presents its API client's token), and the rules applied to what it sends."""

    engine = models.ForeignKey(
        Node,
        on_delete=models.CASCADE,
        related_name="connections",
        limit_choices_to={"kind": Node.Kind.INTEGRATION_ENGINE},
    )
    client = models.OneToOneField(
        ApiClient,
        on_delete=models.CASCADE,
        related_name="engine_connection",
        help_text="The engine's API client the system holds the token of.",
    )
    name = models.CharField(max_length=200, help_text="e.g. Outpatient prescribing (EPMA)")
    ods_code = models.CharField("sending organisation (ODS code)", max_length=12)
    ods_rule = models.CharField(
        "sending organisation rule",
        max_length=8,
        choices=Rule.choices,
        default=Rule.CHECK,
        help_text="On a MedicationRequest's requester and a MedicationDispense's performer.",
    )
    prescription_type = models.CharField(
        max_length=4, blank=True, help_text="Extension-DM-PrescriptionType, e.g. 1001 outpatient community."
    )
    prescription_type_rule = models.CharField(max_length=8, choices=Rule.choices, default=Rule.STAMP)
    concept_map = models.CharField(
        max_length=300,
        blank=True,
        help_text="Canonical URL of a ConceptMap held at the engine, from the system's local medicine "
        "codes to dm+d. A local code it cannot map is refused.",
    )

    class Meta:
        ordering = ["engine", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code}) at {self.engine.slug}"


class Relay(models.Model):
    """One request that came through the engine, and what became of it."""

    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed through"  # the destination answered at once
        QUEUED = "queued", "Held to forward"  # 202: the message in the outbox tells the rest
        REFUSED = "refused", "Refused by the engine"  # a rule, before it left
        UNREACHABLE = "unreachable", "Destination unreachable"  # 502/504 to a synchronous call
        BEHIND = "behind", "Held back (earlier messages first)"  # 503: order kept

    engine = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="relays")
    sender = models.CharField(max_length=200, help_text="The API client that sent it.")
    connection = models.ForeignKey(Connection, on_delete=models.SET_NULL, null=True, blank=True)
    destination = models.ForeignKey(Partner, on_delete=models.SET_NULL, null=True, blank=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=1000)
    status = models.PositiveIntegerField(help_text="What the engine answered the sender.")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    note = models.TextField(blank=True, help_text="What the rules did, or why it was refused.")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    duration_ms = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["engine", "-created"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status} ({self.outcome})"
