"""Celery tasks of the webhooks app (on the `cpu` queue)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .models import DeliveryStatus


@shared_task(name="labelhub.webhooks.deliver", bind=True, acks_late=True, max_retries=None)
def webhook_deliver(self, delivery_id: int) -> str:
    """One attempt at a webhook delivery; on failure retry after LABELHUB_WEBHOOK_RETRY_SECONDS * 2**n
    until LABELHUB_WEBHOOK_MAX_ATTEMPTS attempts were made. Idempotent: a finished delivery is not resent."""
    from .services import delivery_attempt

    delivery = delivery_attempt(delivery_id=delivery_id)
    if delivery.status == DeliveryStatus.PENDING:
        delay = settings.LABELHUB_WEBHOOK_RETRY_SECONDS * 2 ** max(delivery.attempts - 1, 0)
        raise self.retry(countdown=delay)
    return delivery.status
