"""The interface shared by the SAM and the classical segmentation backends.

Pure numpy (+ OpenCV for PNG coding of classical embeddings); no torch, no Django.

Coordinates and units
---------------------
* Images: ``np.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``, **RGB** order.
* Points: ``(N, 2)`` float array of ``(x, y)`` pixel coordinates in the ORIGINAL image; the image
  covers ``[0, W] x [0, H]`` (pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``).
* Point labels: ``(N,)`` ints, ``1`` = positive (object), ``0`` = negative (background).
* Box: ``(4,)`` float ``(x0, y0, x1, y1)`` in the same pixel coordinates, ``x0 < x1``, ``y0 < y1``.
* Masks: ``bool`` arrays ``(H, W)`` at the ORIGINAL image size.
* Low-res logits / ``mask_input``: ``float32`` ``(1, 256, 256)`` logits (>0 = object) in SAM's
  input frame: the image resized so its longest side is 1024 (``ResizeLongestSide``), padded
  bottom/right to 1024x1024, then downsampled 4x. Both backends produce and accept this format,
  so a client can always feed the previous ``PromptResult.low_res_logits`` back as ``mask_input``.
* Bounding boxes of automatic masks: ``(x, y, w, h)`` ints, inclusive pixel extent.

Interface (see :class:`SegmentationBackend`)
--------------------------------------------
``backend.model_name`` (``"sam-vit_b"``, ``"classical-grabcut"`` ...) and
``backend.checkpoint_sha256`` (``"none"`` for classical) identify the model that made every
prediction; they are copied into every :class:`Embedding`, :class:`PromptResult` and
:class:`AutoMask` so the caller can store them with the prediction.

* ``embed(images) -> list[Embedding]``: batched, the expensive step (run once per image, cache
  ``Embedding.to_bytes()``).
* ``predict(embedding, *, points, point_labels, box, mask_input, multimask_output, candidate) -> PromptResult``:
  the cheap interactive step; never recomputes the embedding.
* ``automatic(image_or_embedding, ...) -> list[AutoMask]``: "segment everything".

Errors: :class:`PromptError` / :class:`ImageError` (both ``ValueError``, with a ``field``
attribute naming the offending request field) and :class:`EmbeddingMismatchError` (an embedding
made by another model or checkpoint, or corrupt bytes).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "LOW_RES",
    "SAM_INPUT_SIZE",
    "AutoMask",
    "Embedding",
    "EmbeddingMismatchError",
    "ImageError",
    "Prompt",
    "PromptError",
    "PromptResult",
    "SegmentationBackend",
    "input_size_for",
    "logits_to_mask",
    "mask_to_logits",
    "validate_image",
    "validate_images",
    "validate_prompt",
]

SAM_INPUT_SIZE = 1024  # long side of the encoder input (ResizeLongestSide target)
LOW_RES = 256  # side of the low-res logit grid (SAM_INPUT_SIZE / 4)
_MAGIC = b"LHSAMEMB"
_VERSION = 1


class PromptError(ValueError):
    """Invalid prompt. ``field`` names the request field: points, point_labels, box, ..."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ImageError(ValueError):
    """Invalid image array (shape/dtype/size). ``field`` is ``"image"`` or ``"images[i]"``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EmbeddingMismatchError(ValueError):
    """Embedding bytes are corrupt, or were produced by a different model/checkpoint."""


# ----------------------------------------------------------------------------------------------
# geometry of the SAM input frame (shared by both backends)


def input_size_for(original_size: tuple[int, int], long_side: int = SAM_INPUT_SIZE) -> tuple[int, int]:
    """``(h, w)`` of an ``original_size=(H, W)`` image resized so its long side is ``long_side``.

    Identical to ``segment_anything.utils.transforms.ResizeLongestSide.get_preprocess_shape``.
    """
    oldh, oldw = original_size
    scale = long_side * 1.0 / max(oldh, oldw)
    return int(oldh * scale + 0.5), int(oldw * scale + 0.5)


def is_background(mask: np.ndarray, *, min_fraction: float = 0.5) -> bool:
    """A region that touches all four image borders and covers at least `min_fraction` of the image is
    the background around the objects (everything mode finds it as one more "region"), not an object."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.size:
        return False
    borders = m[0, :].any() and m[-1, :].any() and m[:, 0].any() and m[:, -1].any()
    return bool(borders and m.mean() >= min_fraction)


