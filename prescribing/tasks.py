from __future__ import annotations

from celery import shared_task

from prescribing import services


@shared_task(ignore_result=True)
def poll_dispensers() -> int:
    return services.dispensers_poll()
