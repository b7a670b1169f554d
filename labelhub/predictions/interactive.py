"""Interactive segmentation: a click or a box in, a mask (RLE and polygons) out, decoded from the
image's cached embedding. The embedding is computed only when no tier of the cache holds it."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.cache import cache

from labelhub.core.errors import Conflict, DomainError
from labelhub.core.queue import send_or_log, task_named
from labelhub.images.models import Image
from labelhub.regions.validation import rle_clean

from .backends import segmentation_backend
from .embeddings import embeddings_ensure, window_embedding

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from workers.sam import Embedding

MASK_INPUT_TTL = 30 * 60


def _mask_input_store(logits: np.ndarray) -> str:
    token = secrets.token_urlsafe(12)
    cache.set(f"lh:mi:{token}", logits.astype(np.float16).tobytes(), timeout=MASK_INPUT_TTL)
    return token


def _mask_input_load(token: Any, shape: tuple[int, ...]) -> np.ndarray:
    blob = cache.get(f"lh:mi:{token}") if isinstance(token, str) else None
    if blob is None:
        raise DomainError(
            "mask_input_id is unknown or expired; send the prompt without it.", field="mask_input_id"
        )
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32).reshape(shape)


def _mask_input_from_rle(rle: Any, size: tuple[int, int]) -> np.ndarray:
    """A region's shape (COCO RLE of the image's size) as the low-res logits both backends take as
    `mask_input`: the clicks then refine that shape (SAM's previous mask; GrabCut's initial labels).
    The RLE passes the checks of every region's RLE (labelhub.regions.validation.rle_clean)."""
    from workers.geometry import rle_to_mask
    from workers.sam.interface import mask_to_logits

    height, width = size
    mask = rle_to_mask(rle_clean(rle, "mask_rle", width, height))
    if not mask.any():
        raise DomainError("mask_rle is empty: there is no shape to refine.", field="mask_rle")
    return mask_to_logits(mask)


def segment_prompt(*, image: Image, prompt: dict) -> dict:
    """Answer one prompt: {"points": [[x, y]], "point_labels": [1|0], "box": [x0, y0, x1, y1],
    "mask_input_id": str, "mask_rle": COCO RLE of a region to refine, "multimask": bool}. Coordinates in pixels of the original image.

    Returns {"rle", "polygons", "score", "model_name", "checkpoint_sha256", "mask_input_id",
    "candidates", "candidate", "embedding": tier it came from or "computed", "timing_ms": {...}}.
    """
    from workers.geometry import mask_to_rle
    from workers.sam import EmbeddingMismatchError, PromptError
    from workers.sam.interface import LOW_RES

    for name in ("points", "point_labels"):  # refused by count before any model or geometry work
        value = prompt.get(name)
        if isinstance(value, list) and len(value) > settings.LABELHUB_MAX_PROMPT_POINTS:
            raise DomainError(
                f"At most {settings.LABELHUB_MAX_PROMPT_POINTS} points per prompt.",
                field=name,
                code="too_many_points",
            )
    t0 = time.perf_counter()
    backend = segmentation_backend()
    window = _window_check(image, prompt)
    if window is not None:
        # A gigapixel image: the view window is read from the pyramid at the view's zoom (long side at
        # most LABELHUB_PYRAMID_WINDOW_MAX_SIDE) and embedded; the prompt moves into its frame.
        embedding, tier, scale = window_embedding(image=image, window=window, backend=backend)
        prompt = _prompt_to_window(prompt, window, scale)
    else:
        embedding, tier = embeddings_ensure(images=[image], backend=backend)[image.id]
    t1 = time.perf_counter()
    mask_input = None
    if prompt.get("mask_input_id"):
        mask_input = _mask_input_load(prompt["mask_input_id"], (1, LOW_RES, LOW_RES))
    elif prompt.get("mask_rle") is not None:
        mask_input = _mask_input_from_rle(prompt["mask_rle"], (image.height, image.width))
    try:
        result = backend.predict(
            embedding,
            points=prompt.get("points"),
            point_labels=prompt.get("point_labels"),
            box=prompt.get("box"),
            mask_input=mask_input,
            multimask_output=prompt.get("multimask"),
            candidate=prompt.get("candidate", 0),
        )
    except PromptError as exc:
        raise DomainError(str(exc), field=exc.field, code="invalid_prompt") from exc
    except EmbeddingMismatchError as exc:  # pragma: no cover - the cache keys by model and checkpoint
        raise DomainError(str(exc), field="image", code="embedding_mismatch") from exc
    t2 = time.perf_counter()
    polygons = project_polygons(image.project, result.mask)
    rle = mask_to_rle(result.mask)
    extra = {}
    if window is not None:
        polygons = _polygons_from_window(polygons, window, scale)
        extra["window"] = {**window, "scale": round(scale, 6)}
    t3 = time.perf_counter()
    return {
        **extra,
        "rle": rle,
        "polygons": polygons,
        "score": round(float(result.score), 4),
        "area": int(result.mask.sum()),
        "model_name": result.model_name,
        "checkpoint_sha256": result.checkpoint_sha256,
        "mask_input_id": _mask_input_store(result.low_res_logits),
        "candidates": result.candidates,
        "candidate": result.candidate,
        "embedding": tier,
        "timing_ms": {
            "embedding": round((t1 - t0) * 1000, 2),
            "decode": round((t2 - t1) * 1000, 2),
            "polygons": round((t3 - t2) * 1000, 2),
        },
    }


