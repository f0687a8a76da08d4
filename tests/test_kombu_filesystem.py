"""The embedded broker (dmed/kombu_filesystem.py): a worker behind its publishers takes each waiting
message without listing the whole folder again, every message once, and another queue of the
folder (the worker's pidbox) is still heard meanwhile."""

from __future__ import annotations

import os
import uuid

import pytest
from kombu import Connection

from dmed import kombu_filesystem

WAITING = 500


@pytest.fixture
def connection(tmp_path):
    folder, control = tmp_path / "queue", tmp_path / "control"
    folder.mkdir()
    control.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(control),
        "store_processed": False,
        "polling_interval": 0.01,
    }
    with Connection(transport=kombu_filesystem.Transport, transport_options=options) as conn:
        conn.folder = folder
        yield conn


def named(name: str) -> str:
    """A queue name of this test's own: kombu keeps a transport's bindings for the process."""
    return f"{name}-{uuid.uuid4().hex}"


@pytest.fixture
def listings(connection, monkeypatch) -> list[str]:
    """The listings of the broker's folder made from now on."""
    made: list[str] = []
    real = os.listdir

    def listdir(path="."):
        if os.fspath(path) == str(connection.folder):
            made.append(path)
        return real(path)

    monkeypatch.setattr(kombu_filesystem.os, "listdir", listdir)
    return made


def test_a_backlog_is_taken_message_by_message_without_listing_it_each_time(connection, listings):
    tasks = connection.SimpleQueue(named("tasks"))
    for number in range(WAITING):
        tasks.put({"n": number})
    listings.clear()

    taken = []
    for _ in range(WAITING):
        message = tasks.get(timeout=5)
        taken.append(message.payload["n"])
        message.ack()

    assert sorted(taken) == list(range(WAITING))  # each once
    assert len(listings) < 10, f"{len(listings)} listings of the folder for {WAITING} messages"
    assert not [name for name in os.listdir(connection.folder) if not name.startswith("_")]
    with pytest.raises(tasks.Empty):
        tasks.get(timeout=0.2)
    tasks.close()


def test_another_queue_is_heard_while_a_backlog_drains(connection):
    tasks, control = connection.SimpleQueue(named("tasks")), connection.SimpleQueue(named("control"))
    for number in range(WAITING):
        tasks.put({"n": number})
    tasks.get(timeout=5).ack()  # the backlog is listed, and being taken
    control.put({"ping": True})

    message = control.get(timeout=kombu_filesystem.RELIST_SECONDS + 5)
    assert message.payload == {"ping": True}
    message.ack()
    tasks.close()
    control.close()
