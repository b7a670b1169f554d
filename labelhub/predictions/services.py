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
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent, PredictionReady, announce
from labelhub.core.files import files_delete_on_commit
from labelhub.core.jobs import ClaimLost, Heartbeat, JobKind
from labelhub.core.queue import enqueue_on_commit
from labelhub.images.models import Image
from labelhub.projects.models import Prelabel, Project

from .backends import ModelUnavailable, image_pixels, image_pixels_bounded, segmentation_backend
from .embeddings import embeddings_ensure
from .models import PRESEGMENT_MAX_ATTEMPTS, Prediction, PredictionStatus

log = logging.getLogger(__name__)

# "Everything" mode can return hundreds of specks; a labeler starts from the strongest regions.
MAX_AUTOMATIC_REGIONS = 100


def _scaled(polygons: list[dict], scale: tuple[float, float]) -> list[dict]:
    sx, sy = scale

    def ring(points):
        return [[round(x * sx, 2), round(y * sy, 2)] for x, y in points]

    return [
        {"exterior": ring(p["exterior"]), "holes": [ring(h) for h in p.get("holes", [])]} for p in polygons
    ]


def region_from_mask(
    *,
    mask: np.ndarray,
    project: Project,
    label: str,
    score: float | None,
    prediction_id: int,
    scale: tuple[float, float] | None = None,
) -> dict | None:
    """An AI region: the mask as COCO RLE plus polygons simplified with the project's default and bound.
    With `scale` (the mask is of a downscaled copy, see LABELHUB_PRESEGMENT_MAX_SIDE) the polygons are
    traced and simplified at the reduced scale (the bound measured there), then scaled to full-resolution
    coordinates; no RLE (it would be of the reduced size, and the polygons are the region)."""
    from workers.geometry import mask_to_rle, mask_to_simplified_polygons

    polygons = mask_to_simplified_polygons(
        mask,
        method=project.polygon_simplifier,
        min_iou=project.polygon_min_iou,
        max_distance=project.polygon_max_distance,
    )
    if not polygons:
        return None
    if scale is not None:
        return {
            "label": label,
            "kind": "polygon",
            "polygons": _scaled(polygons, scale),
            "source": "ai",
            "prediction_id": prediction_id,
            "score": None if score is None else round(float(score), 4),
        }
    return {
        "label": label,
        "kind": "polygon",
        "polygons": polygons,
        "rle": mask_to_rle(mask),
        "source": "ai",
        "prediction_id": prediction_id,
        "score": None if score is None else round(float(score), 4),
    }


def region_from_pieces(
    *,
    pieces: Iterable,
    project: Project,
    label: str,
    score: float | None,
    prediction_id: int,
    scale: tuple[float, float] = (1.0, 1.0),
) -> dict | None:
    """An AI region of a gigapixel image from masks placed in it (`workers.sam.tiled.Piece`: a mask
    cropped to its box at (x, y); several for the disjoint parts of one region): each traced and
    simplified with the project's default and bound where it lies, its polygons moved to (x, y) and
    multiplied by `scale` (the mask's pixels in full-resolution pixels). No RLE: it would be of the
    whole image; the polygons are the region. None when no polygon is left."""
    from workers.geometry import mask_to_simplified_polygons

    sx, sy = scale
    polygons = []
    for piece in pieces:
        for p in mask_to_simplified_polygons(
            piece.mask,
            method=project.polygon_simplifier,
            min_iou=project.polygon_min_iou,
            max_distance=project.polygon_max_distance,
        ):
            moved = [p["exterior"], *p.get("holes", [])]
            rings = [
                [[round((piece.x + x) * sx, 2), round((piece.y + y) * sy, 2)] for x, y in r] for r in moved
            ]
            polygons.append({"exterior": rings[0], "holes": rings[1:]})
    if not polygons:
        return None
    return {
        "label": label,
        "kind": "polygon",
        "polygons": polygons,
        "source": "ai",
        "prediction_id": prediction_id,
        "score": None if score is None else round(float(score), 4),
    }


# The running claim of a prediction row (core/jobs.py): pending or failed (retried), or running with a
# stale heartbeat. A redelivered message while the first run is alive finds the row held and skips it.
PRESEGMENT_JOBS = JobKind(
    Prediction, waiting=(PredictionStatus.PENDING, PredictionStatus.FAILED), running=PredictionStatus.RUNNING
)