def _window_check(image: Image, prompt: dict) -> dict | None:
    """The prompt's view window {x, y, width, height} (full-resolution pixels, inside the image): needed
    by a click on a gigapixel image, refused on an ordinary one (400 naming `window`)."""
    window = prompt.get("window")
    if not image.is_pyramid:
        if window is not None:
            raise DomainError("window is only for gigapixel (tiled) images.", field="window")
        return None
    if image.pyramid_status != "ready":
        raise Conflict("The image's tile pyramid is not ready yet.", code="pyramid_not_ready")
    if window is None:
        raise DomainError(
            "A click on a gigapixel image sends the view window {x, y, width, height}.",
            field="window",
            code="required",
        )
    x, y, w, h = (window[k] for k in ("x", "y", "width", "height"))
    if x + w > image.width or y + h > image.height:
        raise DomainError(
            f"The window must lie inside the image ({image.width}x{image.height}).", field="window"
        )
    for name in ("points", "box"):
        value = prompt.get(name)
        if not isinstance(value, list) or not value:
            continue
        coords = value if name == "points" else [value[:2], value[2:]]
        for pair in coords:
            if (
                isinstance(pair, list | tuple)
                and len(pair) == 2
                and all(isinstance(v, int | float) for v in pair)
                and not (x <= pair[0] <= x + w and y <= pair[1] <= y + h)
            ):
                raise DomainError(f"{name} must lie inside the window.", field=name)
    return {"x": x, "y": y, "width": w, "height": h}


def _prompt_to_window(prompt: dict, window: dict, scale: float) -> dict:
    x, y = window["x"], window["y"]
    moved = dict(prompt)
    if isinstance(prompt.get("points"), list):
        moved["points"] = [[(px - x) / scale, (py - y) / scale] for px, py in prompt["points"]]
    if isinstance(prompt.get("box"), list) and len(prompt["box"]) == 4:
        x0, y0, x1, y1 = prompt["box"]
        moved["box"] = [(x0 - x) / scale, (y0 - y) / scale, (x1 - x) / scale, (y1 - y) / scale]
    return moved


def _polygons_from_window(polygons: list[dict], window: dict, scale: float) -> list[dict]:
    x, y = window["x"], window["y"]

    def ring(points):
        return [[round(x + px * scale, 2), round(y + py * scale, 2)] for px, py in points]

    return [
        {"exterior": ring(p["exterior"]), "holes": [ring(h) for h in p.get("holes", [])]} for p in polygons
    ]


def project_polygons(project, mask: np.ndarray) -> list[dict]:
    """A mask's polygons under the project's simplifier and accuracy bound ([] for an empty mask)."""
    from workers.geometry import mask_to_simplified_polygons

    if not mask.any():
        return []
    return mask_to_simplified_polygons(
        mask,
        method=project.polygon_simplifier,
        min_iou=project.polygon_min_iou,
        max_distance=project.polygon_max_distance,
    )


def polygonize(*, image: Image, rle: object) -> dict:
    """A mask of this image (COCO RLE, the image's size) in, its polygons under the project's
    simplifier and bound out: what segment_prompt returns for a mask it decoded, here for a mask
    decoded elsewhere (the browser's SAM decoder). Raises DomainError naming the field of a bad RLE."""
    from workers.geometry import rle_to_mask

    t0 = time.perf_counter()
    rle = rle_clean(rle, "rle", image.width, image.height)
    mask = rle_to_mask(rle).astype(bool, copy=False)
    polygons = project_polygons(image.project, mask)
    project = image.project
    return {
        "polygons": polygons,
        "area": int(mask.sum()),
        "vertices": sum(len(p["exterior"]) + sum(len(h) for h in p["holes"]) for p in polygons),
        "simplifier": project.polygon_simplifier,
        "min_iou": project.polygon_min_iou,
        "max_distance": project.polygon_max_distance,
        "timing_ms": {"polygons": round((time.perf_counter() - t0) * 1000, 2)},
    }