def mask_to_logits(mask: np.ndarray, *, magnitude: float = 8.0) -> np.ndarray:
    """Encode a full-size bool mask ``(H, W)`` as ``(1, 256, 256)`` float32 low-res logits.

    Used by the classical backend so its ``PromptResult.low_res_logits`` has SAM's format.
    Values are ``+magnitude`` inside / ``-magnitude`` outside (area-averaged at the borders).
    """
    import cv2

    h, w = mask.shape
    ih, iw = input_size_for((h, w), LOW_RES)
    small = cv2.resize(mask.astype(np.float32), (max(iw, 1), max(ih, 1)), interpolation=cv2.INTER_AREA)
    out = np.full((LOW_RES, LOW_RES), -magnitude, dtype=np.float32)
    out[:ih, :iw] = (small * 2.0 - 1.0) * magnitude
    return out[None]


def logits_to_mask(logits: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """Decode ``(1, 256, 256)`` low-res logits to a bool ``(H, W)`` mask (threshold 0)."""
    import cv2

    h, w = original_size
    ih, iw = input_size_for((h, w), LOW_RES)
    crop = np.ascontiguousarray(np.asarray(logits, dtype=np.float32).reshape(LOW_RES, LOW_RES)[:ih, :iw])
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR) > 0


# ----------------------------------------------------------------------------------------------
# data types


@dataclass
class Embedding:
    """Cached per-image state: everything ``predict``/``automatic`` need, nothing else.

    Attributes:
        model_name: backend that produced it (``"sam-vit_b"``, ``"classical-grabcut"``).
        checkpoint_sha256: checkpoint of that backend (``"none"`` for classical).
        original_size: ``(H, W)`` of the source image.
        input_size: ``(h, w)`` after ``ResizeLongestSide(1024)`` (SAM) / equal to original
            (classical).
        data: SAM: ``float16`` image features ``(256, 64, 64)``; classical: the ``uint8``
            RGB image ``(H, W, 3)``.

    Serialization (:meth:`to_bytes`): ``b"LHSAMEMB"`` + u32 version + u32 header length + JSON
    header + u32 CRC32 of the payload + payload. SAM payload = raw little-endian fp16 features
    (2 MiB + ~200 B header); classical payload = lossless PNG of the image.
    """

    model_name: str
    checkpoint_sha256: str
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    data: np.ndarray
    _cached_bytes: bytes | None = field(default=None, repr=False, compare=False)

    def to_bytes(self) -> bytes:
        """Serialize to a compact, self-describing byte string (cached after first call)."""
        if self._cached_bytes is not None:
            return self._cached_bytes
        if self.data.dtype == np.uint8 and self.data.ndim == 3:
            import cv2

            ok, buf = cv2.imencode(".png", np.ascontiguousarray(self.data[..., ::-1]))
            if not ok:  # pragma: no cover - cv2 failure
                raise RuntimeError("PNG encoding of the embedding image failed")
            payload, encoding = buf.tobytes(), "png-rgb"
        else:
            arr = np.ascontiguousarray(self.data, dtype="<f2")
            payload, encoding = arr.tobytes(), "raw-f16"
        header = json.dumps(
            {
                "model_name": self.model_name,
                "checkpoint_sha256": self.checkpoint_sha256,
                "original_size": list(self.original_size),
                "input_size": list(self.input_size),
                "encoding": encoding,
                "shape": list(self.data.shape),
            },
            separators=(",", ":"),
        ).encode()
        self._cached_bytes = b"".join(
            [
                _MAGIC,
                struct.pack("<II", _VERSION, len(header)),
                header,
                struct.pack("<I", zlib.crc32(payload)),
                payload,
            ]
        )
        return self._cached_bytes

    @classmethod
    def from_bytes(cls, blob: bytes) -> Embedding:
        """Inverse of :meth:`to_bytes`. Raises :class:`EmbeddingMismatchError` on corrupt input."""
        try:
            if blob[: len(_MAGIC)] != _MAGIC:
                raise EmbeddingMismatchError("not a LabelHub SAM embedding (bad magic)")
            off = len(_MAGIC)
            version, hlen = struct.unpack_from("<II", blob, off)
            if version != _VERSION:
                raise EmbeddingMismatchError(f"unsupported embedding version {version}")
            off += 8
            header = json.loads(blob[off : off + hlen])
            off += hlen
            (crc,) = struct.unpack_from("<I", blob, off)
            payload = blob[off + 4 :]
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, EmbeddingMismatchError):
                raise
            raise EmbeddingMismatchError(f"corrupt embedding bytes: {exc}") from exc
        if zlib.crc32(payload) != crc:
            raise EmbeddingMismatchError("corrupt embedding bytes: payload CRC32 mismatch")
        shape = tuple(header["shape"])
        if header["encoding"] == "raw-f16":
            data = np.frombuffer(payload, dtype="<f2").reshape(shape)
        elif header["encoding"] == "png-rgb":
            import cv2

            bgr = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None or bgr.shape != shape:
                raise EmbeddingMismatchError("corrupt embedding bytes: bad PNG payload")
            data = np.ascontiguousarray(bgr[..., ::-1])
        else:
            raise EmbeddingMismatchError(f"unknown embedding encoding {header['encoding']!r}")
        emb = cls(
            model_name=header["model_name"],
            checkpoint_sha256=header["checkpoint_sha256"],
            original_size=tuple(header["original_size"]),  # type: ignore[arg-type]
            input_size=tuple(header["input_size"]),  # type: ignore[arg-type]
            data=data,
        )
        emb._cached_bytes = bytes(blob)
        return emb

    @property
    def nbytes(self) -> int:
        """Size in bytes of :meth:`to_bytes` (what a cache stores)."""
        return len(self.to_bytes())