def prediction_start(
    *, image: Image, model_name: str, checkpoint_sha256: str, kind: str = "automatic"
) -> Prediction | None:
    """The prediction row this run works on, claimed by it (`claim_token` on the returned object): a
    pending or failed one is reused, so retries leave one row. None when a live run holds it."""
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
    token = PRESEGMENT_JOBS.claim(prediction.id)
    if token is None:
        log.info("prediction %s: a live run holds it", prediction.id)
        return None
    prediction.refresh_from_db()
    prediction.claim_token = token
    return prediction


def prediction_fail(*, prediction: Prediction, error: str) -> None:
    """Record the run's failure (only while its claim holds: a run that lost it writes nothing)."""
    prediction.status = PredictionStatus.FAILED
    prediction.error = error[:2000]
    try:
        PRESEGMENT_JOBS.write(
            prediction.id,
            prediction.claim_token,
            status=prediction.status,
            error=prediction.error,
            updated_at=timezone.now(),
        )
    except ClaimLost:
        log.warning(
            "prediction %s: run %s lost its claim; its failure is not recorded",
            prediction.id,
            prediction.claim_token,
        )


def prediction_finish(
    *, prediction: Prediction, masks: Iterable, started: float, scale: tuple[float, float] | None = None
) -> Prediction:
    """Store the regions made from `masks` (objects with .mask and .score) and pre-label the task.
    Everything-mode masks carry no class: they take the project's first class. Scores are kept only
    where they mean something: SAM's predicted IoU. The classical backend's ranking number (a colour
    contrast) is not a confidence, so its regions carry no score (the app shows none)."""
    project = prediction.image.project
    meaningful = prediction.checkpoint_sha256 != "none"
    label = project.class_names[0]
    ranked = sorted(masks, key=lambda m: -float(m.score))[:MAX_AUTOMATIC_REGIONS]
    regions = []
    for item in ranked:
        region = region_from_mask(
            mask=item.mask,
            project=project,
            label=label,
            score=item.score if meaningful else None,
            prediction_id=prediction.id,
            scale=scale,
        )
        if region is not None:
            regions.append(region)
    return prediction_save_regions(prediction=prediction, regions=regions, started=started)


def prediction_save_regions(*, prediction: Prediction, regions: list[dict], started: float) -> Prediction:
    image = prediction.image
    with transaction.atomic():
        if not PRESEGMENT_JOBS.held(prediction.id, prediction.claim_token).select_for_update().exists():
            log.warning(
                "prediction %s: run %s lost its claim; it wrote nothing",
                prediction.id,
                prediction.claim_token,
            )
            return prediction
        prediction.regions = regions
        prediction.status = PredictionStatus.OK
        prediction.error = ""
        scores = [r["score"] for r in regions if r.get("score") is not None]
        prediction.score = float(np.mean(scores)) if scores else None
        prediction.duration_ms = (time.perf_counter() - started) * 1000.0
        prediction.save()
        # labeling seeds the image's untouched task with these regions, in this transaction
        announce(
            PredictionReady(prediction=prediction.id, image=image.id),
            organization_id=image.project.organization_id,
            project_id=image.project_id,
            context={"image": image, "regions": regions},
        )
    return prediction


def _finished(*, image: Image, backend, kind: str) -> Prediction | None:
    return Prediction.objects.filter(
        image=image,
        model_name=backend.model_name,
        checkpoint_sha256=backend.checkpoint_sha256,
        kind=kind,
        status=PredictionStatus.OK,
    ).first()


def _record_unavailable(*, image: Image, model_name: str, error: str) -> Prediction:
    prediction = prediction_start(image=image, model_name=model_name, checkpoint_sha256="unavailable")
    if prediction is not None:
        prediction_fail(prediction=prediction, error=error)
    return prediction


