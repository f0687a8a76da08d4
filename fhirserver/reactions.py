"""Workflow reactions to stored resources. The handlers are named in settings
(FHIR_WRITE_HANDLERS), so this app depends on no workflow app."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from fhirserver.models import Resource


@cache
def _handlers(resource_type: str) -> tuple[Callable, ...]:
    """The handlers for a type, then those for every type ("*")."""
    paths = [*settings.FHIR_WRITE_HANDLERS.get(resource_type, ()), *settings.FHIR_WRITE_HANDLERS.get("*", ())]
    return tuple(import_string(path) for path in paths)


def react(record: Resource, content: dict) -> None:
    """Run every handler for a resource just written, inside its transaction.

    A handler may refuse the write by raising FHIRError; the whole write is then undone.
    """
    for handler in _handlers(record.resource_type):
        handler(node=record.node, record=record, content=content)


def react_delete(record: Resource) -> None:
    """Run the handlers for a resource just deleted (FHIR_DELETE_HANDLERS), inside its transaction."""
    for path in settings.FHIR_DELETE_HANDLERS.get(record.resource_type, ()):
        import_string(path)(node=record.node, record=record)
