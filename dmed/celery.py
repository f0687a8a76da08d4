"""The Celery app: one for every node of this deployment."""

from __future__ import annotations

import os
import sys

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# The embedded default's filesystem broker, without kombu's write/read race.
TRANSPORT_ALIASES["filesystem"] = "dmed.kombu_filesystem:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmed.settings")

app = Celery("dmed")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The worker's processes, as `make demo` runs it. A delivery mostly waits on the partner's HTTP
# answer, so more processes than cores keep deliveries of different prescriptions going side by
# side (measured: `manage.py scenario`).
WORKER_PROCESSES = 4


def worker_command() -> list[str]:
    """The Celery worker as `make demo` runs it (and the soak benchmark)."""
    celery = [sys.executable, "-m", "celery", "-A", "dmed"]
    return [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(WORKER_PROCESSES)]


def beat_command() -> list[str]:
    """Celery beat as `make demo` runs it (its schedule file under DMED_VAR_DIR)."""
    return [sys.executable, "-m", "celery", "-A", "dmed", "beat", "--loglevel", "INFO"]
