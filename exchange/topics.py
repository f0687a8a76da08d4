"""The subscription topics a node offers (R4 Subscriptions Backport): `Basic` resources coded
SubscriptionTopic, written to the node's FHIR API like any resource. Each is checked as it is
written; a Subscription names one by its url; a write of the topic's resource type triggers it
when the topic's FHIRPath criteria, given %previous and %current, are true. dmed's own two
medication topics are data (exchange/data/topics/), installed at every node.

The shape is the IG's own R4 example, HL7/fhir-subscription-backport-ig
input/resources/Basic-r4-encounter-complete.json (and input/fsh/BackportTopics.fsh): Basic.code
fhir-types#SubscriptionTopic; url, version, name, title and description in the R5 cross-version
extensions (http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.<element>),
status in a modifierExtension; resourceTrigger and canFilterBy in the 4.3 ones there (both
prefixes are read here for every element)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from django.db import transaction

from exchange.models import Subscription
from fhirserver import fhirpath, jsonio, services
from fhirserver.errors import FHIRError
from fhirserver.models import Resource, ResourceVersion
from fhirserver.registry import is_resource_type
from fhirserver.searchparams import params_for
from nodes.models import Node

log = logging.getLogger(__name__)

FHIR_TYPES = "http://hl7.org/fhir/fhir-types"
EXTENSION_PREFIXES = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.",
)
STRUCTURE_DEFINITION = "http://hl7.org/fhir/StructureDefinition/"
INTERACTIONS = ("create", "update")  # what a trigger may name here, and its default
BUILT_IN = Path(__file__).resolve().parent / "data" / "topics"


@dataclass(frozen=True)
class Topic:
    url: str
    description: str
    resource_type: str
    interactions: tuple[str, ...]  # create, update
    criteria: str  # FHIRPath over %previous and %current; "" triggers on each interaction
    filters: tuple[str, ...]  # search parameters (chains start with one of them)

    def triggered(self, previous: dict | None, current: dict) -> bool:
        """Whether a write (previous version or None, new version) is an event of this topic."""
        if ("create" if previous is None else "update") not in self.interactions:
            return False
        if not self.criteria:
            return True
        variables = {"previous": [] if previous is None else previous, "current": current}
        try:
            return fhirpath.compiled(self.criteria)(current, variables) == [True]
        except Exception:  # a topic's fault must not fail the write it is evaluated in
            log.exception("The criteria of topic %s failed on %s", self.url, current.get("id"))
            return False


@dataclass(frozen=True)
class _Read:
    topic: Topic
    url_path: str
    resource_path: str


# What a node offers: its live topics, found by their code in the token index.


def topics_at(node: Node) -> dict[str, Topic]:
    """Return the node's live topics by url, oldest first."""
    topics: dict[str, Topic] = {}
    for text in _topic_texts(_topic_records(node)):
        topic = _topic_of(text)
        if topic is not None:
            topics.setdefault(topic.url, topic)
    return topics


def topic_urls(node: Node) -> list[str]:
    """The canonical URLs of the topics a node offers."""
    return list(topics_at(node))


def _topic_records(node: Node):
    """The node's live Basic resources coded SubscriptionTopic, in no order: topics_at asks for
    them on every write a topic subscription may match, and ordered in SQL (by pk), SQLite reads
    them through the index on the node alone, every resource of the node (thousands), rather than
    through the one on node and type (a few Basic); _topic_texts puts them in order."""
    return Resource.objects.filter(
        node=node,
        resource_type="Basic",
        deleted=False,
        tokens__param="code",
        tokens__system=FHIR_TYPES,
        tokens__code="SubscriptionTopic",
    )


def _topic_texts(records) -> list[str]:
    """The texts of topic records, oldest first."""
    return [text for _, text in sorted(records.values_list("pk", "text"))]


@lru_cache(maxsize=256)
def _topic_of(text: str) -> Topic | None:
    """The topic a stored Basic holds (checked when written), parsed once per version; None
    for any other Basic."""
    content = jsonio.loads(text)
    if not is_topic(content):
        return None
    try:
        return _read(content).topic
    except FHIRError:
        log.warning("A stored SubscriptionTopic no longer reads: %s", text[:200])
        return None


def is_topic(content: dict) -> bool:
    return any(
        coding.get("system") == FHIR_TYPES and coding.get("code") == "SubscriptionTopic"
        for coding in (content.get("code") or {}).get("coding") or []
    )


