"""Pre-labels by a project's promoted model version: queued for new images of `project_model` projects,
written as predictions named after the version.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from labelhub.core.events import DomainEvent
from labelhub.core.jobs import Heartbeat
from labelhub.core.queue import enqueue_on_commit
from labelhub.images.models import Image
from labelhub.predictions.backends import image_pixels
from labelhub.predictions.models import PredictionStatus
from labelhub.predictions.services import (
    PRESEGMENT_JOBS,
    prediction_fail,
    prediction_save_regions,
    prediction_start,
    region_from_mask,
)
from labelhub.projects.models import Prelabel

from .models import ProjectModel
from .tiled import prelabel_regions_tiled
from .weights import _load

log = logging.getLogger(__name__)


def prelabel_enqueue(*, image_ids: list[int]) -> None:
    """Queue pre-labelling by the project's own model once the transaction commits."""
    if image_ids:
        enqueue_on_commit("labelhub.learning.train.prelabel_images", list(image_ids))


def on_images_added(event: DomainEvent) -> None:
    """Subscriber of "images.added" (after commit): new images of a project whose `prelabel` is
    "project_model" are pre-labelled by its promoted version."""
    if not (event.payload["presegment"] and settings.LABELHUB_PRESEGMENT_ON_UPLOAD):
        return
    if event.payload["prelabel"] == Prelabel.PROJECT_MODEL:
        prelabel_enqueue(image_ids=event.payload["image_ids"])


def images_prelabel(*, image_ids: list[int]) -> list[int]:
    """Pre-label images with their project's promoted model version (one prediction per image, named
    after the version, checkpoint = its weights' SHA-256). Images of a project without a promoted
    version are left alone. Idempotent. Returns the ids of the predictions made."""
    from workers.train.inference import label_regions, predict_probabilities

    made = []
    images = Image.objects.select_related("project").filter(id__in=image_ids).order_by("id")
    for image in images:
        pm = ProjectModel.objects.select_related("active_version").filter(project=image.project).first()
        version = pm.active_version if pm else None
        if version is None:
            continue
        version.project_model = pm
        name, sha = version.prediction_model_name, version.weights_sha256
        if image.predictions.filter(
            model_name=name, checkpoint_sha256=sha, status=PredictionStatus.OK
        ).exists():
            continue
        prediction = prediction_start(image=image, model_name=name, checkpoint_sha256=sha)
        if prediction is None:  # a live run holds it
            continue
        started = time.perf_counter()
        try:
            model, config = _load(version)
            stuff = {version.classes.index(c) + 1 for c in version.stuff_classes}
            min_area = int(version.config.get("min_area", 16))
            if image.is_pyramid:  # tile by tile at full resolution, read from the pyramid (learning.tiled)
                with Heartbeat(PRESEGMENT_JOBS, [(prediction.id, prediction.claim_token)]):
                    regions = prelabel_regions_tiled(
                        image=image,
                        model=model,
                        device=config.device,
                        classes=version.classes,
                        stuff=stuff,
                        min_area=min_area,
                        prediction_id=prediction.id,
                    )
                prediction_save_regions(prediction=prediction, regions=regions, started=started)
                made.append(prediction.id)
                continue
            probs = predict_probabilities(model, image_pixels(image), device=config.device)
            regions = []
            for part in label_regions(probs, stuff=stuff, min_area=min_area):
                region = region_from_mask(
                    mask=part.mask,
                    project=image.project,
                    label=version.classes[part.class_index - 1],
                    score=part.score,
                    prediction_id=prediction.id,
                )
                if region is not None:
                    regions.append(region)
            prediction_save_regions(prediction=prediction, regions=regions, started=started)
            made.append(prediction.id)
        except Exception as exc:
            log.exception("pre-labelling image %s with %s failed", image.id, name)
            prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
    return made
