"""Workflow triggers: a write through a node's FHIR API that starts or moves a workflow.

The guide triggers a MedicationRequest when its status becomes `active` and a MedicationDispense
when it becomes `completed`. The workflow apps name their handlers in settings
(FHIR_API_TRIGGERS), so this app depends on no workflow app. A handler looks at a write and
returns what carries it out (the workflow's own service, which stores it and sends what the
topology sends), or None to leave it to the store. Only writes made through the API pass here:
what the services write themselves never triggers again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from fhirserver import jsonio, owners, scopes, services
from fhirserver.models import Resource
from fhirserver.validation import validate_resource
from nodes.models import ApiClient, Node


@dataclass
class Caller:
    """Who writes through the API (None when the API needs no token), and what the writes of one
    transaction Bundle share (say, the Prescription ID given to its requests)."""

    client: ApiClient | None
    shared: dict = field(default_factory=dict)
    in_bundle: bool = False

    def allow(self, needs: list[scopes.Need]) -> None:
        """Refuse (403) what the client's scopes do not grant; anything when the API needs no token."""
        if self.client is not None and needs:
            granted = getattr(self.client, "granted", None) or scopes.Scopes(self.client.scopes)
            granted.require(needs, self.client.name)


@dataclass(frozen=True)
class Write:
    node: Node
    caller: Caller
    resource_type: str
    content: dict
    logical_id: str | None = None  # the id written to (an update, or a transaction's create)
    current: dict | None = None  # what an update replaces, None for a create or a new id
    if_match: str | None = None
    update: bool = False  # a PUT (the body then carries the id it is written to)


@dataclass(frozen=True)
class Taken:
    """A write done: the resource as stored and the HTTP status (202 when another system decides)."""

    record: Resource
    status: int


Handler = Callable[[Write], Callable[[], Taken] | None]


@cache
def _handlers(resource_type: str) -> tuple[Handler, ...]:
    return tuple(import_string(path) for path in settings.FHIR_API_TRIGGERS.get(resource_type, ()))


def create(
    *,
    node: Node,
    caller: Caller,
    resource_type: str,
    content: dict,
    if_none_exist: str | None = None,
    logical_id: str | None = None,
) -> Taken:
    """Create through the API: a trigger's service (once: a conditional create that finds its
    resource returns it), or else a plain store."""
    action = _action(Write(node, caller, resource_type, content, logical_id=logical_id))
    if action is not None:
        existing = services.conditional_match(node, resource_type, if_none_exist) if if_none_exist else None
        return Taken(existing, 200) if existing is not None else action()
    result = services.resource_create(
        node=node,
        resource_type=resource_type,
        content=content,
        if_none_exist=if_none_exist,
        logical_id=logical_id,
        owner=owners.owner_for(resource_type, caller.client),
    )
    return Taken(result.resource, 201 if result.created else 200)


def update(
    *,
    node: Node,
    caller: Caller,
    resource_type: str,
    logical_id: str,
    content: dict,
    if_match: str | None = None,
) -> Taken:
    """Update through the API: a trigger's service, or else a plain store. An owned resource
    is changed only by its owner."""
    if owners.owned(resource_type):
        owners.change_check(_current(node, resource_type, logical_id), caller.client)
    if _handlers(resource_type):
        record = Resource.objects.filter(
            node=node, resource_type=resource_type, logical_id=logical_id, deleted=False
        ).first()
        if record is not None:
            services.version_check(record, if_match)
        current = jsonio.loads(record.text) if record is not None else None
        write = Write(
            node, caller, resource_type, content, logical_id, current=current, if_match=if_match, update=True
        )
        action = _action(write)
        if action is not None:
            return action()
    result = services.resource_update(
        node=node,
        resource_type=resource_type,
        logical_id=logical_id,
        content=content,
        if_match=if_match,
        owner=owners.owner_for(resource_type, caller.client),
    )
    return Taken(result.resource, 201 if result.created else 200)


def delete(
    *, node: Node, caller: Caller, resource_type: str, logical_id: str, if_match: str | None = None
) -> Resource:
    """Delete through the API: an owned resource only by its owner."""
    if owners.owned(resource_type):
        owners.change_check(_current(node, resource_type, logical_id), caller.client)
    return services.resource_delete(
        node=node, resource_type=resource_type, logical_id=logical_id, if_match=if_match
    )


def _current(node: Node, resource_type: str, logical_id: str) -> Resource | None:
    return Resource.objects.filter(node=node, resource_type=resource_type, logical_id=logical_id).first()


def _action(write: Write) -> Callable[[], Taken] | None:
    """Return the first handler's action for a write, checked as a resource first; None for none.
    The action is the workflow's service, atomic as the service makes it (a claim in the shared
    record is made at the broker before anything is written here)."""
    for handler in _handlers(write.resource_type):
        action = handler(write)
        if action is not None:
            validate_resource(
                write.content,
                resource_type=write.resource_type,
                logical_id=write.logical_id if write.update else None,
            )
            return action
    return None
