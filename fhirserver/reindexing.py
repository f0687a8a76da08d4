"""Indexing a node's stored resources again, in the background: `$reindex` (and `manage.py
reindex`) start a job that a Celery task works through a chunk at a time, keeping its
progress, so a worker that dies leaves a job the beat sweep hands to another, which goes on
from the last chunk done."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from fhirserver import jsonio
from fhirserver.custom_params import revise
from fhirserver.errors import FHIRError
from fhirserver.indexing import TABLES, index_rows, save_index_rows
from fhirserver.models import CustomSearchParameter, ReindexJob, Resource
from nodes.models import Node

logger = logging.getLogger(__name__)
CHUNK = 200
# Errors kept on a job: the first resources that could not be indexed, with why.
MAX_ERRORS = 20


def reindex_start(*, node: Node, resource_type: str = "", queue: bool = True) -> ReindexJob:
    """Start indexing the node's live resources (of one type, or all) again; the task is
    queued once the job is stored (`queue=False`: the caller runs it)."""
    with transaction.atomic():
        covered = _live(node, resource_type).aggregate(upto=Max("pk"), total=Count("pk"))
        job = ReindexJob.objects.create(
            node=node, resource_type=resource_type, total=covered["total"], upto_pk=covered["upto"] or 0
        )
        if queue:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from fhirserver.tasks import reindex

    reindex.delay(job_id)


def _live(node: Node, resource_type: str):
    records = Resource.objects.filter(node=node, deleted=False)
    return records.filter(resource_type=resource_type) if resource_type else records


def reindex_run(*, job_id: int) -> ReindexJob | None:
    """Work through a job, a chunk at a time; None when another process has it or it is done."""
    now = timezone.now()
    claimed = (
        ReindexJob.objects.filter(pk=job_id)
        .filter(
            Q(status=ReindexJob.Status.QUEUED)
            | Q(status=ReindexJob.Status.RUNNING, heartbeat__lt=_stale(now))
        )
        .update(status=ReindexJob.Status.RUNNING, heartbeat=now, started=Coalesce("started", now))
    )
    if not claimed:
        return None
    job = ReindexJob.objects.select_related("node").get(pk=job_id)
    try:
        while _chunk(job):
            pass
    except Exception as exc:  # the job says what stopped it; the resources done stay done
        logger.exception("reindex job %s failed", job.pk)
        ReindexJob.objects.filter(pk=job.pk).update(
            status=ReindexJob.Status.FAILED, finished=timezone.now(), error=f"{job.error}{exc}"[:2000]
        )
        job.refresh_from_db()
        return job
    with transaction.atomic():
        ReindexJob.objects.filter(pk=job.pk).update(status=ReindexJob.Status.DONE, finished=timezone.now())
        _complete(job)
    job.refresh_from_db()
    return job


def _chunk(job: ReindexJob) -> bool:
    """Index the next chunk of the job's resources again; False when none are left."""
    with transaction.atomic():
        records = list(
            _live(job.node, job.resource_type)
            .filter(pk__gt=job.last_pk, pk__lte=job.upto_pk)
            .select_for_update()
            .order_by("pk")[:CHUNK]
        )
        if not records:
            return False
        rows, done, errors = [], [], []
        for record in records:
            try:
                rows += index_rows(record, jsonio.loads(record.text), job.node)
                done.append(record.pk)
            except FHIRError as exc:  # kept as it was indexed before, and named on the job
                errors.append(f"{record.resource_type}/{record.logical_id}: {exc}")
        for model in TABLES:
            model.objects.filter(resource_id__in=done).delete()
        save_index_rows(rows)
        job.last_pk = records[-1].pk
        job.processed += len(records)
        job.heartbeat = timezone.now()
        if errors and job.error.count("\n") < MAX_ERRORS:
            job.error += "".join(f"{line}\n" for line in errors)
        job.save(update_fields=["last_pk", "processed", "heartbeat", "error"])
    return True


def _complete(job: ReindexJob) -> None:
    """The node's own parameters defined before the job started now find every resource it covered."""
    covered = [
        row
        for row in CustomSearchParameter.objects.filter(
            node=job.node, complete=False, changed__lte=job.started
        )
        if not job.resource_type or set(row.base) <= {job.resource_type}
    ]
    if covered:
        CustomSearchParameter.objects.filter(pk__in=[row.pk for row in covered]).update(complete=True)
        revise(job.node)


def _stale(now):
    return now - timedelta(seconds=settings.REINDEX_LEASE_SECONDS)


def reindex_sweep() -> int:
    """Queue again the jobs no worker has (a lost task, a worker that died); return how many."""
    now = timezone.now()
    lost = ReindexJob.objects.filter(
        Q(status=ReindexJob.Status.QUEUED, created__lt=_stale(now))
        | Q(status=ReindexJob.Status.RUNNING, heartbeat__lt=_stale(now))
    ).values_list("pk", flat=True)
    for job_id in lost:
        _enqueue(job_id)
    return len(lost)


def job_parameters(job: ReindexJob) -> dict:
    """A job's state as a FHIR Parameters resource."""
    parameter = [
        {"name": "job", "valueString": str(job.pk)},
        {"name": "status", "valueCode": job.status},
        {"name": "total", "valueInteger": job.total},
        {"name": "processed", "valueInteger": job.processed},
    ]
    if job.resource_type:
        parameter.insert(1, {"name": "type", "valueCode": job.resource_type})
    for name in ("started", "finished"):
        when = getattr(job, name)
        if when is not None:
            parameter.append({"name": name, "valueInstant": when.isoformat(timespec="milliseconds")})
    if job.error:
        parameter.append({"name": "error", "valueString": job.error.strip()})
    return {"resourceType": "Parameters", "parameter": parameter}
