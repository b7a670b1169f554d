"""Celery tasks. Names with `.train.` go to the `train` queue (GPU machines when present, else CPU;
see labelhub/celery.py); the sweep runs on `cpu`."""

from __future__ import annotations

from celery import shared_task

from . import evaluations, prelabels, training


@shared_task(name="labelhub.learning.train.train_version", acks_late=True)
def train_version(version_id: int) -> dict | None:
    """Train one queued model version and apply the promotion rule. A version already finished is
    skipped, so a redelivered message (acks_late) costs nothing."""
    version = training.version_train(version_id=version_id)
    if version is None:
        return None
    return {
        "version": version.id,
        "status": version.status,
        "promoted": bool(version.promotion.get("promoted")),
    }


@shared_task(name="labelhub.learning.train.prelabel_images", acks_late=True)
def prelabel_images(image_ids: list[int]) -> list[int]:
    """Pre-label images with their project's promoted model version."""
    return prelabels.images_prelabel(image_ids=image_ids)


@shared_task(name="labelhub.learning.retrain_sweep")
def retrain_sweep() -> list[int]:
    """Periodic: queue a new version for projects past their retraining threshold."""
    return training.retrain_sweep()


@shared_task(name="labelhub.learning.gpu.run_evaluation", acks_late=True)
def run_evaluation(evaluation_id: int) -> dict | None:
    """NoC@85/90 of the configured interactive backend (the `gpu` queue, where SAM is loaded)."""
    evaluation = evaluations.evaluation_run(evaluation_id=evaluation_id)
    if evaluation is None:
        return None
    return {"evaluation": evaluation.id, "status": evaluation.status, "noc85": evaluation.noc85}


@shared_task(
    name="labelhub.learning.service_webhook",
    bind=True,
    acks_late=True,
    max_retries=4,
)
def service_webhook(self, service_id: int, action: str, task_id: int | None) -> dict | None:
    """Send a training event (ANNOTATION_CREATED, START_TRAINING) to a model service (`cpu` queue),
    retried with a doubling delay when the call fails."""
    from .service_training import ServiceError, retry_countdown, webhook_send

    try:
        return webhook_send(service_id=service_id, action=action, task_id=task_id)
    except ServiceError as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            return {"error": exc.reason}
        raise self.retry(countdown=retry_countdown(self.request.retries)) from exc
