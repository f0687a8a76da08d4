from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from fhirserver.registry import is_resource_type
from fhirserver.reindexing import reindex_run, reindex_start
from nodes.models import Node


class Command(BaseCommand):
    help = (
        "Index live resources again by the search parameters in force (after an upgrade that adds "
        "parameters, or a node's own new one): a job per node, run here, as $reindex runs it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--node", help="only this node's resources (its slug)")
        parser.add_argument("--type", dest="resource_type", help="only resources of this type")

    def handle(self, *args, node: str | None, resource_type: str | None, **options) -> None:
        nodes = Node.objects.filter(slug=node) if node else Node.objects.all()
        if node and not nodes.exists():
            raise CommandError(f"There is no node {node!r}.")
        if resource_type and not is_resource_type(resource_type):
            raise CommandError(f"{resource_type!r} is not a resource type stored here.")
        started, count = time.perf_counter(), 0
        for target in nodes:
            job = reindex_run(
                job_id=reindex_start(node=target, resource_type=resource_type or "", queue=False).pk
            )
            count += job.processed
            if job.error:
                self.stderr.write(f"{target.slug}: {job.status}: {job.error.strip()}")
        seconds = time.perf_counter() - started
        self.stdout.write(f"{count} resources indexed again in {seconds:.1f} s.")
