"""Pre-segmentation: run the configured segmentation backend on an image and keep what it made.

The compute (model, masks, polygons) lives in `workers/`; this module reads the image from storage,
records the Prediction and seeds the task's annotation with the AI regions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from django.db import transaction

from labelhub.images.decoding import image_to_rgb_array
from labelhub.images.models import Image
from labelhub.labeling.models import Task
from labelhub.labeling.services import annotation_prelabel
from labelhub.projects.models import Project

from .models import Prediction, PredictionStatus

log = logging.getLogger(__name__)

# "Everything" mode can return hundreds of specks; a labeler starts from the strongest regions.
MAX_AUTOMATIC_REGIONS = 100


def segmentation_backend():
    """The process-wide backend: SAM when a checkpoint is configured, else the classical one."""
    from workers.sam import get_backend

    checkpoint = settings.LABELHUB_SAM_CHECKPOINT or None
    return get_backend(
        settings.LABELHUB_SAM_MODEL if checkpoint else None,
        checkpoint,
        device=settings.LABELHUB_SAM_DEVICE or None,
        compile=settings.LABELHUB_SAM_COMPILE,
    )


def region_from_mask(
    *, mask: np.ndarray, project: Project, label: str, score: float | None, prediction_id: int
) -> dict | None:
    """An AI region: the mask as COCO RLE plus polygons simplified with the project's default and bound."""
    from workers.geometry import mask_to_rle, mask_to_simplified_polygons

    polygons = mask_to_simplified_polygons(
        mask,
        method=project.polygon_simplifier,
        min_iou=project.polygon_min_iou,
        max_distance=project.polygon_max_distance,
    )
    if not polygons:
        return None
    return {
        "label": label,
        "kind": "polygon",
        "polygons": polygons,
        "rle": mask_to_rle(mask),
        "source": "ai",
        "prediction_id": prediction_id,
        "score": None if score is None else round(float(score), 4),
    }


def image_pixels(image: Image) -> np.ndarray:
    with image.file.open("rb") as fh:
        return image_to_rgb_array(fh.read())


def prediction_start(
    *, image: Image, model_name: str, checkpoint_sha256: str, kind: str = "automatic"
) -> Prediction:
    """The prediction row this attempt works on: reuse a pending or failed one, so retries leave one row."""
    with transaction.atomic():
        prediction = (
            Prediction.objects.select_for_update()
            .filter(image=image, model_name=model_name, checkpoint_sha256=checkpoint_sha256, kind=kind)
            .exclude(status=PredictionStatus.OK)
            .first()
        )
        if prediction is None:
            prediction = Prediction.objects.create(
                image=image, model_name=model_name, checkpoint_sha256=checkpoint_sha256, kind=kind
            )
        prediction.attempts += 1
        prediction.status = PredictionStatus.PENDING
        prediction.save(update_fields=["attempts", "status", "updated_at"])
    return prediction


def prediction_fail(*, prediction: Prediction, error: str) -> None:
    prediction.status = PredictionStatus.FAILED
    prediction.error = error[:2000]
    prediction.save(update_fields=["status", "error", "updated_at"])


def prediction_finish(*, prediction: Prediction, masks: Iterable, started: float) -> Prediction:
    """Store the regions made from `masks` (objects with .mask and .score) and pre-label the task."""
    image = prediction.image
    project = image.project
    label = project.class_names[0]
    ranked = sorted(masks, key=lambda m: -float(m.score))[:MAX_AUTOMATIC_REGIONS]
    regions = []
    for item in ranked:
        region = region_from_mask(
            mask=item.mask, project=project, label=label, score=item.score, prediction_id=prediction.id
        )
        if region is not None:
            regions.append(region)
    with transaction.atomic():
        prediction.regions = regions
        prediction.status = PredictionStatus.OK
        prediction.error = ""
        prediction.score = float(np.mean([r["score"] for r in regions])) if regions else None
        prediction.duration_ms = (time.perf_counter() - started) * 1000.0
        prediction.save()
        task = Task.objects.filter(image=image).first()
        if task is not None:
            annotation_prelabel(task=task, regions=regions)
    return prediction


def image_presegment(*, image_id: int) -> Prediction | None:
    """Pre-segment one image ("everything" mode). Idempotent: an image with a finished prediction from
    the configured model is left as it is. Raises on failure after recording it, so the task retries."""
    image = Image.objects.select_related("project").filter(id=image_id).first()
    if image is None:
        return None  # deleted since it was queued
    backend = segmentation_backend()
    done = Prediction.objects.filter(
        image=image,
        model_name=backend.model_name,
        checkpoint_sha256=backend.checkpoint_sha256,
        kind="automatic",
        status=PredictionStatus.OK,
    ).first()
    if done is not None:
        return done
    prediction = prediction_start(
        image=image, model_name=backend.model_name, checkpoint_sha256=backend.checkpoint_sha256
    )
    started = time.perf_counter()
    try:
        masks = backend.automatic(image_pixels(image))
        return prediction_finish(prediction=prediction, masks=masks, started=started)
    except Exception as exc:
        log.exception("pre-segmentation of image %s failed", image_id)
        prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
        raise


def presegment_enqueue(*, image_ids: list[int]) -> None:
    """Queue pre-segmentation once the current transaction commits (the worker must see the rows)."""
    if not image_ids or not settings.LABELHUB_PRESEGMENT_ON_UPLOAD:
        return
    from .tasks import presegment_images

    ids = list(image_ids)
    transaction.on_commit(lambda: presegment_images.delay(ids))
