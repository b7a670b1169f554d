"""Celery tasks of the webhooks app (on the `cpu` queue)."""

from __future__ import annotations

from celery import shared_task

from .models import DeliveryStatus


@shared_task(name="labelhub.webhooks.deliver", bind=True, acks_late=True, max_retries=None)
def webhook_deliver(self, delivery_id: int) -> str:
    """One attempt at a webhook delivery; on failure retry after LABELHUB_WEBHOOK_RETRY_SECONDS * 2**n
    until LABELHUB_WEBHOOK_MAX_ATTEMPTS attempts were made. Idempotent: a finished delivery is not resent."""
    from .services import delivery_attempt, retry_delay

    delivery, attempted = delivery_attempt(delivery_id=delivery_id)
    # Only the call that made the attempt schedules the next one: a duplicate message (redelivered,
    # or queued by the sweep) that found the delivery held or not due sends nothing and retries nothing.
    if attempted and delivery.status == DeliveryStatus.PENDING:
        raise self.retry(countdown=retry_delay(delivery.attempts))
    return delivery.status


@shared_task(name="labelhub.webhooks.deliveries_sweep")
def deliveries_sweep() -> int:
    """Periodic (celery beat, every LABELHUB_WEBHOOK_SWEEP_SECONDS): queue again the due deliveries whose
    message was lost."""
    from .services import deliveries_sweep as sweep

    return sweep()
