"""On SQLite, a transaction holds the writers' turn (dmed/sqlite/base.py) from BEGIN to COMMIT or
ROLLBACK, and gives it back however it ends."""

from __future__ import annotations

import fcntl
import os

import pytest
from django.db import IntegrityError, connection, transaction

from nodes.models import Node

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's writers take turns")


def turn_is_free() -> bool:
    """True when another open file can take the writers' turn at once."""
    fd = os.open(f"{connection.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_transaction_holds_the_turn_until_it_commits_or_rolls_back():
    assert turn_is_free()
    with transaction.atomic():
        Node.objects.create(slug="first", kind="broker", ods_code="X1", name="First")
        assert not turn_is_free()
    assert turn_is_free()
    held = []

    def refused_write() -> None:
        with transaction.atomic():
            Node.objects.create(slug="second", kind="broker", ods_code="X2", name="Second")
            held.append(not turn_is_free())
            Node.objects.create(slug="first", kind="broker", ods_code="X3", name="Again")

    with pytest.raises(IntegrityError):
        refused_write()
    assert held == [True]
    assert turn_is_free()
    assert list(Node.objects.filter(slug__in=["first", "second"]).values_list("slug", flat=True)) == ["first"]