# Written through the API (FHIR_WRITE_HANDLERS, FHIR_DELETE_HANDLERS), inside the write.


def topic_stored(*, node: Node, record: Resource, content: dict) -> None:
    """Check a SubscriptionTopic written as a Basic: refuse one that cannot work, a url another
    topic here has, and a change that would strand the subscriptions naming it (422, with the
    path at fault). Any other Basic is untouched."""
    read = _read(content, node=node) if is_topic(content) else None
    before = _topic_before(record) if record.version_id > 1 else None
    if read is None and before is None:
        return
    # One topic write at a time per node, so two cannot take the same url.
    Node.objects.select_for_update(no_key=True).filter(pk=node.pk).values_list("pk").first()
    if read is not None:
        others = _topic_texts(_topic_records(node).exclude(pk=record.pk))
        if any((t := _topic_of(text)) is not None and t.url == read.topic.url for text in others):
            raise _refused(f"Another topic here has the url {read.topic.url!r}.", read.url_path)
    if before is None or not _in_use(node, before.url):
        return
    if read is None:
        raise _refused(f"Subscriptions here use this topic ({before.url}); it stays a topic.", "Basic.code")
    if read.topic.url != before.url:
        raise _refused(f"Subscriptions here use this topic by its url {before.url!r}.", read.url_path)
    if read.topic.resource_type != before.resource_type:
        raise _refused(
            f"Subscriptions here use this topic for {before.resource_type}; its trigger keeps that type.",
            read.resource_path,
        )


def topic_deleted(*, node: Node, record: Resource) -> None:
    """A topic that live subscriptions here name is not deleted (409): turn them off first."""
    before = _topic_before(record)
    if before is not None and _in_use(node, before.url):
        raise FHIRError(
            409,
            "conflict",
            f"Subscriptions here use the topic {before.url}: turn them off or delete them first.",
        )


def _topic_before(record: Resource) -> Topic | None:
    older = ResourceVersion.objects.filter(resource=record, version_id=record.version_id - 1).first()
    return _topic_of(older.text) if older is not None and older.text else None


def _in_use(node: Node, url: str) -> bool:
    return (
        Subscription.objects.filter(node=node, topic=url, resource__deleted=False)
        .exclude(status=Subscription.Status.OFF)
        .exists()
    )


# Reading a topic: the extensions of the IG's Basic, each refusal naming its path.


def _read(content: dict, *, node: Node | None = None) -> _Read:
    """Return the topic a Basic describes, or refuse it (422, with the path at fault); with a
    node, also check what it names against what the node has."""
    url = url_path = title = description = ""
    triggers: list[tuple[str, list]] = []
    filters: list[tuple[str, list]] = []
    for index, extension in enumerate(content.get("extension") or []):
        path, element = f"Basic.extension[{index}]", _element(extension.get("url") or "")
        if element == "url":
            if url_path:
                raise _refused("A topic has one url.", path)
            url, url_path = extension.get("valueUri") or "", f"{path}.valueUri"
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                raise _refused(
                    "The url is an absolute http(s) URL: a Subscription's criteria names it.", url_path
                )
        elif element == "title":
            title = extension.get("valueString") or ""
        elif element == "description":
            description = extension.get("valueMarkdown") or extension.get("valueString") or ""
        elif element == "resourceTrigger":
            triggers.append((path, extension.get("extension") or []))
        elif element == "canFilterBy":
            filters.append((path, extension.get("extension") or []))
        elif element == "eventTrigger":
            raise _refused("Topics here are triggered by resources (resourceTrigger), not events.", path)
    if not url_path:
        raise _refused(
            f"A topic needs its url: an extension {EXTENSION_PREFIXES[0]}url with a valueUri.",
            "Basic.extension",
        )
    if len(triggers) != 1:
        raise _refused(
            f"A topic here has one resourceTrigger (an extension {EXTENSION_PREFIXES[0]}resourceTrigger).",
            triggers[1][0] if triggers else "Basic.extension",
        )
    resource_type, resource_path, interactions, criteria = _trigger(*triggers[0], node=node)
    codes = [_filter(path, parts, resource_type, node) for path, parts in filters]
    topic = Topic(url, description or title, resource_type, interactions, criteria, tuple(codes))
    return _Read(topic, url_path, resource_path)


