from __future__ import annotations

from django.core.management.base import BaseCommand

from medicines.services import catalogue_demo_seed
from nodes.demo import NODES, demo_seed


class Command(BaseCommand):
    help = "Create or refresh the demo nodes and users (idempotent)."

    def handle(self, *args, **options) -> None:
        demo_seed()
        self.stdout.write(f"Seeded {len(NODES)} demo nodes and their users.")
        catalogue_demo_seed()
