"""The demo ecosystem: one GP practice, a broker, a pharmacy reached by each topology, and a
hospital trust behind an integration engine."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.db import transaction

from nodes.demo_engine import seed_trust_behind_engine, subscribe_trust
from nodes.models import Membership, Node
from nodes.services import api_client_issue

TOPOLOGIES = (
    "peer-to-peer",
    "dispenser-hosted",
    "prescriber-hosted",
    "shared-record",
    "shared-record-events",
)

# slug, kind, ODS code, name
NODES = (
    ("gp", Node.Kind.PRESCRIBING, "A83008", "Hallgarth Surgery"),
    ("broker", Node.Kind.BROKER, "X26", "Medicines Broker"),
    ("pharmacy-peer-to-peer", Node.Kind.DISPENSING, "FA565", "Station Road Pharmacy"),
    ("pharmacy-dispenser-hosted", Node.Kind.DISPENSING, "VNE51", "Market Place Chemist"),
    ("pharmacy-prescriber-hosted", Node.Kind.DISPENSING, "FCG71", "Riverside Pharmacy"),
    ("pharmacy-shared-record", Node.Kind.DISPENSING, "FH542", "High Street Pharmacy"),
    ("pharmacy-shared-record-events", Node.Kind.DISPENSING, "FEW08", "Parkside Pharmacy"),
    # A hospital trust's outpatient clinics, reaching the broker through the trust's engine.
    ("trust", Node.Kind.PRESCRIBING, "RZZ", "Riverbank Hospitals NHS Trust"),
    ("engine", Node.Kind.INTEGRATION_ENGINE, "RZZIE", "Riverbank Integration Engine"),
)

# username, node slug, role, full name
USERS = (
    ("prescriber", "gp", Membership.Role.PRESCRIBER, "Dr Asha Patel"),
    ("gp-admin", "gp", Membership.Role.ADMINISTRATOR, "Jo Bennett"),
    ("broker-admin", "broker", Membership.Role.ADMINISTRATOR, "Sam Okafor"),
    ("outpatient-prescriber", "trust", Membership.Role.PRESCRIBER, "Dr Miriam Okoye"),
    ("engine-admin", "engine", Membership.Role.ADMINISTRATOR, "Lee Harper"),
    *tuple(
        (
            f"pharmacist-{topology}",
            f"pharmacy-{topology}",
            Membership.Role.PHARMACIST,
            f"Pharmacist ({topology})",
        )
        for topology in TOPOLOGIES
    ),
)


def demo_url() -> str:
    """Return where the demo's nodes reach each other (DMED_DEMO_URL, else 127.0.0.1:8000)."""
    return (os.environ.get("DMED_DEMO_URL") or "http://127.0.0.1:8000").rstrip("/")


def demo_password() -> str:
    """Return the demo users' password: DMED_DEMO_PASSWORD, else the documented demo one."""
    return os.environ.get("DMED_DEMO_PASSWORD") or "dmed-demo"


def demo_api_token(slug: str) -> str:
    """Return the demo bearer token of a node's FHIR API, the one its partners hold: it exchanges
    resources, and may neither prescribe nor dispense."""
    return f"{slug}.{demo_password()}"


def demo_system_token(slug: str) -> str:
    """Return the bearer token of a node's outside system (a clinical system driving the node
    through its FHIR API): at a GP it may prescribe, at a pharmacy dispense."""
    return f"{slug}.system.{demo_password()}"


# What each route's token may do where it is used: (kind of the holder, kind of the node it is
# used at). A prescriber issues and cancels, reads what was dispensed and subscribes; a dispenser
# reads requests, dispenses and subscribes; the broker's notifications bring the focus of each.
ROUTE_SCOPES = {
    (Node.Kind.PRESCRIBING, Node.Kind.BROKER): "system/MedicationRequest.cruds system/MedicationDispense.rs "
    "system/Subscription.cruds",
    (
        Node.Kind.PRESCRIBING,
        Node.Kind.DISPENSING,
    ): "system/MedicationRequest.cruds system/MedicationDispense.rs",
    (Node.Kind.DISPENSING, Node.Kind.BROKER): "system/MedicationRequest.rus system/MedicationDispense.cruds "
    "system/Subscription.cruds",
    (
        Node.Kind.DISPENSING,
        Node.Kind.PRESCRIBING,
    ): "system/MedicationRequest.rs system/MedicationDispense.cruds",
    (Node.Kind.BROKER, Node.Kind.PRESCRIBING): "system/MedicationDispense.c",
    (Node.Kind.BROKER, Node.Kind.DISPENSING): "system/MedicationRequest.c",
}
# A trust's system at its engine: as at the broker, and it may translate its local codes there.
ROUTE_SCOPES[Node.Kind.PRESCRIBING, Node.Kind.INTEGRATION_ENGINE] = (
    ROUTE_SCOPES[Node.Kind.PRESCRIBING, Node.Kind.BROKER] + " system/ConceptMap.rs"
)
# An integration engine carries both sides' traffic.
RELAY_SCOPES = "system/MedicationRequest.cruds system/MedicationDispense.cruds system/Subscription.cruds"


def route_scopes(owner: Node, partner: Node) -> str:
    """The scopes of the token owner holds at partner: only what its route needs."""
    return ROUTE_SCOPES.get((owner.kind, partner.kind), RELAY_SCOPES)