def _trigger(path: str, parts: list, *, node: Node | None) -> tuple[str, str, tuple[str, ...], str]:
    resource_type = resource_path = criteria = criteria_path = ""
    interactions: list[str] = []
    for index, part in enumerate(parts):
        name, at = part.get("url"), f"{path}.extension[{index}]"
        if name == "resource":
            resource_type, resource_path = _type_name(part.get("valueUri") or ""), f"{at}.valueUri"
            if not is_resource_type(resource_type):
                raise _refused(f"{part.get('valueUri')!r} is not a resource type stored here.", resource_path)
        elif name == "supportedInteraction":
            code = part.get("valueCode")
            if code == "delete":
                raise _refused(
                    "Deletes trigger no notifications here (a deleted resource has no current "
                    "version to evaluate or send): use create and update.",
                    f"{at}.valueCode",
                )
            if code not in INTERACTIONS:
                raise _refused(
                    f"An interaction is create, update or delete, not {code!r}.", f"{at}.valueCode"
                )
            interactions.append(code)
        elif name == "queryCriteria":
            raise _refused("queryCriteria is not supported here: give fhirPathCriteria.", at)
        elif name == "fhirPathCriteria":
            criteria, criteria_path = part.get("valueString") or "", f"{at}.valueString"
    if not resource_path:
        raise _refused("The resourceTrigger names its resource (a valueUri).", path)
    if criteria_path and node is not None:
        _check_criteria(criteria, resource_type, criteria_path)
    return resource_type, resource_path, tuple(interactions) or INTERACTIONS, criteria


def _check_criteria(criteria: str, resource_type: str, path: str) -> None:
    """Refuse criteria that do not parse or that fail on a create or an update of the type."""
    empty = {"resourceType": resource_type}
    for previous in ([], empty):
        wrong = fhirpath.problem(criteria, resource_type, {"previous": previous, "current": empty})
        if wrong:
            raise _refused(f"The fhirPathCriteria do not work: {wrong}.", path)


def _filter(path: str, parts: list, resource_type: str, node: Node | None) -> str:
    code = ""
    for index, part in enumerate(parts):
        name, at = part.get("url"), f"{path}.extension[{index}]"
        if name == "resource" and _type_name(part.get("valueUri") or "") != resource_type:
            raise _refused(f"The topic's filters are on its trigger's {resource_type}.", f"{at}.valueUri")
        if name == "filterParameter":
            code = part.get("valueString") or ""
            if node is not None and code not in params_for(resource_type, node=node):
                raise _refused(f"{resource_type} has no search parameter {code!r}.", f"{at}.valueString")
    if not code:
        raise _refused("A canFilterBy names its filterParameter.", path)
    return code


def _element(url: str) -> str:
    for prefix in EXTENSION_PREFIXES:
        if url.startswith(prefix):
            return url.removeprefix(prefix)
    return ""


def _type_name(uri: str) -> str:
    """The resource type a trigger names, as a type or as its StructureDefinition's URL."""
    return uri.removeprefix(STRUCTURE_DEFINITION)


def _refused(diagnostics: str, path: str) -> FHIRError:
    return FHIRError(422, "invalid", diagnostics, [path])


# dmed's own topics, at every node.


@cache
def _built_in() -> dict[str, dict]:
    """The built-in topics' Basic resources, by logical id (their file names)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(BUILT_IN.glob("*.json"))}


@transaction.atomic
def topics_install(*, node: Node) -> list[str]:
    """Give a node the built-in topics it lacks (by url), checked as any topic written to it;
    return the urls installed. Running it again changes nothing."""
    have = topic_urls(node)
    installed = []
    for logical_id, content in _built_in().items():
        url = _read(content).topic.url
        if url in have:
            continue
        taken = Resource.objects.filter(
            node=node, resource_type="Basic", logical_id=logical_id, deleted=False
        )
        if taken.exists():  # a Basic of the node's own holds the id: a server-assigned one
            services.resource_create(node=node, resource_type="Basic", content=content)
        else:
            services.resource_update(
                node=node, resource_type="Basic", logical_id=logical_id, content={**content, "id": logical_id}
            )
        installed.append(url)
    return installed


# The built-in topics as defined, for what has no node at hand (exchange/selectors.py reads
# their descriptions here; a node's own topics are topics_at(node)).
TOPICS = {read.topic.url: read.topic for read in map(_read, _built_in().values())}
