"""Celery tasks: thin, each takes an id or nothing and calls a service."""

from __future__ import annotations

from celery import shared_task

from fhirserver import reindexing, statistics


@shared_task(ignore_result=True)
def reindex(job_id: int) -> None:
    reindexing.reindex_run(job_id=job_id)


@shared_task(ignore_result=True)
def reindex_sweep() -> int:
    """Queue again the reindex jobs no worker has."""
    return reindexing.reindex_sweep()


@shared_task(ignore_result=True)
def statistics_refresh() -> list[str]:
    """ANALYZE the searched tables that changed enough (fhirserver/statistics.py)."""
    return statistics.statistics_refresh()
