from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from fhirserver.indexing import reindex
from fhirserver.registry import is_resource_type
from nodes.models import Node


class Command(BaseCommand):
    help = (
        "Index every live resource again by the search parameters of this version of dmed "
        "(after an upgrade that adds parameters); a resource at a time, each in its own transaction."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--node", help="only this node's resources (its slug)")
        parser.add_argument("--type", dest="resource_type", help="only resources of this type")

    def handle(self, *args, node: str | None, resource_type: str | None, **options) -> None:
        target = Node.objects.filter(slug=node).first() if node else None
        if node and target is None:
            raise CommandError(f"There is no node {node!r}.")
        if resource_type and not is_resource_type(resource_type):
            raise CommandError(f"{resource_type!r} is not a resource type stored here.")
        started = time.perf_counter()
        count = reindex(node=target, resource_type=resource_type)
        seconds = time.perf_counter() - started
        self.stdout.write(f"{count} resources indexed again in {seconds:.1f} s.")
