"""The demo's hospital trust behind its integration engine (the guide's intermediary): the
trust reaches the broker, and the shared-record pharmacies reach the trust, only through the
engine, which stamps the trust's ODS code and prescription type and maps its local formulary
codes to dm+d with a ConceptMap it holds."""

from __future__ import annotations

from exchange.models import Partner, Topology
from nodes.models import Node
from nodes.services import api_client_issue

TRUST, ENGINE = "trust", "engine"
# The trust's outpatient prescriptions go to the pharmacies of the two shared-record topologies.
PHARMACIES = {
    "pharmacy-shared-record": Topology.SHARED_RECORD,
    "pharmacy-shared-record-events": Topology.SHARED_RECORD_EVENTS,
}
OUTPATIENT_COMMUNITY = "1001"
FORMULARY = "https://dmed.example/fhir/CodeSystem/riverbank-formulary"
FORMULARY_MAP = "https://dmed.example/fhir/ConceptMap/riverbank-formulary-to-dmd"
# The trust's formulary: local code, name, the dm+d product (None: no dm+d equivalent).
FORMULARY_CODES = (
    ("RB0001", "Paracetamol 500mg soluble tablets", "39720311000001101"),
    ("RB0002", "Diclofenac 2.32% gel", "22480211000001104"),
    ("RB0003", "Pilocarpine hydrochloride 6% eye drops", "347208002"),
    ("RB0099", "Riverbank aqueous cream (own make)", None),
)


def seed_trust_behind_engine(nodes: dict[str, Node], url: str, password: str, directory_entry) -> None:
    """Wire the trust, the engine, the broker and the shared-record pharmacies (idempotent)."""
    from engine.models import Connection, Rule

    trust, engine, broker = nodes[TRUST], nodes[ENGINE], nodes["broker"]
    # The trust sees the engine as its broker; the engine reaches the real one.
    directory_entry(trust, engine, Partner.Role.BROKER)
    entry = Partner.objects.get(node=trust, ods_code=engine.ods_code)
    entry.notification_url = f"{url}/{engine.slug}/notifications/{broker.ods_code}"
    entry.save()
    directory_entry(engine, broker, Partner.Role.BROKER)
    directory_entry(engine, trust, Partner.Role.PRESCRIBER)
    Connection.objects.update_or_create(
        engine=engine,
        client=engine.api_clients.get(name=trust.ods_code),
        defaults={
            "name": "Outpatient clinic prescribing",
            "ods_code": trust.ods_code,
            "ods_rule": Rule.CHECK,
            "prescription_type": OUTPATIENT_COMMUNITY,
            "prescription_type_rule": Rule.STAMP,
            "concept_map": FORMULARY_MAP,
        },
    )
    for slug, topology in PHARMACIES.items():
        pharmacy = nodes[slug]
        directory_entry(engine, pharmacy, Partner.Role.PHARMACY, topology)
        # The trust tells a pharmacy through the engine, with the token the engine gave it.
        directory_entry(trust, pharmacy, Partner.Role.PHARMACY, topology, via=engine, token=entry.token)
        # The pharmacy tells the trust through the engine, and takes what the engine relays.
        _relayed_entry(pharmacy, trust, Partner.Role.PRESCRIBER, topology, engine, password, directory_entry)
        directory_entry(pharmacy, engine, Partner.Role.ENGINE, Topology.SHARED_RECORD, token="")
    _relayed_entry(
        broker,
        trust,
        Partner.Role.PRESCRIBER,
        Topology.SHARED_RECORD_EVENTS,
        engine,
        password,
        directory_entry,
    )
    _formulary_map(engine)


def subscribe_trust(nodes: dict[str, Node], url: str) -> None:
    """The trust subscribes at the broker, through the engine, to dispenses of its prescriptions
    by the shared-record-events pharmacy; the broker calls back the engine, which relays."""
    from exchange.notifications import TOPIC_BASE
    from exchange.subscribing import subscribe
    from fhirserver.nhs import ODS_SYSTEM

    trust, engine = nodes[TRUST], nodes[ENGINE]
    pharmacy = nodes["pharmacy-shared-record-events"]
    subscribe(
        node=trust,
        partner=Partner.objects.get(node=trust, role=Partner.Role.BROKER),
        topic=TOPIC_BASE + "medication-dispense",
        filters=[
            f"MedicationDispense?prescription.requester:identifier={ODS_SYSTEM}|{trust.ods_code}"
            f"&performer:identifier={ODS_SYSTEM}|{pharmacy.ods_code}"
        ],
        content="full-resource",
        endpoint=f"{url}/{engine.slug}/notifications/{trust.ods_code}",
        heartbeat_seconds=60,
    )


def _relayed_entry(
    owner: Node, partner: Node, role: str, topology: str, engine: Node, password: str, directory_entry
) -> None:
    """owner reaches partner through the engine, with a token the engine issues to owner."""
    from nodes.demo import route_scopes

    token = f"{owner.slug}@{engine.slug}.{password}"
    api_client_issue(node=engine, name=owner.ods_code, token=token, scopes=route_scopes(owner, partner))
    directory_entry(owner, partner, role, topology, via=engine, token=token)


def _formulary_map(engine: Node) -> None:
    """The ConceptMap the engine maps the trust's local codes with (the unmapped one unmatched)."""
    from fhirserver.models import Resource
    from fhirserver.services import resource_create, resource_update

    elements = [
        {
            "code": code,
            "display": name,
            "target": [
                {"code": dmd, "display": name, "equivalence": "equivalent"}
                if dmd
                else {"equivalence": "unmatched", "comment": "No dm+d product: made by the trust's pharmacy."}
            ],
        }
        for code, name, dmd in FORMULARY_CODES
    ]
    content = {
        "resourceType": "ConceptMap",
        "url": FORMULARY_MAP,
        "version": "1",
        "name": "RiverbankFormularyToDmd",
        "title": "Riverbank formulary to dm+d",
        "status": "active",
        "sourceUri": FORMULARY,
        "targetUri": "https://dmd.nhs.uk",
        "group": [{"source": FORMULARY, "target": "http://snomed.info/sct", "element": elements}],
    }
    found = Resource.objects.filter(node=engine, resource_type="ConceptMap", deleted=False).first()
    if found is None:
        resource_create(node=engine, resource_type="ConceptMap", content=content)
    else:
        resource_update(
            node=engine,
            resource_type="ConceptMap",
            logical_id=found.logical_id,
            content={**content, "id": found.logical_id},
        )
