"""The planner's statistics are kept by dmed itself: on PostgreSQL, without autovacuum (off on this
project's machines), a search by identifier on a table never analysed walks every resource."""

from __future__ import annotations

import pytest
from django.db import connection

from fhirserver.services import resource_create
from fhirserver.statistics import statistics_refresh
from tests.factories import make_medication_request, make_node
from tests.processes import wait_for


@pytest.mark.django_db(transaction=True)
def test_the_searched_tables_are_analysed_once_enough_of_them_changed():
    node = make_node("stats", "broker", "ST4TS", "Statistics")
    for _ in range(120):
        resource_create(node=node, resource_type="MedicationRequest", content=make_medication_request())
    if connection.vendor != "postgresql":
        statistics_refresh()  # SQLite: PRAGMA optimize analyses what gains from it
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'fhirserver_tokenindex'")
            assert cursor.fetchone()[0] > 0
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, to the views

    def analysed() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
        return statistics_refresh()

    refreshed: list[str] = []
    wait_for(lambda: refreshed.extend(analysed()) or "fhirserver_tokenindex" in refreshed, message="ANALYZE")
    assert "fhirserver_resource" in refreshed
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'fhirserver_tokenindex'")
        assert cursor.fetchone()[0] is not None
    assert "fhirserver_tokenindex" not in analysed()  # analysed now: not again until it changes