def decoder_location() -> str:
    """ "api" or "worker", from LABELHUB_INTERACTIVE_DECODER (see settings for "auto")."""
    mode = settings.LABELHUB_INTERACTIVE_DECODER
    remote = not settings.CELERY_TASK_ALWAYS_EAGER and bool(settings.CELERY_RESULT_BACKEND)
    if mode == "auto":
        return "worker" if remote and settings.LABELHUB_SAM_CHECKPOINT else "api"
    return "worker" if mode == "worker" and remote else "api"


def prompt_check(*, image: Image, prompt: dict) -> None:
    """Refuse (400 `invalid_prompt`, naming the field) points, labels or a box that do not fit the
    image: checked before any decode, whoever answers the prompt (a backend or a model service)."""
    from workers.sam import PromptError
    from workers.sam.interface import validate_prompt

    try:
        validate_prompt(
            (image.height, image.width),
            points=prompt.get("points"),
            point_labels=prompt.get("point_labels"),
            box=prompt.get("box"),
        )
    except PromptError as exc:
        raise DomainError(str(exc), field=exc.field, code="invalid_prompt") from exc


def interactive_answer(*, image: Image, prompt: dict) -> dict:
    """Decode where LABELHUB_INTERACTIVE_DECODER says: in this process, or on an `interactive` worker.
    The prompt is checked here first, so a bad one is refused without a round trip."""
    prompt_check(image=image, prompt=prompt)
    if decoder_location() == "worker":
        return _decode_on_worker(image=image, prompt=prompt)
    return segment_prompt(image=image, prompt=prompt)


def _decode_on_worker(*, image: Image, prompt: dict) -> dict:
    """Publish the click to the `interactive` queue and wait for its answer (the caller needs the result,
    so this is the one send that does not go through labelhub.core.queue). A broker or result backend
    that cannot be reached answers 503 `queue_unavailable`, a worker that does not answer in time 503
    `worker_timeout`: errors the client can retry, not a 500."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    unreachable = (KombuOperationalError, RedisConnectionError, RedisTimeoutError, OSError)
    try:
        pending = task_named("labelhub.predictions.interactive.segment").delay(image.id, prompt)
    except unreachable as exc:
        log.exception("could not publish the click on image %s to the interactive queue", image.id)
        raise DomainError(
            "The segmentation queue cannot be reached; try again in a moment.",
            code="queue_unavailable",
            status_code=503,
        ) from exc
    try:
        return pending.get(timeout=settings.LABELHUB_INTERACTIVE_TIMEOUT)
    except CeleryTimeout as exc:
        raise DomainError(
            "No segmentation worker answered in time; try again.", code="worker_timeout", status_code=503
        ) from exc
    except unreachable as exc:
        log.exception("could not read the answer to the click on image %s", image.id)
        raise DomainError(
            "The segmentation answer cannot be read (result backend unreachable); try again in a moment.",
            code="queue_unavailable",
            status_code=503,
        ) from exc


def browser_embedding(*, image: Image, model: str | None = None) -> Embedding | None:
    """The image's SAM embedding for decoding clicks in the browser, or None while a `gpu` worker
    computes it (queued here; ask again). Computed in this process when no workers are reachable.

    Raises DomainError: `model` names another model than the configured one; the configured backend
    is the classical one (it has no embedding a browser could decode)."""
    from .embeddings import embedding_lookup

    backend = segmentation_backend()
    if model and model != backend.model_name:
        raise DomainError(
            f"This server serves the embeddings of {backend.model_name!r}, not {model!r}.", field="model"
        )
    if backend.checkpoint_sha256 == "none":
        raise Conflict(
            "This server has no Segment Anything model, so clicks are segmented on the server, not in the "
            "browser.",
            code="no_sam_model",
        )
    embedding, _ = embedding_lookup(image=image, backend=backend)
    if embedding is not None:
        return embedding
    if decoder_location() == "worker":
        if not send_or_log("labelhub.predictions.gpu.embed_images", [image.id]):
            raise DomainError(
                "The embedding queue cannot be reached; try again in a moment.",
                code="queue_unavailable",
                status_code=503,
            )
        return None
    return embeddings_ensure(images=[image], backend=backend)[image.id][0]


def browser_decoder() -> tuple[Path, str, str]:
    """(path of the ONNX decoder, model name, checkpoint SHA-256) of the configured SAM model,
    exported on first use and cached per model and checkpoint (see workers.sam.onnx_decoder)."""
    backend = segmentation_backend()
    if backend.checkpoint_sha256 == "none":
        raise Conflict(
            "This server has no Segment Anything model, so clicks are segmented on the server, not in the "
            "browser.",
            code="no_sam_model",
        )
    return backend.onnx_decoder_path(), backend.model_name, backend.checkpoint_sha256
