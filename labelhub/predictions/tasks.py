"""Celery tasks. Names with `.gpu.` go to the `gpu` queue, `.interactive.` to the `interactive` queue
(see labelhub/celery.py)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings

from labelhub.core.queue import send_or_log

from . import backends, services
from .models import PRESEGMENT_MAX_ATTEMPTS as MAX_ATTEMPTS

log = logging.getLogger(__name__)


def _warm_up_backend() -> None:
    """Load the model, compile the encoder (padded fixed batch) and load the ONNX decoder before the
    first task, so no click or batch pays for it. Only in workers of the `gpu` or `interactive`
    queue (a worker started without -Q consumes every queue)."""
    from celery import current_app

    consumed = set(current_app.amqp.queues.consume_from or ())
    if consumed and not consumed & {"gpu", "interactive"}:
        return
    try:
        backend = backends.segmentation_backend()
    except backends.ModelUnavailable as exc:
        log.warning("segmentation model not warmed up: %s", exc.message)
        return
    warm_up = getattr(backend, "warm_up", None)
    if warm_up is not None:
        warm_up()
        log.info("segmentation backend %s warmed up", backend.model_name)


@worker_process_init.connect
def _warm_up_pool_process(**_kwargs) -> None:  # prefork: each child runs tasks
    _warm_up_backend()


@worker_ready.connect
def _warm_up_in_process_pool(sender=None, **_kwargs) -> None:  # solo/threads: the worker runs tasks
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if pool is not None and getattr(pool, "__module__", "").endswith(("solo", "thread")):
        _warm_up_backend()


@shared_task(
    name="labelhub.predictions.gpu.presegment_images",
    bind=True,
    acks_late=True,
    max_retries=MAX_ATTEMPTS - 1,
    default_retry_delay=10,
)
def presegment_images(self, image_ids: list[int]) -> dict:
    """Pre-segment a batch of images (the encoder runs batched). Images already done are skipped, so a
    message delivered twice (acks_late: a worker killed mid-batch) costs nothing; failures are recorded on
    their Prediction and retried."""
    results = services.images_presegment(image_ids=image_ids)
    failed = [i for i, p in results.items() if p.status != "ok" and p.attempts < MAX_ATTEMPTS]
    if failed and not self.request.is_eager:
        raise self.retry(args=[failed])
    return {"done": sum(p.status == "ok" for p in results.values()), "failed": sorted(failed)}


@shared_task(name="labelhub.predictions.gpu.presegment_boxes", acks_late=True)
def presegment_boxes(image_id: int, boxes: list[dict]) -> int | None:
    """Masks from box prompts (from an import) for one image."""
    prediction = services.image_presegment_boxes(image_id=image_id, boxes=boxes)
    return prediction.id if prediction else None


@shared_task(name="labelhub.predictions.gpu.embed_images", acks_late=True)
def embed_images(image_ids: list[int]) -> int:
    """Compute and cache the embeddings of images that lack one (batched through the encoder)."""
    from labelhub.images.models import Image

    from .backends import segmentation_backend
    from .embeddings import embeddings_ensure

    images = list(Image.objects.filter(id__in=image_ids).order_by("id"))
    found = embeddings_ensure(images=images, backend=segmentation_backend())
    return sum(tier == "computed" for _, tier in found.values())


@shared_task(name="labelhub.predictions.embed_project", acks_late=True)
def embed_project(project_id: int) -> int:
    """Split a project's images into encoder batches on the `gpu` queue. Returns batches queued."""
    from labelhub.images.models import Image

    ids = list(Image.objects.filter(project_id=project_id).order_by("id").values_list("id", flat=True))
    batch = max(1, settings.LABELHUB_SAM_BATCH_SIZE)
    # A batch the broker refuses is logged and skipped: embeddings are also computed on first use.
    return sum(
        send_or_log("labelhub.predictions.gpu.embed_images", ids[start : start + batch])
        for start in range(0, len(ids), batch)
    )


@shared_task(name="labelhub.predictions.interactive.segment")
def interactive_segment(image_id: int, prompt: dict) -> dict:
    """A click decoded by a worker of the `interactive` queue (LABELHUB_INTERACTIVE_DECODER=worker):
    never queued behind pre-segmentation on the `gpu` queue."""
    from labelhub.images.models import Image

    from .interactive import segment_prompt

    return segment_prompt(image=Image.objects.select_related("project").get(id=image_id), prompt=prompt)


@shared_task(name="labelhub.predictions.presegment_sweep")
def presegment_sweep() -> int:
    """Periodic: queue again pre-segmentations left pending by a killed worker, or failed."""
    return len(services.presegment_sweep())


@shared_task(
    name="labelhub.predictions.service_predict",
    bind=True,
    acks_late=True,
    max_retries=max(0, settings.LABELHUB_MODEL_SERVICE_MAX_ATTEMPTS - 1),
)
def service_predict(self, service_id: int, image_ids: list[int]) -> dict:
    """Pre-label a batch of images through a model service (`cpu` queue: the work is the service's, this
    worker only waits for it under the service's timeout). Images whose call failed are retried with a
    doubling delay while attempts remain and the service is not paused; refused results are not retried
    (the same answer would come back)."""
    from .model_services import REFUSED, images_predict_service, retry_delay
    from .models import ModelService

    results = images_predict_service(service_id=service_id, image_ids=image_ids)
    limit = settings.LABELHUB_MODEL_SERVICE_MAX_ATTEMPTS
    failed = sorted(
        i
        for i, p in results.items()
        if p.status != "ok" and not p.error.startswith(REFUSED) and p.attempts < limit
    )
    paused = ModelService.objects.filter(id=service_id, paused=True).exists()
    if failed and not paused and not self.request.is_eager:
        attempts = max(results[i].attempts for i in failed)
        raise self.retry(args=[service_id, failed], countdown=retry_delay(attempts))
    return {
        "done": sum(p.status == "ok" for p in results.values()),
        "failed": sorted(i for i, p in results.items() if p.status != "ok"),
    }
