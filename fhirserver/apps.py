from __future__ import annotations

from django.apps import AppConfig


class FhirServerConfig(AppConfig):
    name = "fhirserver"
    verbose_name = "FHIR server"
