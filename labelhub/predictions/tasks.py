"""Celery tasks of the `gpu` queue (routed by their `*.gpu.*` names)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(
    name="labelhub.predictions.gpu.presegment_images",
    bind=True,
    acks_late=True,
    max_retries=3,
    default_retry_delay=10,
)
def presegment_images(self, image_ids: list[int]) -> dict:
    """Pre-segment images; each is idempotent, a failure is recorded on its Prediction and retried."""
    failed = []
    for image_id in image_ids:
        try:
            services.image_presegment(image_id=image_id)
        except Exception:  # recorded on the Prediction by the service
            failed.append(image_id)
    if failed and not self.request.is_eager:
        raise self.retry(args=[failed])
    return {"done": len(image_ids) - len(failed), "failed": failed}