def images_presegment(*, image_ids: list[int]) -> dict[int, Prediction]:
    """Pre-segment images ("everything" mode), the encoder batched across them.

    Idempotent: an image that already has a finished prediction from the configured model is skipped.
    Every other image ends with a finished prediction or a recorded failure (status "failed", error
    text, attempts counted); the caller retries the failed ones.
    """
    images = list(Image.objects.select_related("project").filter(id__in=image_ids).order_by("id"))
    try:
        backend = segmentation_backend()
    except ModelUnavailable as exc:
        name = f"sam-{settings.LABELHUB_SAM_MODEL}"
        recorded = {
            image.id: _record_unavailable(image=image, model_name=name, error=exc.message) for image in images
        }
        return {k: v for k, v in recorded.items() if v is not None}
    results: dict[int, Prediction] = {}
    todo: list[tuple[Image, Prediction]] = []
    for image in images:
        done = _finished(image=image, backend=backend, kind="automatic")
        if done is not None:
            results[image.id] = done
        else:
            prediction = prediction_start(
                image=image, model_name=backend.model_name, checkpoint_sha256=backend.checkpoint_sha256
            )
            if prediction is not None:  # None: a live run holds it (a redelivered message)
                todo.append((image, prediction))
    with Heartbeat(PRESEGMENT_JOBS, [(p.id, p.claim_token) for _, p in todo]):
        _presegment_claimed(todo=todo, backend=backend, results=results)
    return results


def _presegment_claimed(*, todo: list[tuple[Image, Prediction]], backend, results: dict) -> None:
    """The batch's work on its claimed predictions (images_presegment), results filled in."""
    for image, prediction in [(i, p) for i, p in todo if i.is_pyramid]:
        results[image.id] = _presegment_tiled(image=image, prediction=prediction, backend=backend)
    todo = [(i, p) for i, p in todo if not i.is_pyramid]
    max_side = settings.LABELHUB_PRESEGMENT_MAX_SIDE
    huge = [(i, p) for i, p in todo if max(i.width, i.height) > max_side]
    for image, prediction in huge:
        results[image.id] = _presegment_downscaled(
            image=image, prediction=prediction, backend=backend, max_side=max_side
        )
    todo = [(i, p) for i, p in todo if max(i.width, i.height) <= max_side]
    pixels: dict[int, np.ndarray] = {}
    for image, prediction in todo:
        try:
            pixels[image.id] = image_pixels(image)
        except Exception as exc:  # unreadable file: recorded, the others go on
            prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
            results[image.id] = prediction
    readable = [(i, p) for i, p in todo if i.id in pixels]
    started = time.perf_counter()
    try:
        embeddings = embeddings_ensure(images=[i for i, _ in readable], backend=backend, pixels=pixels)
    except Exception as exc:
        log.exception("embedding a batch of %d images failed", len(readable))
        for image, prediction in readable:
            prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
            results[image.id] = prediction
        return
    for image, prediction in readable:
        try:
            masks = backend.automatic(embeddings[image.id][0], **_crop_options(backend, pixels[image.id]))
            results[image.id] = prediction_finish(prediction=prediction, masks=masks, started=started)
        except Exception as exc:
            log.exception("pre-segmentation of image %s failed", image.id)
            prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
            results[image.id] = prediction


def _crop_options(backend, pixels: np.ndarray) -> dict:
    """Everything mode's crop layers (LABELHUB_SAM_CROP_LAYERS, SAM only): each layer embeds
    (2^i)² overlapping crops of the image on top of the whole one, for small objects."""
    layers = settings.LABELHUB_SAM_CROP_LAYERS
    if layers <= 0 or not getattr(backend, "crop_layers_supported", False):
        return {}
    return {
        "crop_n_layers": layers,
        "crop_n_points_downscale_factor": settings.LABELHUB_SAM_CROP_POINTS_DOWNSCALE,
        "source": pixels,
    }


def _presegment_downscaled(*, image: Image, prediction: Prediction, backend, max_side: int) -> Prediction:
    """Everything mode on an image larger than LABELHUB_PRESEGMENT_MAX_SIDE: the backend gets a copy
    downscaled to that long side (memory bounded by it, not by the image: an 8000x8000 image is
    segmented as 2048x2048), and the polygons are scaled back to full resolution. The embedding is not
    cached: the cache holds full-resolution embeddings, which interactive `segment/` prompts address."""
    started = time.perf_counter()
    try:
        pixels, scale = image_pixels_bounded(image, max_side=max_side)
        (embedding,) = backend.embed([pixels])
        masks = backend.automatic(embedding, **_crop_options(backend, pixels))
        del pixels
        return prediction_finish(prediction=prediction, masks=masks, started=started, scale=scale)
    except Exception as exc:
        log.exception("pre-segmentation of image %s (downscaled) failed", image.id)
        prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
        return prediction


