from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from fhirserver.scopes import problems
from nodes.models import Node
from nodes.services import api_client_issue


class Command(BaseCommand):
    help = "Issue (or re-issue) a bearer token for a node's FHIR API and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("node", help="the node's slug")
        parser.add_argument("name", help="who holds the token, e.g. a partner's ODS code")
        parser.add_argument(
            "--scopes",
            help="SMART scopes, e.g. 'system/MedicationRequest.rs system/Subscription.cruds' "
            "(a new client without them can do nothing; an existing one keeps its own)",
        )

    def handle(self, *args, node: str, name: str, scopes: str | None, **options) -> None:
        target = Node.objects.filter(slug=node).first()
        if target is None:
            raise CommandError(f"There is no node {node!r}.")
        if scopes is not None and (wrong := problems(scopes)):
            raise CommandError(f"These scopes grant nothing: {', '.join(wrong)}.")
        _, token = api_client_issue(node=target, name=name, scopes=scopes)
        self.stdout.write(token)
