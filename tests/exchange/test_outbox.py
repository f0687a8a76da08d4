"""Nothing lost, nothing doubled: the outbox with a real Celery worker against a live partner."""

from __future__ import annotations

import json

from django.db import transaction

from exchange.models import Message
from exchange.services import message_enqueue, message_requeue
from fhirserver.models import Resource
from tests.processes import Worker, wait_for


def send_patient(gp, entry, value: str = "p-1", key: str = "k-1") -> Message:
    """Enqueue a conditional create of a Patient at the pharmacy, as a workflow would."""
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": value}]}
    with transaction.atomic():
        return message_enqueue(
            node=gp,
            partner=entry,
            key=key,
            kind="test.create",
            method="POST",
            url=f"{entry.fhir_base}/Patient",
            body=json.dumps(body),
            headers={"If-None-Exist": f"identifier=urn:test|{value}"},
        )


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def delivered(message: Message) -> bool:
    return refreshed(message).status == Message.Status.DELIVERED


def patients_at(pharmacy) -> int:
    return Resource.objects.filter(node=pharmacy, resource_type="Patient", deleted=False).count()


def test_a_message_is_delivered_after_commit_and_logged(gp, pharmacy, pharmacy_entry, worker):
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: delivered(message), message="delivery")
    assert patients_at(pharmacy) == 1
    attempt = message.attempt_log.get()
    assert (attempt.method, attempt.status_code) == ("POST", 201)
    assert attempt.url.endswith("/pharmacy/fhir/Patient")


def test_a_message_rolled_back_with_its_change_is_never_sent(gp, pharmacy, pharmacy_entry, worker, flaky):
    try:
        with transaction.atomic():
            send_patient(gp, pharmacy_entry)
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    later = send_patient(gp, pharmacy_entry, value="p-2", key="k-2")
    wait_for(lambda: delivered(later), message="the later message")
    assert Message.objects.count() == 1
    assert flaky.seen == [("POST", "/pharmacy/fhir/Patient")]


def test_partner_down_for_a_while_then_back_gets_it_once(gp, pharmacy, pharmacy_entry, worker, flaky):
    flaky.stop()
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: refreshed(message).attempts >= 3, message="retries")
    assert message.status == Message.Status.PENDING
    assert "ConnectionError" in message.last_error
    flaky.start()
    wait_for(lambda: delivered(message), message="delivery once the partner is back")
    assert patients_at(pharmacy) == 1


def test_partner_answering_500_then_201_stores_one_resource(gp, pharmacy, pharmacy_entry, worker, flaky):
    flaky.fail_next = 2
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: delivered(message), message="delivery")
    assert [a.status_code for a in message.attempt_log.order_by("number")] == [500, 500, 201]
    assert patients_at(pharmacy) == 1


def test_the_same_message_delivered_twice_makes_one_resource(gp, pharmacy, pharmacy_entry, worker):
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: delivered(message), message="first delivery")
    # The acknowledgement is lost: the message goes out again.
    Message.objects.filter(pk=message.pk).update(status=Message.Status.PENDING)
    wait_for(lambda: delivered(message) and message.attempts == 2, message="second delivery")
    assert message.response_status == 200
    assert patients_at(pharmacy) == 1


def test_worker_killed_mid_delivery_delivers_after_restart(
    gp, pharmacy, pharmacy_entry, worker, flaky, tmp_path
):
    flaky.stall_seconds = 30
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: flaky.seen, message="the request reaching the partner")
    wait_for(lambda: patients_at(pharmacy) == 1, message="the partner storing it")
    worker.kill()
    assert refreshed(message).status == Message.Status.PENDING
    flaky.stall_seconds = 0
    restarted = Worker(tmp_path / "again")
    (tmp_path / "again").mkdir()
    restarted.start()
    try:
        wait_for(lambda: delivered(message), timeout=45, message="delivery after the restart")
    finally:
        restarted.stop()
    assert patients_at(pharmacy) == 1
    assert message.response_status == 200  # the retry found what the first try had stored


def test_a_4xx_answer_is_final_and_the_message_dead(gp, pharmacy, pharmacy_entry, worker):
    pharmacy_entry.token = "wrong"
    pharmacy_entry.save()
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: refreshed(message).status == Message.Status.DEAD, message="the message dying")
    assert message.attempts == 1
    assert "401" in message.last_error


def test_retries_stop_at_the_age_limit_then_a_requeue_delivers(
    gp, pharmacy, pharmacy_entry, worker, flaky, settings
):
    settings.EXCHANGE_MAX_AGE_SECONDS = 2
    flaky.stop()
    message = send_patient(gp, pharmacy_entry)
    wait_for(lambda: refreshed(message).status == Message.Status.DEAD, message="the message dying")
    assert "ConnectionError" in message.last_error
    flaky.start()
    settings.EXCHANGE_MAX_AGE_SECONDS = 3600
    message_requeue(message=message)
    wait_for(lambda: delivered(message), message="delivery after the requeue")
    assert patients_at(pharmacy) == 1


def test_messages_about_one_prescription_arrive_in_order(gp, pharmacy, pharmacy_entry, worker, flaky):
    flaky.fail_next = 1  # the first message fails once; the later ones must wait for it
    with transaction.atomic():
        for version in range(1, 6):
            body = {"resourceType": "Patient", "id": "p-ordered", "name": [{"family": f"v{version}"}]}
            message_enqueue(
                node=gp,
                partner=pharmacy_entry,
                key="rx-1",
                kind="test.update",
                method="PUT",
                url=f"{pharmacy_entry.fhir_base}/Patient/p-ordered",
                body=json.dumps(body),
            )
    wait_for(
        lambda: not Message.objects.filter(status=Message.Status.PENDING).exists(), message="all deliveries"
    )
    stored = Resource.objects.get(node=pharmacy, logical_id="p-ordered")
    assert stored.version_id == 5
    assert json.loads(stored.text)["name"][0]["family"] == "v5"
    assert [m.response_status for m in Message.objects.order_by("pk")] == [201, 200, 200, 200, 200]


def test_the_sweep_queues_a_message_again_only_when_no_task_will_send_it(gp, pharmacy_entry, monkeypatch):
    """While the worker is behind, each due message's task waits in Celery's queue: the sweep must
    not add another at every pass (1,000 prescriptions at once made 15,000 tasks wait). It queues a
    retry come due, a message whose worker's lease ran out and one whose task was lost long ago."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from exchange import tasks
    from exchange.services import messages_sweep

    queued: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", queued.append)  # what is handed to Celery
    waiting, retry, lease, lost = (
        send_patient(gp, pharmacy_entry, value=f"p-{n}", key=f"k-{n}") for n in range(4)
    )
    assert queued == [waiting.pk, retry.pk, lease.pk, lost.pk]  # each once, as its write commits
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.EXCHANGE_REQUEUE_SECONDS + 1)
    second = timedelta(seconds=1)
    Message.objects.filter(pk=retry.pk).update(queued_at=now - 5 * second, next_attempt_at=now - second)
    Message.objects.filter(pk=lease.pk).update(leased_until=now - second)
    Message.objects.filter(pk=lost.pk).update(queued_at=long_ago, next_attempt_at=long_ago)
    queued.clear()
    assert messages_sweep() == 3
    assert sorted(queued) == [retry.pk, lease.pk, lost.pk]  # not `waiting`: due, first, but queued
    assert refreshed(lease).leased_until is None
    queued.clear()
    assert messages_sweep() == 0  # each has its task now
    assert queued == []
