"""Segment Anything workers: framework-free compute layer for the ``gpu`` Celery queue (issue 4).

No Django imports; ``torch`` / ``segment_anything`` are imported lazily, so ``import workers.sam``
is cheap in the API process. Integration contract for the Django/Celery side:

>>> backend = get_backend(settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT)   # once per process
>>> [emb] = backend.embed([rgb_uint8_hwc])                                     # expensive, batched
>>> blob = emb.to_bytes()                                                      # cache (storage/Redis)
>>> emb = Embedding.from_bytes(blob)                                           # later request
>>> res = backend.predict(emb, points=[[x, y]], point_labels=[1])              # cheap
>>> res.mask, res.score, res.low_res_logits, res.model_name, res.checkpoint_sha256
>>> masks = backend.automatic(emb)                                             # "everything"

* ``get_backend(model_type, checkpoint_path, *, device=None, optimized=True, compile=False,
  max_batch=4, decoder="torch")``:
  per-process cached singleton. ``checkpoint_path=None`` (no checkpoint configured) ->
  :class:`ClassicalBackend` (``model_name="classical-grabcut"``, ``checkpoint_sha256="none"``);
  otherwise :class:`SamBackend` after SHA-256 verification (:class:`CheckpointError` if wrong).
* Every :class:`Embedding`, :class:`PromptResult` and :class:`AutoMask` carries ``model_name`` and
  ``checkpoint_sha256``: store them with the Prediction. An embedding made by another
  model/checkpoint is refused with :class:`EmbeddingMismatchError` (recompute it).
* Invalid prompts raise :class:`PromptError` (``.field``: "prompt", "points", "point_labels",
  "box", "mask_input"); invalid arrays raise :class:`ImageError` (``.field``: "image[s]").

Formats and coordinates: see :mod:`workers.sam.interface`. Checkpoints: :mod:`workers.sam.registry`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from .classical import ClassicalBackend
from .interface import (
    AutoMask,
    Embedding,
    EmbeddingMismatchError,
    ImageError,
    PromptError,
    PromptResult,
    SegmentationBackend,
)
from .registry import MODEL_SPECS, CheckpointError, download_checkpoint, load_sam

if TYPE_CHECKING:  # pragma: no cover
    from .predictor import SamBackend

__all__ = [
    "MODEL_SPECS",
    "AutoMask",
    "CheckpointError",
    "ClassicalBackend",
    "Embedding",
    "EmbeddingMismatchError",
    "ImageError",
    "PromptError",
    "PromptResult",
    "SamBackend",
    "SegmentationBackend",
    "download_checkpoint",
    "get_backend",
    "load_sam",
    "reset_backends",
]

_BACKENDS: dict[tuple[Any, ...], SegmentationBackend] = {}
_LOCK = threading.Lock()


def get_backend(
    model_type: str | None,
    checkpoint_path: str | None,
    *,
    device: str | None = None,
    optimized: bool = True,
    compile: bool = False,
    seed: int | None = None,
    max_batch: int = 4,
    decoder: str = "torch",
    onnx_dir: str | None = None,
    onnx_threads: int = 1,
) -> SegmentationBackend:
    """Per-process cached backend (the model is loaded once per worker process).

    Args:
        model_type: ``"vit_h"`` | ``"vit_l"`` | ``"vit_b"``; required with a checkpoint.
        checkpoint_path: official SAM checkpoint; ``None``/``""`` -> classical backend.
        device: torch device (default: CUDA if available, else CPU).
        optimized: SDPA attention + bf16 on CUDA; ``False`` = stock fp32 segment_anything.
        compile: ``torch.compile`` the image encoder (optimized only).
        seed: without a checkpoint, build SAM ``model_type`` with seeded random weights (tests and
            speed benchmarks only; recorded as checkpoint ``"random-seed-<n>"``).
        max_batch: images per encoder forward (``LABELHUB_SAM_BATCH_SIZE``).
        decoder: ``"torch"`` or ``"onnx"`` (clicks decoded by ONNX Runtime on CPU cores).
        onnx_dir / onnx_threads: where the exported decoder is cached; threads per click.

    Raises:
        CheckpointError: missing checkpoint file or SHA-256 mismatch.
        ValueError: checkpoint without a (known) model type.
    """
    if not checkpoint_path and seed is None:
        key: tuple[Any, ...] = ("classical",)
    else:
        if not model_type:
            raise ValueError("a SAM checkpoint needs model_type ('vit_h', 'vit_l' or 'vit_b')")
        key = (
            "sam", model_type, str(checkpoint_path or ""), seed, device, optimized, compile,
            max_batch, decoder, onnx_dir, onnx_threads,
        )  # fmt: skip
    with _LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            # The protocol's `automatic(**kwargs)` stands for each backend's own keyword options, which
            # a structural check cannot match: the backends are the protocol's by construction.
            if key[0] == "classical":
                backend = cast(SegmentationBackend, ClassicalBackend())
            else:
                from .predictor import SamBackend

                backend = cast(
                    SegmentationBackend,
                    SamBackend.from_checkpoint(
                        model_type,  # type: ignore[arg-type]
                        checkpoint_path or None,
                        device=device,
                        seed=seed,
                        optimized=optimized,
                        compile=compile,
                        max_batch=max_batch,
                        decoder=decoder,
                        onnx_dir=onnx_dir,
                        onnx_threads=onnx_threads,
                    ),
                )
            _BACKENDS[key] = backend
    return backend


def reset_backends() -> None:
    """Drop cached backends (tests; a worker never needs this)."""
    with _LOCK:
        _BACKENDS.clear()


def __getattr__(name: str) -> Any:
    if name == "SamBackend":  # lazy: importing it does not import torch, but keep API uniform
        from .predictor import SamBackend

        return SamBackend
    raise AttributeError(name)
