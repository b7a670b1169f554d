"""The segmentation backend of this process and the pixels it reads: the floor of the predictions app
(services, embeddings and interactive all stand on it)."""

from __future__ import annotations

import numpy as np
from django.conf import settings

from labelhub.core.errors import DomainError
from labelhub.images.decoding import image_to_rgb_array, image_to_rgb_array_bounded
from labelhub.images.models import Image


class ModelUnavailable(DomainError):
    status_code = 503
    code = "model_unavailable"


def segmentation_backend():
    """The process-wide backend: SAM when a checkpoint is configured, else the classical one.
    LABELHUB_SAM_RANDOM_SEED (tests and benchmarks only) builds SAM with seeded random weights."""
    from workers.sam import CheckpointError, get_backend
    from workers.sam.registry import resolve_device

    checkpoint = settings.LABELHUB_SAM_CHECKPOINT or None
    seed = int(settings.LABELHUB_SAM_RANDOM_SEED) if settings.LABELHUB_SAM_RANDOM_SEED else None
    sam = bool(checkpoint or seed is not None)
    device = settings.LABELHUB_SAM_DEVICE or None
    decoder = settings.LABELHUB_SAM_DECODER
    if decoder == "auto":
        decoder = "torch" if sam and resolve_device(device).startswith("cuda") else "onnx"
    try:
        return get_backend(
            settings.LABELHUB_SAM_MODEL if sam else None,
            checkpoint,
            device=device,
            compile=settings.LABELHUB_SAM_COMPILE,
            seed=seed,
            max_batch=settings.LABELHUB_SAM_BATCH_SIZE,
            decoder=decoder,
            onnx_dir=settings.LABELHUB_SAM_ONNX_DIR,
            onnx_threads=settings.LABELHUB_SAM_ONNX_THREADS,
        )
    except (CheckpointError, ValueError) as exc:
        # A missing or wrong checkpoint is a configuration error: say so, never loop on it.
        raise ModelUnavailable(f"The segmentation model cannot be loaded: {exc}") from exc


class WholeImageRefused(DomainError):
    status_code = 409
    code = "gigapixel_image"


def _refuse_pyramid(image: Image) -> None:
    # A gigapixel image is never decoded whole: its clicks read view windows, its everything mode tiles.
    if image.is_pyramid:
        raise WholeImageRefused(
            "This is a gigapixel image: segment it with a view window (segment/ with `window`)."
        )


def image_pixels(image: Image) -> np.ndarray:
    _refuse_pyramid(image)
    with image.file.open("rb") as fh:
        return image_to_rgb_array(fh.read())


def image_pixels_bounded(image: Image, *, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The image downscaled to a long side of at most `max_side`, and the (x, y) factors back to full size."""
    _refuse_pyramid(image)
    with image.file.open("rb") as fh:
        return image_to_rgb_array_bounded(fh.read(), max_side=max_side)