@dataclass
class PromptResult:
    """Answer to one interactive prompt.

    Attributes:
        mask: bool ``(H, W)`` at the original image size.
        score: model's quality estimate in [0, 1]-ish (SAM: predicted IoU of the chosen mask;
            classical: IoU between the GrabCut masks of the last two iterations).
        low_res_logits: float32 ``(1, 256, 256)``; pass back as ``mask_input`` on the next click.
        model_name, checkpoint_sha256: provenance.
        candidates: how many masks the prompt had to choose from (SAM: 3 for a single click without
            box or previous mask, else 1); candidate: which was returned, 0 the best by predicted IoU.
    """

    mask: np.ndarray
    score: float
    low_res_logits: np.ndarray
    model_name: str
    checkpoint_sha256: str
    candidates: int = 1
    candidate: int = 0


@dataclass
class AutoMask:
    """One region from "segment everything".

    Attributes:
        mask: bool ``(H, W)``.
        score: SAM: predicted IoU; classical: boundary-contrast score in [0, 1].
        bbox: ``(x, y, w, h)`` ints, tight around ``mask``.
        model_name, checkpoint_sha256: provenance.
    """

    mask: np.ndarray
    score: float
    bbox: tuple[int, int, int, int]
    model_name: str
    checkpoint_sha256: str


@dataclass
class Prompt:
    """Validated prompt in original-image pixel coordinates (see :func:`validate_prompt`)."""

    points: np.ndarray | None  # (N, 2) float64
    point_labels: np.ndarray | None  # (N,) int32
    box: np.ndarray | None  # (4,) float64
    mask_input: np.ndarray | None  # (1, 256, 256) float32


@runtime_checkable
class SegmentationBackend(Protocol):
    """What the Celery ``gpu`` worker calls. Implemented by ``SamBackend`` and ``ClassicalBackend``."""

    model_name: str
    checkpoint_sha256: str

    def embed(self, images: list[np.ndarray]) -> list[Embedding]:
        """Batched embedding of RGB uint8 ``(H, W, 3)`` images, one :class:`Embedding` each."""
        ...

    def predict(
        self,
        embedding: Embedding,
        *,
        points: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool | None = None,
        candidate: int = 0,
    ) -> PromptResult:
        """Mask for a prompt, from a cached embedding (no image encoder call); ``candidate`` k > 0
        returns the (k+1)-th best of several candidate masks (PromptError where there are fewer)."""
        ...

    def automatic(self, image: np.ndarray | Embedding, **kwargs: Any) -> list[AutoMask]:
        """All regions of an image ("segment everything"); may return an empty list."""
        ...


# ----------------------------------------------------------------------------------------------
# validation


