"""The Celery app: one for every node of this deployment."""

from __future__ import annotations

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# The embedded default's filesystem broker, without kombu's write/read race.
TRANSPORT_ALIASES["filesystem"] = "dmed.kombu_filesystem:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")

app = Celery("dmed")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