# A gigapixel image keeps more of its automatic regions (a slide holds thousands of nuclei).
MAX_TILED_REGIONS = 10_000


def _presegment_tiled(*, image: Image, prediction: Prediction, backend) -> Prediction:
    """Everything mode on a gigapixel image: its pyramid read at a scale with a long side of at most
    LABELHUB_PYRAMID_PRESEGMENT_MAX_SIDE, in tiles of LABELHUB_PYRAMID_PRESEGMENT_TILE with
    LABELHUB_PYRAMID_PRESEGMENT_OVERLAP px of overlap, one tile in memory at a time; objects cut by tile
    seams merged into one region (workers.sam.tiled), polygons scaled to full resolution (the project's
    bound measured at the segmenting scale)."""
    from labelhub.images.pyramids import pyramid_reader
    from workers.sam.tiled import segment_tiled

    started = time.perf_counter()
    if image.pyramid_status != "ready":
        prediction_fail(prediction=prediction, error="the image's tile pyramid is not ready")
        return prediction
    try:
        reader = pyramid_reader(image)
        scale = max(1.0, max(image.width, image.height) / settings.LABELHUB_PYRAMID_PRESEGMENT_MAX_SIDE)
        width, height = max(1, round(image.width / scale)), max(1, round(image.height / scale))
        sx, sy = image.width / width, image.height / height

        def read(x0, y0, x1, y1):
            return reader.pixels(x0 * sx, y0 * sy, x1 * sx, y1 * sy, x1 - x0, y1 - y0)

        def segment(pixels):
            (embedding,) = backend.embed([pixels])
            return [(m.mask, m.score) for m in backend.automatic(embedding)]

        pieces = segment_tiled(
            read,
            width,
            height,
            segment,
            tile=settings.LABELHUB_PYRAMID_PRESEGMENT_TILE,
            overlap=settings.LABELHUB_PYRAMID_PRESEGMENT_OVERLAP,
        )
        project = image.project
        label = project.class_names[0]
        regions = []
        for piece in sorted(pieces, key=lambda p: -p.score)[:MAX_TILED_REGIONS]:
            region = region_from_pieces(
                pieces=[piece],
                project=project,
                label=label,
                score=piece.score,
                prediction_id=prediction.id,
                scale=(sx, sy),
            )
            if region is not None:
                regions.append(region)
        return prediction_save_regions(prediction=prediction, regions=regions, started=started)
    except Exception as exc:
        log.exception("pre-segmentation of image %s (tiled) failed", image.id)
        prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
        return prediction


def image_presegment(*, image_id: int) -> Prediction | None:
    """Pre-segment one image; see images_presegment."""
    return images_presegment(image_ids=[image_id]).get(image_id)


def image_presegment_boxes(*, image_id: int, boxes: list[dict]) -> Prediction | None:
    """Masks from box prompts supplied by an import: boxes [{"label": str, "box": [x0, y0, x1, y1]}].
    The prediction's regions carry the boxes' labels. Idempotent like images_presegment."""
    image = Image.objects.select_related("project").filter(id=image_id).first()
    if image is None:
        return None
    backend = segmentation_backend()
    done = _finished(image=image, backend=backend, kind="boxes")
    if done is not None:
        return done
    prediction = prediction_start(
        image=image, model_name=backend.model_name, checkpoint_sha256=backend.checkpoint_sha256, kind="boxes"
    )
    if prediction is None:  # a live run holds it
        return None
    started = time.perf_counter()
    try:
        embedding = embeddings_ensure(images=[image], backend=backend)[image.id][0]
        labelled = []
        for item in boxes:
            result = backend.predict(embedding, box=item["box"])
            labelled.append((item["label"], result))
        regions = []
        for label, result in labelled:
            region = region_from_mask(
                mask=result.mask,
                project=image.project,
                label=label,
                score=result.score,
                prediction_id=prediction.id,
            )
            if region is not None:
                regions.append(region)
        return prediction_save_regions(prediction=prediction, regions=regions, started=started)
    except Exception as exc:
        log.exception("box pre-segmentation of image %s failed", image_id)
        prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
        raise


