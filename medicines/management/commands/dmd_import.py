from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from medicines.release import ReleaseError
from medicines.services import catalogue_import


class Command(BaseCommand):
    help = "Import a dm+d release folder (NHSBSA's f_*.xml files) into the medicines catalogue."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="the folder holding f_vmp2_*.xml and the rest")

    def handle(self, *args, path: Path, **options) -> None:
        try:
            log = catalogue_import(path=path)
        except ReleaseError as error:
            raise CommandError(f"dm+d import failed, nothing changed: {error}") from None
        self.stdout.write(
            f"Imported dm+d release {log.release}: {log.vmps} VMPs, {log.amps} AMPs, {log.vmpps} VMPPs, "
            f"{log.ampps} AMPPs, {log.vtms} VTMs, {log.lookups} lookup rows."
        )
