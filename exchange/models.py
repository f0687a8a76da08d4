"""The directory of partners, and the outbox that carries every message to them."""

from __future__ import annotations

from django.db import models

from nodes.models import Node


class Topology(models.TextChoices):
    PEER_TO_PEER = "peer-to-peer"
    DISPENSER_HOSTED = "dispenser-hosted"
    PRESCRIBER_HOSTED = "prescriber-hosted"
    SHARED_RECORD = "shared-record"
    SHARED_RECORD_EVENTS = "shared-record-events"


# The topologies in which the broker keeps the record (with events, it also tells who needs to know).
SHARED_RECORDS = {Topology.SHARED_RECORD, Topology.SHARED_RECORD_EVENTS}


class Partner(models.Model):
    """Another organisation's system as this node reaches it (the node's directory)."""

    class Role(models.TextChoices):
        PHARMACY = "pharmacy", "Pharmacy"
        PRESCRIBER = "prescriber", "Prescriber"
        BROKER = "broker", "Message broker"
        ENGINE = "engine", "Integration engine"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="partners")
    ods_code = models.CharField("ODS code", max_length=12)
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices)
    fhir_base = models.URLField("FHIR base URL", blank=True)
    notification_url = models.URLField(blank=True)
    token = models.CharField(
        max_length=200, blank=True, help_text="The bearer token this node presents to the partner."
    )
    topology = models.CharField(
        max_length=24,
        choices=Topology.choices,
        blank=True,
        help_text="For a pharmacy: how prescriptions reach it.",
    )
    poll_interval = models.PositiveIntegerField(
        default=30, help_text="Seconds between polls of a dispenser-hosted pharmacy."
    )

    class Meta:
        ordering = ["node", "name"]
        constraints = [models.UniqueConstraint(fields=["node", "ods_code"], name="one_entry_per_partner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code}) for {self.node.slug}"


class Message(models.Model):
    """One outbound HTTP interaction, written with the change that causes it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="messages")
    partner = models.ForeignKey(
        Partner, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    # Messages with one key (a prescription) are delivered one at a time, in the order made.
    key = models.CharField(max_length=100)
    kind = models.CharField(max_length=40, help_text="What the message does, e.g. request.create.")
    method = models.CharField(max_length=8)
    # A search's URL: a dispenser-hosted poll names 20 items (about 2,300 characters at most).
    url = models.CharField(max_length=4000)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    # A service called with the answer, inside the transaction that marks the message delivered.
    on_success = models.CharField(max_length=200, blank=True)
    # A service called with the error after each failed attempt, and whether the message is dead.
    on_failure = models.CharField(max_length=200, blank=True)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="After this, a message still failing is dead.")
    leased_until = models.DateTimeField(null=True, blank=True)
    # When a task to deliver it was last handed to Celery: the sweep hands it over again only when
    # that task cannot be the one to send it (exchange.services.messages_sweep).
    queued_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["node", "key", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.url} ({self.kind}, {self.status})"


class Attempt(models.Model):
    """One try at delivering a message: what was sent and what came back."""

    # None for a call made while the user waits (a claim at the broker), not through the outbox.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="attempt_log", null=True, blank=True
    )
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=4000)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["node", "-created"])]

    def __str__(self) -> str:
        return f"#{self.number} {self.method} {self.url} → {self.status_code or self.error[:40]}"


class NotificationStream(models.Model):
    """Event numbers of the notifications one node sends one partner (numbered from 1)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    last_event = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "partner"], name="one_stream_per_partner")]

    def __str__(self) -> str:
        return f"{self.node.slug} → {self.partner.ods_code}: {self.last_event}"


class ReceivedEvent(models.Model):
    """A notification event this node has received (or recovered) from a partner."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    # The sender's stream of numbered events: its Subscription (or a stream of its own).
    subscription = models.CharField(max_length=300, default="")
    number = models.PositiveIntegerField()
    event = models.CharField(max_length=60)
    recovered = models.BooleanField(default=False, help_text="Missed, then caught up by a fetch.")
    received = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["node", "partner", "subscription", "number"], name="one_receipt_per_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner.ods_code} #{self.number} {self.event}"


class Subscription(models.Model):
    """What one of a node's Subscription resources matches and where its events go: an index
    rewritten with each version of the resource, which stays the source of truth."""

    class Status(models.TextChoices):
        REQUESTED = "requested"
        ACTIVE = "active"
        ERROR = "error"
        OFF = "off"

    resource = models.OneToOneField(
        "fhirserver.Resource", on_delete=models.CASCADE, related_name="subscription_index"
    )
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices)
    resource_type = models.CharField(max_length=64, help_text="The type of resource it matches.")
    topic = models.CharField(max_length=300, blank=True, help_text="Topic-based (backport): its canonical.")
    criteria = models.CharField(max_length=1000, blank=True, help_text="Search parameters to match.")
    endpoint = models.URLField(max_length=1000)
    headers = models.JSONField(default=dict, blank=True)
    payload = models.CharField(max_length=64, blank=True)
    content = models.CharField(max_length=16, blank=True, help_text="empty | id-only | full-resource")
    heartbeat_seconds = models.PositiveIntegerField(null=True, blank=True)
    event_count = models.PositiveIntegerField(default=0, help_text="eventsSinceSubscriptionStart")
    last_sent = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["node", "resource_type", "status"])]

    def __str__(self) -> str:
        return f"Subscription/{self.resource.logical_id} at {self.node.slug} ({self.status})"

    @property
    def key(self) -> str:
        """The outbox key: one subscription's messages are delivered in order."""
        return f"subscription-{self.pk}"


class SubscriptionEvent(models.Model):
    """One numbered event of a subscription: the version of the resource that triggered it."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    number = models.PositiveIntegerField()
    focus_type = models.CharField(max_length=64)
    focus_id = models.CharField(max_length=64)
    focus_version = models.PositiveIntegerField()
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "number"], name="one_event_per_number")
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.focus_type}/{self.focus_id}"
