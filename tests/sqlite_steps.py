"""What the cost tests measure a query by: the SQLite virtual machine's instructions, free of the
machine's speed and load, over a store filled fast with bare rows."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

from fhirserver.models import Resource


@contextmanager
def counting_sqlite_steps():
    """Count the instructions (in hundreds) SQLite runs meanwhile."""
    connection.ensure_connection()
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0  # go on

    connection.connection.set_progress_handler(tick, 100)
    try:
        yield steps
    finally:
        connection.connection.set_progress_handler(None, 0)


def bare_requests(node, count: int) -> list[Resource]:
    """Store `count` MedicationRequests with no content and no index rows: the caller adds the
    index rows its query reads."""
    now = timezone.now()
    return Resource.objects.bulk_create(
        Resource(
            node=node,
            resource_type="MedicationRequest",
            logical_id=str(uuid.uuid4()),
            version_id=1,
            last_updated=now,
            text="{}",
        )
        for _ in range(count)
    )
