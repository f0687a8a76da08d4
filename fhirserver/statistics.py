"""The query planner's statistics, kept fresh by dmed itself.

A search joins the index tables to the resources, and PostgreSQL chooses how from its statistics.
Without them (a new database before its first ANALYZE, or a server whose autovacuum is off, as it
is on this project's own machines) it takes every table for nearly empty and walks every stored
resource of the type for a search by identifier: 296 ms with 1,200 stored instead of under one,
and a scenario of 1,000 prescriptions all but stopped. autovacuum analyses a table once 50 rows and
10% of it have changed since it last did; beat's `statistics-refresh` (STATISTICS_REFRESH_SECONDS)
does the same for the tables searches read, whatever autovacuum does. SQLite's planner needs less:
there it runs `PRAGMA optimize`, which analyses what would gain from it.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

from fhirserver.indexing import TABLES as INDEX_TABLES
from fhirserver.models import Resource, ResourceVersion

SEARCHED = (Resource, ResourceVersion, *INDEX_TABLES)
# autovacuum's own defaults: analyze_threshold + analyze_scale_factor x live rows.
THRESHOLD, SCALE = 50, 0.1


def statistics_refresh() -> list[str]:
    """ANALYZE each searched table that changed enough since it last was; return their names."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA optimize=0x10002")  # every table, not only this connection's
            return []
        if connection.vendor != "postgresql":
            return []
        cursor.execute(
            "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [[model._meta.db_table for model in SEARCHED]],
        )
        stale = sorted(
            name for name, live, changed in cursor.fetchall() if changed > THRESHOLD + SCALE * live
        )
        for name in stale:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(name)}")
    return stale
