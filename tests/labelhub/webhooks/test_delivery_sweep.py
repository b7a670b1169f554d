"""Deliveries whose message was lost (a broker restart, a killed worker) are found and sent by the
periodic sweep, exactly once; two attempts at one delivery at the same time make one HTTP request."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from labelhub.webhooks.models import Webhook, WebhookDelivery
from labelhub.webhooks.services import deliveries_sweep, delivery_attempt, webhook_emit
from labelhub.webhooks.tasks import webhook_deliver
from tests.labelhub.webhooks.test_webhooks import Receiver, verify


def lost_delivery(org, url: str, django_capture_on_commit_callbacks=None) -> WebhookDelivery:
    """A delivery made as every event makes it, whose queued message never reached a worker: the send
    after commit is captured and dropped. (In a test without a wrapping transaction, where the send would
    run at once, the row is written as webhook_emit writes it, without the send.)"""
    hook = Webhook.objects.create(organization=org.organization, url=url, secret="s3cret")
    if django_capture_on_commit_callbacks is None:
        return WebhookDelivery.objects.create(
            webhook=hook, event="export.finished", payload={"event": "export.finished", "data": {}}
        )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (delivery,) = webhook_emit(
            organization=org.organization, event="export.finished", payload={"export": 1}
        )
    assert len(callbacks) == 1  # the send that was lost
    assert hook.deliveries.get().status == "pending"
    return delivery


def backdate(delivery, seconds: float, **fields) -> None:
    """Move the delivery's due time `seconds` into the past (as if that long had passed), and set `fields`
    to that many seconds ago."""
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=now - timedelta(seconds=seconds),
        **{name: now - timedelta(seconds=ago) for name, ago in fields.items()},
    )


@pytest.mark.django_db
def test_sweep_delivers_a_lost_delivery_exactly_once(org_a, settings, django_capture_on_commit_callbacks):
    settings.LABELHUB_WEBHOOK_SWEEP_SECONDS = 60
    with Receiver([200]) as receiver:
        delivery = lost_delivery(org_a, receiver.url, django_capture_on_commit_callbacks)
        # Not overdue yet: its message may still be on its way.
        assert deliveries_sweep() == 0 and receiver.requests == []
        backdate(delivery, 61)
        assert deliveries_sweep() == 1  # queued, and run in-process (eager tasks)
        assert len(receiver.requests) == 1
        assert verify("s3cret", receiver.requests[0])
        delivery.refresh_from_db()
        assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.claimed_at is None
        # Sweeping again, or the lost message arriving after all, sends nothing more.
        assert deliveries_sweep(now=timezone.now() + timedelta(days=1)) == 0
        assert webhook_deliver.apply(args=[delivery.pk]).get() == "delivered"
        assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_sweep_leaves_held_and_not_yet_due_deliveries(org_a, settings, django_capture_on_commit_callbacks):
    settings.LABELHUB_WEBHOOK_SWEEP_SECONDS = 60
    settings.LABELHUB_WEBHOOK_CLAIM_SECONDS = 90
    settings.LABELHUB_WEBHOOK_RETRY_SECONDS = 600
    with Receiver([500, 200]) as receiver:
        delivery = lost_delivery(org_a, receiver.url, django_capture_on_commit_callbacks)
        # An attempt holds it (claimed 30 s ago): the sweep leaves it to that attempt.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status="sending", attempts=1)
        backdate(delivery, 61, claimed_at=30)
        assert deliveries_sweep() == 0
        assert delivery_attempt(delivery_id=delivery.pk)[1] is False  # nor does a duplicate message
        # That attempt's worker died: once the claim is stale, the sweep takes the delivery up again.
        backdate(delivery, 61, claimed_at=91)
        assert deliveries_sweep() == 1
        assert len(receiver.requests) == 1  # answered 500: a retry is due in 600 s
        delivery.refresh_from_db()
        # The dead attempt counted as one (at least once): this one is the second.
        assert delivery.status == "pending" and delivery.attempts == 2 and delivery.claimed_at is None
        assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=590)
        # Not due: neither the sweep nor a duplicate message sends it before its retry time.
        assert deliveries_sweep(now=timezone.now() + timedelta(seconds=120)) == 0
        assert delivery_attempt(delivery_id=delivery.pk)[1] is False
        assert len(receiver.requests) == 1
        # Its retry message was lost too: the sweep sends it once it is overdue.
        backdate(delivery, 61)
        assert deliveries_sweep() == 1
        assert len(receiver.requests) == 2
        delivery.refresh_from_db()
        assert delivery.status == "delivered" and delivery.attempts == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_attempts_make_one_request(org_a):
    gate = threading.Event()
    with Receiver([200], gate=gate) as receiver:
        delivery = lost_delivery(org_a, receiver.url)
        results: dict[str, object] = {}

        def attempt(name: str) -> None:
            try:
                results[name] = delivery_attempt(delivery_id=delivery.pk)[1]
            except Exception as exc:  # noqa: BLE001 - reported by the assertions below
                results[name] = exc
            finally:
                connections.close_all()

        first = threading.Thread(target=attempt, args=("first",))
        first.start()
        assert receiver.arrived.wait(30)  # the first attempt's request is at the receiver, unanswered
        second = threading.Thread(target=attempt, args=("second",))
        second.start()
        second.join(30)
        assert results["second"] is False  # the delivery was held: nothing sent
        gate.set()
        first.join(30)
        assert results["first"] is True
        assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1 and len(delivery.log) == 1


@pytest.mark.django_db(transaction=True)
def test_racing_messages_for_one_delivery_make_one_request(org_a):
    """Four workers handed the same delivery at the same instant (a redelivered message and sweeps)."""
    with Receiver([200]) as receiver:
        delivery = lost_delivery(org_a, receiver.url)
        barrier = threading.Barrier(4)
        outcomes = []

        def run() -> None:
            try:
                barrier.wait(10)
                outcomes.append(webhook_deliver.apply(args=[delivery.pk]).get())
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(receiver.requests) == 1
    assert outcomes.count("delivered") >= 1 and len(outcomes) == 4
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1