def validate_image(image: Any, field: str = "image") -> np.ndarray:
    """Check an image array: ``np.ndarray``, ``(H, W, 3)``, ``uint8``, ``H, W >= 1``.

    Returns the array (C-contiguous). Raises :class:`ImageError`.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(field, f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(field, f"expected shape (H, W, 3) RGB, got {image.shape}")
    if image.dtype != np.uint8:
        raise ImageError(field, f"expected dtype uint8, got {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(field, f"empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def validate_images(images: Any) -> list[np.ndarray]:
    """Validate a non-empty list of images (field names ``images[i]``)."""
    if isinstance(images, np.ndarray) or not isinstance(images, (list, tuple)):
        raise ImageError("images", "expected a list of (H, W, 3) uint8 arrays")
    if not images:
        raise ImageError("images", "empty list")
    return [validate_image(im, f"images[{i}]") for i, im in enumerate(images)]


def candidate_index(scores: Any, candidate: Any) -> int:
    """Index into ``scores`` (predicted IoU of each candidate mask) of the ``candidate``-th best (0 the
    best). Raises PromptError("candidate") for anything but an int in [0, len(scores))."""
    n = len(scores)
    if isinstance(candidate, bool) or not isinstance(candidate, int | np.integer) or not 0 <= candidate < n:
        raise PromptError(
            "candidate",
            f"this prompt has {n} candidate mask(s): candidate is 0"
            + (f"..{n - 1}" if n > 1 else "")
            + (" (several only for a single click without box or previous mask)" if n == 1 else ""),
        )
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return int(order[int(candidate)])


def validate_prompt(
    original_size: tuple[int, int],
    *,
    points: Any = None,
    point_labels: Any = None,
    box: Any = None,
    mask_input: Any = None,
) -> Prompt:
    """Validate and normalize a prompt for an image of ``original_size=(H, W)``.

    Rules (each violation raises :class:`PromptError` with ``field`` set):
      * at least one point or a box (``field="prompt"``);
      * points: finite ``(N, 2)``, ``N >= 1``, inside ``[0, W] x [0, H]``;
      * point_labels: required with points, ``(N,)``, values in {0, 1}; forbidden without points;
      * box: finite ``(4,)`` xyxy with ``x0 < x1`` and ``y0 < y1`` (no zero area), inside the image;
      * mask_input: finite ``(1, 256, 256)`` or ``(256, 256)`` logits.
    """
    h, w = original_size
    pts = labels = bx = mi = None
    if points is not None:
        try:
            pts = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PromptError("points", f"not numeric: {exc}") from None
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 1:
            raise PromptError("points", f"expected shape (N, 2) with N >= 1, got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise PromptError("points", "contains NaN or infinite coordinates")
        bad = (pts[:, 0] < 0) | (pts[:, 0] > w) | (pts[:, 1] < 0) | (pts[:, 1] > h)
        if bad.any():
            i = int(np.argmax(bad))
            raise PromptError(
                "points",
                f"point {i} at (x={pts[i, 0]:g}, y={pts[i, 1]:g}) is outside the {w}x{h} image",
            )
        if point_labels is None:
            raise PromptError("point_labels", "required when points are given")
        try:
            raw = np.asarray(point_labels)
        except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
            raise PromptError("point_labels", f"not numeric: {exc}") from None
        if raw.shape != (pts.shape[0],):
            raise PromptError(
                "point_labels", f"expected shape ({pts.shape[0]},) matching points, got {raw.shape}"
            )
        if raw.dtype.kind not in "biuf" or not np.all(np.isin(raw, (0, 1))):
            raise PromptError("point_labels", "labels must be 1 (positive) or 0 (negative)")
        labels = raw.astype(np.int32)
    elif point_labels is not None:
        raise PromptError("point_labels", "given without points")
    if box is not None:
        try:
            bx = np.asarray(box, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PromptError("box", f"not numeric: {exc}") from None
        if bx.shape != (4,):
            raise PromptError("box", f"expected (x0, y0, x1, y1), got shape {bx.shape}")
        if not np.all(np.isfinite(bx)):
            raise PromptError("box", "contains NaN or infinite coordinates")
        x0, y0, x1, y1 = bx
        if not (x1 > x0 and y1 > y0):
            raise PromptError("box", f"zero or negative area box {bx.tolist()} (need x0<x1, y0<y1)")
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise PromptError("box", f"box {bx.tolist()} extends outside the {w}x{h} image")
    if pts is None and bx is None:
        raise PromptError("prompt", "empty prompt: give at least one point or a box")
    if mask_input is not None:
        try:
            mi = np.asarray(mask_input, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise PromptError("mask_input", f"not numeric: {exc}") from None
        if mi.shape == (LOW_RES, LOW_RES):
            mi = mi[None]
        if mi.shape != (1, LOW_RES, LOW_RES):
            raise PromptError(
                "mask_input", f"expected low-res logits (1, {LOW_RES}, {LOW_RES}), got {mi.shape}"
            )
        if not np.all(np.isfinite(mi)):
            raise PromptError("mask_input", "contains NaN or infinite values")
    return Prompt(points=pts, point_labels=labels, box=bx, mask_input=mi)


def check_embedding(embedding: Any, model_name: str, checkpoint_sha256: str) -> None:
    """Raise :class:`EmbeddingMismatchError` unless ``embedding`` was made by this model+checkpoint."""
    if not isinstance(embedding, Embedding):
        raise EmbeddingMismatchError(f"expected an Embedding, got {type(embedding).__name__}")
    if embedding.model_name != model_name or embedding.checkpoint_sha256 != checkpoint_sha256:
        raise EmbeddingMismatchError(
            f"embedding made by {embedding.model_name} ({embedding.checkpoint_sha256}) cannot be "
            f"decoded by {model_name} ({checkpoint_sha256}); recompute it"
        )


def mask_bbox_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight ``(x, y, w, h)`` of a bool mask; ``(0, 0, 0, 0)`` when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return (0, 0, 0, 0)
    return (int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
