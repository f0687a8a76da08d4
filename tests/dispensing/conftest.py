from __future__ import annotations

import pytest

from tests.processes import Worker


@pytest.fixture
def worker(live_server, tmp_path):
    """A real Celery worker (with beat) delivering the outbox, on the test database."""
    from dmed.celery import app

    app.control.purge()
    running = Worker(tmp_path).start()
    yield running
    running.stop()
