"""The pre-label write path of a batch of images: their predictions claimed together, then every image's
outcome (its regions, or its failure with the reason) written in one transaction, the tasks seeded in
it. A batch costs about a dozen queries whatever its size, where the one-image path (services.py:
prediction_start, prediction_save_regions, prediction_fail) costs about fifteen per image; the rules
are the same: one claim per prediction row (core/jobs.py), every write conditional on it (a run that
lost its claim writes nothing for that image), a failed row reused by its retry, and an image whose
regions the project's rules refuse recorded as failed with the reason, nothing of it written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.events import PredictionsReady, announce
from labelhub.images.models import Image

from .models import Prediction, PredictionStatus
from .services import PRESEGMENT_JOBS

log = logging.getLogger(__name__)


def predictions_start(
    *, images: Iterable[Image], model_name: str, checkpoint_sha256: str, kind: str, **values
) -> dict[int, Prediction]:
    """The prediction rows of a batch's images, claimed by this run (`claim_token` on each), by image
    id: an image's pending or failed row is reused (so retries leave one row), a missing one created.
    An image whose row a live run holds is left out. `values` are set on the rows as they are claimed.
    Six queries whatever the number of images."""
    images = list(images)
    if not images:
        return {}
    with transaction.atomic():
        rows = (
            Prediction.objects.select_for_update()
            .filter(image__in=images, model_name=model_name, checkpoint_sha256=checkpoint_sha256, kind=kind)
            .exclude(status=PredictionStatus.OK)
            .order_by("id")
            .values_list("image_id", "id")
        )
        row_of: dict[int, int] = {}
        for image_id, prediction_id in rows:
            row_of.setdefault(image_id, prediction_id)  # the first one, as prediction_start takes
        missing = [
            Prediction(image=i, model_name=model_name, checkpoint_sha256=checkpoint_sha256, kind=kind)
            for i in images
            if i.id not in row_of
        ]
        for made in Prediction.objects.bulk_create(missing):
            row_of[made.image_id] = made.id
        tokens = PRESEGMENT_JOBS.claim_many(row_of.values(), **values)
    claimed: dict[int, Prediction] = {}
    for prediction in Prediction.objects.filter(id__in=list(tokens)):
        prediction.claim_token = tokens[prediction.id]
        claimed[prediction.image_id] = prediction
    held = set(row_of.values()) - set(tokens)
    if held:
        log.info("predictions %s: a live run holds them", sorted(held))
    return claimed


@dataclass
class Outcome:
    """One image's outcome in a batch: `regions` (done) or `error` (failed, the reason)."""

    image: Image  # its `project` loaded
    prediction: Prediction  # claimed by this run (predictions_start)
    regions: list[dict] | None = None
    error: str = ""
    duration_ms: float | None = None  # the image's work (done images)


def predictions_record(*, outcomes: list[Outcome], refused_prefix: str = "") -> None:
    """Write a batch's outcomes in one transaction: the rows this run still holds locked, the done
    images' tasks seeded (labeling hears "predictions.ready" in this transaction) and their predictions
    stored ok with their regions, mean score and duration; the failed ones, and the done ones whose
    regions the project's rules refuse (their error: `refused_prefix` + the refusal, naming the field),
    stored failed with the reason. A row another run took meanwhile gets nothing (logged); the
    Prediction objects are updated in place to what was written."""
    if not outcomes:
        return
    with transaction.atomic():
        held = PRESEGMENT_JOBS.held_many({o.prediction.id: o.prediction.claim_token for o in outcomes})
        lost = [o.prediction.id for o in outcomes if o.prediction.id not in held]
        if lost:
            log.warning("predictions %s: this run lost their claim; it wrote nothing for them", lost)
        mine = [o for o in outcomes if o.prediction.id in held]
        done = [o for o in mine if o.regions is not None]
        refused: dict[int, DomainError] = {}
        if done:
            first = done[0].image.project
            announce(
                PredictionsReady(
                    predictions=[o.prediction.id for o in done], images=[o.image.id for o in done]
                ),
                organization_id=first.organization_id,
                project_id=first.id,
                context={"items": [(o.image, o.regions) for o in done], "refused": refused},
            )
        now = timezone.now()
        ok, failed = [], []
        for outcome in mine:
            prediction = outcome.prediction
            prediction.updated_at = now
            if outcome.regions is not None and outcome.image.id not in refused:
                scores = [r["score"] for r in outcome.regions if r.get("score") is not None]
                prediction.status, prediction.error = PredictionStatus.OK, ""
                prediction.regions = outcome.regions
                prediction.score = float(np.mean(scores)) if scores else None
                prediction.duration_ms = outcome.duration_ms
                ok.append(prediction)
                continue
            if outcome.regions is not None:
                exc = refused[outcome.image.id]
                outcome.error = f"{refused_prefix}{exc.message} ({exc.field})"
            prediction.status, prediction.error = PredictionStatus.FAILED, outcome.error[:2000]
            failed.append(prediction)
        if ok:
            Prediction.objects.bulk_update(
                ok, ["status", "error", "regions", "score", "duration_ms", "model_version", "updated_at"]
            )
        if failed:
            Prediction.objects.bulk_update(failed, ["status", "error", "updated_at"])