def presegment_sweep() -> list[int]:
    """Queue again the images whose pre-segmentation was lost (a worker killed mid-batch leaves its
    predictions pending) or failed with attempts left, and (pre-segmentation on upload) the images of
    "everything" projects that have no prediction at all. Returns the image ids queued."""
    from datetime import timedelta

    now = timezone.now()
    stale = now - timedelta(seconds=settings.LABELHUB_PRESEGMENT_STALE_SECONDS)
    lost = set(
        Prediction.objects.filter(kind="automatic", attempts__lt=PRESEGMENT_MAX_ATTEMPTS)
        .filter(
            Q(status__in=[PredictionStatus.PENDING, PredictionStatus.FAILED], updated_at__lt=stale)
            | (Q(status=PredictionStatus.RUNNING) & PRESEGMENT_JOBS.claimable(now))  # its worker died
        )
        .values_list("image_id", flat=True)
    )
    if settings.LABELHUB_PRESEGMENT_ON_UPLOAD and _everything_on_upload():
        # Images whose message never reached a worker (lost with a broker restart, or its send failed
        # after the upload committed) have no prediction row at all: find them from the images.
        lost.update(
            Image.objects.filter(project__prelabel=Prelabel.EVERYTHING, created_at__lt=stale)
            .exclude(Exists(Prediction.objects.filter(image=OuterRef("pk"), kind="automatic")))
            .values_list("id", flat=True)
        )
    ids = sorted(lost)
    batch = max(1, settings.LABELHUB_SAM_BATCH_SIZE)
    for start in range(0, len(ids), batch):
        presegment_enqueue(image_ids=ids[start : start + batch], force=True)
    return ids


def _everything_on_upload() -> bool:
    """The classical backend's everything mode floods labelers with regions they delete (COCO-MVal:
    42.7 regions an image, 99.5% deleted), so new images get it only with
    LABELHUB_CLASSICAL_EVERYTHING; SAM (a checkpoint, or seeded random weights) always runs."""
    sam = bool(settings.LABELHUB_SAM_CHECKPOINT or settings.LABELHUB_SAM_RANDOM_SEED)
    return sam or settings.LABELHUB_CLASSICAL_EVERYTHING


def presegment_enqueue(*, image_ids: list[int], force: bool = False) -> None:
    """Queue pre-segmentation once the current transaction commits (the worker must see the rows).
    New images (force=False) follow their project's `prelabel` mode: "everything" runs the segmentation
    backend; "none", "boxes" (box prompts come with imports) and "project_model" (labelhub.learning
    hears "images.added" itself) queue nothing here. force=True (an explicit request, the sweep) runs
    the backend."""
    if not image_ids or not (force or settings.LABELHUB_PRESEGMENT_ON_UPLOAD):
        return
    if not force:  # new images: only projects pre-labelled by the segmentation backend
        image_ids = sorted(
            Image.objects.filter(id__in=image_ids, project__prelabel=Prelabel.EVERYTHING).values_list(
                "id", flat=True
            )
        )
        if not image_ids or not _everything_on_upload():
            return
    batch = max(1, settings.LABELHUB_SAM_BATCH_SIZE)
    for start in range(0, len(image_ids), batch):
        ids = list(image_ids[start : start + batch])
        enqueue_on_commit("labelhub.predictions.gpu.presegment_images", ids)