def exchange_scopes(kind: str) -> str:
    """The demo token of a node: everything but prescribing at a prescribing node and dispensing
    at a dispensing node."""
    if kind == Node.Kind.PRESCRIBING:
        return "system/*.rs system/MedicationDispense.cud system/Subscription.cud"
    if kind == Node.Kind.DISPENSING:
        return "system/*.rs system/MedicationRequest.cud system/Subscription.cud"
    return "system/*.cruds"


@transaction.atomic
def demo_seed() -> None:
    """Create or refresh the demo nodes and users; safe to run any number of times."""
    from exchange.topics import topics_install

    User = get_user_model()
    password = demo_password()
    for slug, kind, ods_code, name in NODES:
        node, _ = Node.objects.update_or_create(
            slug=slug, defaults={"kind": kind, "ods_code": ods_code, "name": name}
        )
        topics_install(node=node)
        api_client_issue(node=node, name="demo", token=demo_api_token(slug), scopes=exchange_scopes(kind))
        if kind in (Node.Kind.PRESCRIBING, Node.Kind.DISPENSING):
            api_client_issue(
                node=node, name="outside system", token=demo_system_token(slug), scopes="system/*.cruds"
            )
    for username, slug, role, full_name in USERS:
        first, _, last = full_name.rpartition(" ")
        user, _ = User.objects.update_or_create(
            username=username, defaults={"first_name": first, "last_name": last}
        )
        user.set_password(password)
        user.save()
        Membership.objects.update_or_create(
            user=user, node=Node.objects.get(slug=slug), defaults={"role": role}
        )
    _seed_directory()
    admin, _ = User.objects.update_or_create(
        username="admin",
        defaults={"is_staff": True, "is_superuser": True, "first_name": "Demo", "last_name": "Administrator"},
    )
    admin.set_password(password)
    admin.save()


def _seed_directory() -> None:
    """Give each node its partners: the GP reaches each pharmacy by that pharmacy's topology."""
    from exchange.models import Partner

    nodes = {node.slug: node for node in Node.objects.all()}
    gp, broker = nodes["gp"], nodes["broker"]
    directory_entry(gp, broker, Partner.Role.BROKER)
    for topology in TOPOLOGIES:
        pharmacy = nodes[f"pharmacy-{topology}"]
        directory_entry(gp, pharmacy, Partner.Role.PHARMACY, topology)
        directory_entry(pharmacy, gp, Partner.Role.PRESCRIBER, topology)
        directory_entry(pharmacy, broker, Partner.Role.BROKER)
    _subscribe_at_the_broker(gp, broker, nodes["pharmacy-shared-record-events"])
    seed_trust_behind_engine(nodes, demo_url(), demo_password(), directory_entry)
    subscribe_trust(nodes, demo_url())


def _subscribe_at_the_broker(gp: Node, broker: Node, pharmacy: Node) -> None:
    """shared-record-events: the pharmacy subscribes to requests for it, the gp to dispenses of
    its prescriptions by that pharmacy. The broker's directory holds the token it calls each back
    with (the Subscription resources hold no secret)."""
    from exchange.models import Partner
    from exchange.notifications import TOPIC_BASE
    from exchange.subscribing import subscribe
    from fhirserver.nhs import ODS_SYSTEM

    to_dispense = f"MedicationRequest?intended-dispenser:identifier={ODS_SYSTEM}|{pharmacy.ods_code}"
    dispensed = (
        f"MedicationDispense?prescription.requester:identifier={ODS_SYSTEM}|{gp.ods_code}"
        f"&performer:identifier={ODS_SYSTEM}|{pharmacy.ods_code}"
    )
    for subscriber, role, topic, criterion in (
        (pharmacy, Partner.Role.PHARMACY, "medication-request", to_dispense),
        (gp, Partner.Role.PRESCRIBER, "medication-dispense", dispensed),
    ):
        directory_entry(broker, subscriber, role, "shared-record-events")
        subscribe(
            node=subscriber,
            partner=Partner.objects.get(node=subscriber, role=Partner.Role.BROKER),
            topic=TOPIC_BASE + topic,
            filters=[criterion],
            content="full-resource",
            endpoint=f"{demo_url()}/{subscriber.slug}/notifications",
            heartbeat_seconds=60,
        )


def directory_entry(
    owner: Node,
    partner: Node,
    role: str,
    topology: str = "",
    *,
    via: Node | None = None,
    token: str | None = None,
) -> None:
    """Put partner in owner's directory, with a token the partner issues to owner (by ODS code),
    unless a token is given. With `via` (an integration engine), owner's notifications for the
    partner go to the engine, which relays them."""
    from exchange.models import Partner

    if token is None:
        token = f"{owner.slug}@{partner.slug}.{demo_password()}"
        api_client_issue(node=partner, name=owner.ods_code, token=token, scopes=route_scopes(owner, partner))
    notifications = (
        f"{demo_url()}/{via.slug}/notifications/{partner.ods_code}"
        if via
        else (f"{demo_url()}/{partner.slug}/notifications")
    )
    Partner.objects.update_or_create(
        node=owner,
        ods_code=partner.ods_code,
        defaults={
            "name": partner.name,
            "role": role,
            "topology": topology,
            "fhir_base": f"{demo_url()}/{partner.slug}/fhir",
            "notification_url": notifications,
            "token": token,
            "poll_interval": 2,
        },
    )