def project_prelabel_status(*, project: Project) -> dict:
    """Whether new images of `project` are pre-labelled as they arrive, and why not (for the manager),
    with the project's pre-segmentation progress: images, those with a finished automatic prediction,
    pending and failed ones, and those with none."""
    automatic = Prediction.objects.filter(image__project=project, kind="automatic")
    images = project.images.count()
    done = automatic.filter(status=PredictionStatus.OK).values("image_id").distinct().count()
    pending = automatic.filter(status=PredictionStatus.PENDING).values("image_id").distinct().count()
    failed = automatic.filter(status=PredictionStatus.FAILED).values("image_id").distinct().count()
    without = project.images.exclude(Exists(automatic.filter(image=OuterRef("pk")))).count()
    sam = bool(settings.LABELHUB_SAM_CHECKPOINT or settings.LABELHUB_SAM_RANDOM_SEED)
    on_upload = False
    if project.prelabel == Prelabel.NONE:
        reason = "Pre-labels are off for this project (pre-label mode: none): images arrive unlabelled."
    elif project.prelabel == Prelabel.BOXES:
        reason = "Images are pre-labelled from the box prompts that come with a dataset import."
    elif project.prelabel == Prelabel.PROJECT_MODEL:
        reason = "New images are pre-labelled by the project's own model once a version is promoted."
    elif not settings.LABELHUB_PRESEGMENT_ON_UPLOAD:
        reason = "This server does not pre-segment new images (LABELHUB_PRESEGMENT_ON_UPLOAD is off)."
    elif not _everything_on_upload():
        reason = (
            "This server has no SAM model: the classical backend pre-segments new images only when "
            "LABELHUB_CLASSICAL_EVERYTHING is on. Start it here for this project's images."
        )
    else:
        on_upload = True
        backend = "SAM" if sam else "the classical backend"
        reason = f"New images are pre-segmented by {backend} as they arrive."
    return {
        "mode": project.prelabel,
        "on_upload": on_upload,
        "reason": reason,
        "images": images,
        "done": done,
        "pending": pending,
        "failed": failed,
        "without": without,
    }


def project_presegment_queue(*, project: Project) -> int:
    """Queue pre-segmentation (everything mode) of the project's images that have no automatic
    prediction yet, or only failed ones; returns how many. Refused when the project's pre-labels are off."""
    if project.prelabel == Prelabel.NONE:
        raise DomainError(
            "Pre-labels are off for this project; choose a pre-label mode first.",
            field="prelabel",
            code="prelabel_off",
        )
    settled = Prediction.objects.filter(
        image=OuterRef("pk"), kind="automatic", status__in=[PredictionStatus.OK, PredictionStatus.PENDING]
    )
    ids = sorted(project.images.exclude(Exists(settled)).values_list("id", flat=True))
    presegment_enqueue(image_ids=ids, force=True)
    return len(ids)


def on_images_added(event: DomainEvent) -> None:
    """Subscriber of "images.added" (after commit): queue the new images' pre-segmentation."""
    if event.payload.get("presegment"):
        presegment_enqueue(image_ids=event.payload["image_ids"])


def on_rows_deleting(event: DomainEvent) -> None:
    """Subscriber of "image.deleting" and "project.deleting" (in their transaction): the stored
    embeddings of the image(s) go once the deletion commits."""
    from .models import ImageEmbedding

    if "image" in event.context:
        rows = ImageEmbedding.objects.filter(image=event.context["image"])
    else:
        rows = ImageEmbedding.objects.filter(image__project=event.context["project"])
    storage = ImageEmbedding._meta.get_field("file").storage
    files_delete_on_commit(storage, rows.values_list("file", flat=True).iterator())


def image_presegment_queue(*, image: Image, boxes: list[dict] | None = None) -> None:
    """Queue pre-segmentation of one image once this commits: everything mode, or masks from box
    prompts ([{"label", "box": [x0, y0, x1, y1]}], checked against the project and the image)."""
    if not boxes:
        presegment_enqueue(image_ids=[image.id], force=True)
        return
    for i, item in enumerate(boxes):
        if item["label"] not in image.project.class_names:
            raise DomainError(
                f"Unknown class {item['label']!r}.", field=f"boxes[{i}].label", code="unknown_class"
            )
        x0, y0, x1, y1 = item["box"]
        if not (0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height):
            raise DomainError(
                "A box is [x0, y0, x1, y1] inside the image with positive area.", field=f"boxes[{i}].box"
            )
    payload = [{"label": b["label"], "box": list(b["box"])} for b in boxes]
    enqueue_on_commit("labelhub.predictions.gpu.presegment_boxes", image.id, payload)


def project_embeddings_queue(*, project: Project) -> int:
    """Queue the embeddings of every image of the project (split into encoder batches on the `gpu`
    queue by the task) once this commits; the number of images."""
    enqueue_on_commit("labelhub.predictions.embed_project", project.id)
    return project.images.count()
