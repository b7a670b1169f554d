"""Segment Anything backend: batched image encoder, cached-embedding prompt decoder, automatic masks.

``torch`` / ``segment_anything`` are imported lazily (inside functions) so importing
``workers.sam`` does not pull them into the API process.

Paths
-----
* ``optimized=False`` ("stock"): the unmodified ``segment_anything`` fp32 code path (PIL resize,
  manual attention matmul with the dense relative-position bias), kept for comparisons.
* ``optimized=True``: the encoder runs on a private copy of SAM's image encoder whose Attention
  modules use :func:`sdpa_attention_forward`: ``scaled_dot_product_attention`` with the decomposed
  relative-position bias folded into the query and key (no ``(B, heads, L, L)`` bias tensor, so a
  fused kernel runs), relative-position indices built once on the model's device (no host sync).
  Preprocessing (resize, normalisation, padding) runs on the device from pinned host memory with
  non-blocking copies. ``dtype="bf16"`` (default on CUDA) casts that copy's weights to bf16.
  ``compile=True`` wraps it in ``torch.compile`` with fixed shapes: every batch is padded to
  ``max_batch`` images, and :meth:`SamBackend.warm_up` compiles before the first task.
* ``decoder="onnx"``: clicks (:meth:`SamBackend.predict`) are decoded by ONNX Runtime on CPU cores
  (:mod:`workers.sam.onnx_decoder`, the graph cached per model and checkpoint); ``"torch"``: by
  PyTorch on the model's device (the GPU worker's choice).

The stock model object is never modified, so a stock and an optimized backend may share one
:class:`LoadedSam` (the agreement tests and benchmarks do exactly that to guarantee identical
weights).

Embeddings hold the encoder output as fp16 ``(256, 64, 64)`` (2 MiB) plus original/input sizes;
``predict`` only runs the prompt encoder and mask decoder (fp32) on them. ``encoder_calls`` and
``images_encoded`` count image-encoder invocations (tests assert ``predict`` never adds to them).
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .backend import (
    LOW_RES,
    AutoMask,
    Embedding,
    PromptResult,
    candidate_index,
    check_embedding,
    input_size_for,
    validate_image,
    validate_images,
    validate_prompt,
)
from .registry import LoadedSam, load_sam

__all__ = ["SamBackend", "rel_pos_on_device", "sdpa_attention", "sdpa_attention_forward"]

_INDEX_CACHE: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], make: Any) -> Any:
    value = _INDEX_CACHE.get(key)
    if value is None:
        value = _INDEX_CACHE[key] = make()
    return value


def rel_pos_on_device(q_size: int, k_size: int, rel_pos: Any) -> Any:
    """``segment_anything``'s ``get_rel_pos`` with its index tensor built once on ``rel_pos``'s device
    (the stock one builds it on the CPU every call: a host-to-device copy and sync per layer).
    Returns ``(q_size, k_size, C)``."""
    import torch
    import torch.nn.functional as F

    max_rel_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_rel_dist:  # not the case for SAM's own sizes
        rel_pos = (
            F.interpolate(
                rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist, mode="linear"
            )
            .reshape(-1, max_rel_dist)
            .permute(1, 0)
        )

    def make() -> Any:
        q = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
        k = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
        return ((q - k) + (k_size - 1) * max(q_size / k_size, 1.0)).long()

    return rel_pos[_cached(("rel", q_size, k_size, str(rel_pos.device)), make)]


def _key_one_hot(h: int, w: int, pad: int, like: Any) -> Any:
    """``(h*w, h + w + pad)``: key token ``(i, j)`` -> one-hot of its row ``i`` and of its column ``j``."""
    import torch

    def make() -> Any:
        rows = torch.arange(h * w, device=like.device)
        out = torch.zeros(h * w, h + w + pad, device=like.device, dtype=like.dtype)
        out[rows, rows // w] = 1
        out[rows, h + rows % w] = 1
        return out

    return _cached(("onehot", h, w, pad, str(like.device), like.dtype), make)


def sdpa_attention_forward(self: Any, x: Any, fold: bool | None = None) -> Any:
    """Drop-in replacement for ``image_encoder.Attention.forward`` with one fused SDPA call.

    The decomposed relative-position bias ``rel_h[q, kh] + rel_w[q, kw]`` is a dot product of the
    query's ``(rel_h, rel_w)`` rows with the key's one-hot ``(row, column)`` code, so it rides along
    as extra query/key channels (divided by the softmax scale, which SDPA multiplies back): the
    ``(B, heads, L, L)`` bias is never built (512 MiB per image per ViT-H global layer in bf16) and
    SDPA may pick a fused kernel. Extra channels are zero-padded to a multiple of 8 (fused-kernel
    alignment). The value keeps its own head size. ``fold=None`` folds on CUDA only: CPU SDPA kernels
    need equal query/value head sizes and fall back to a slower path (``benchmarks/sam_attention.py``:
    1.7x slower than the dense bias at 48x48 tokens), so on a CPU the bias is passed densely.

    Args:
        x: ``(B, H, W, C)`` tokens.
    Returns:
        ``(B, H, W, C)``; equal to the stock forward up to floating-point rounding.
    """
    import torch
    import torch.nn.functional as F

    B, H, W, _ = x.shape
    n = self.num_heads
    qkv = self.qkv(x).reshape(B, H * W, 3, n, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, n, L, c)
    c = q.shape[-1]
    scale = c**-0.5
    if self.use_rel_pos:
        rh = rel_pos_on_device(H, H, self.rel_pos_h).to(q.dtype)
        rw = rel_pos_on_device(W, W, self.rel_pos_w).to(q.dtype)
        r_q = q.reshape(B, n, H, W, c)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rh).reshape(B, n, H * W, H)
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rw).reshape(B, n, H * W, W)
        if fold if fold is not None else x.is_cuda:
            pad = (-(c + H + W)) % 8
            parts = [q, rel_h / scale, rel_w / scale]
            if pad:
                parts.append(q.new_zeros(B, n, H * W, pad))
            q = torch.cat(parts, dim=-1)
            k = torch.cat([k, _key_one_hot(H, W, pad, k).expand(B, n, -1, -1)], dim=-1)
        else:  # CPU: its SDPA kernels need equal q/v head sizes; the dense bias is cheaper there
            bias = (rel_h.reshape(B, n, H, W, H)[..., None] + rel_w.reshape(B, n, H, W, 1, W)).reshape(
                B, n, H * W, H * W
            )
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
            return self.proj(out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1))
    out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    out = out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(out)


def _attention_modules(module: Any) -> list[Any]:
    from segment_anything.modeling.image_encoder import Attention

    return [m for m in module.modules() if isinstance(m, Attention)]


@contextlib.contextmanager
def sdpa_attention(model: Any, enabled: bool = True) -> Iterator[None]:
    """Temporarily bind :func:`sdpa_attention_forward` to the encoder's Attention instances."""
    if not enabled:
        yield
        return
    mods = [m for m in _attention_modules(model.image_encoder) if "forward" not in m.__dict__]
    for m in mods:
        m.forward = types.MethodType(sdpa_attention_forward, m)
    try:
        yield
    finally:
        for m in mods:
            del m.forward


class SamBackend:
    """SAM implementation of ``SegmentationBackend``.

    Args:
        loaded: model + provenance from :func:`workers.sam.registry.load_sam`.
        optimized: fused attention, on-device preprocessing (+ bf16 weights on CUDA); ``False`` =
            stock fp32 path.
        compile: wrap the optimized image encoder in ``torch.compile`` (fixed batch shape).
        dtype: ``"fp32"`` or ``"bf16"`` encoder weights; default bf16 on CUDA when optimized,
            else fp32.
        max_batch: images per encoder forward in :meth:`embed` (``LABELHUB_SAM_BATCH_SIZE``).
        decoder: ``"torch"`` (default) or ``"onnx"`` (ONNX Runtime on the CPU for :meth:`predict`).
        onnx_dir: folder caching the exported decoder (default ``$TMPDIR/labelhub-onnx``).
        onnx_threads: ONNX Runtime intra-op threads per click.

    Attributes:
        model_name: ``"sam-<model_type>"``; checkpoint_sha256: from ``loaded``.
        encoder_calls / images_encoded: counters of image-encoder forwards / images.
    """

    crop_layers_supported = True  # automatic(crop_n_layers=..., source=...)

    def __init__(
        self,
        loaded: LoadedSam,
        *,
        optimized: bool = True,
        compile: bool = False,
        dtype: str | None = None,
        max_batch: int = 4,
        decoder: str = "torch",
        onnx_dir: str | os.PathLike[str] | None = None,
        onnx_threads: int = 1,
    ) -> None:
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.model_type = loaded.model_type
        self.model_name = f"sam-{loaded.model_type}"
        self.checkpoint_sha256 = loaded.checkpoint_sha256
        self.optimized = optimized
        self.on_cuda = str(self.device).startswith("cuda")
        if dtype is None:
            dtype = "bf16" if (optimized and self.on_cuda) else "fp32"
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        if dtype == "bf16" and not optimized:
            raise ValueError("the stock path (optimized=False) is fp32 only")
        if decoder not in ("torch", "onnx"):
            raise ValueError(f"decoder must be 'torch' or 'onnx', got {decoder!r}")
        self.dtype = dtype
        self.max_batch = max(1, int(max_batch))
        self.transform = ResizeLongestSide(self.model.image_encoder.img_size)
        self.encoder_calls = 0
        self.images_encoded = 0
        self._lock = threading.Lock()
        self._encoder: Any = self.model.image_encoder
        self.compiled = False
        if optimized:
            # A private copy: its Attention modules are patched for good and it may hold bf16 weights,
            # while the shared stock model stays as segment_anything made it.
            encoder = copy.deepcopy(self.model.image_encoder)
            for m in _attention_modules(encoder):
                m.forward = types.MethodType(sdpa_attention_forward, m)
            if dtype == "bf16":
                encoder.to(torch.bfloat16)
            self._encoder = encoder
            if compile:
                self._encoder = torch.compile(encoder, dynamic=False)
                self.compiled = True
        self._enc_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        img = self.model.image_encoder.img_size
        self._mean = self.model.pixel_mean.to(self.device).view(1, 3, 1, 1)
        self._std = self.model.pixel_std.to(self.device).view(1, 3, 1, 1)
        self._img_size = img
        self.decoder = decoder
        self.onnx_dir = (
            Path(onnx_dir) if onnx_dir else Path(os.environ.get("TMPDIR", "/tmp")) / "labelhub-onnx"
        )
        self.onnx_threads = onnx_threads
        self._onnx: Any = None
        self._onnx_lock = threading.Lock()
        self._last_features: tuple[Any, Any] | None = None

    @classmethod
    def from_checkpoint(
        cls,
        model_type: str,
        checkpoint_path: str | None,
        *,
        device: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> SamBackend:
        """``load_sam(...)`` (SHA-256 verified) then ``SamBackend(loaded, **kwargs)``."""
        return cls(load_sam(model_type, checkpoint_path, device=device, seed=seed), **kwargs)

    # ------------------------------------------------------------------------------------------
    def onnx_decoder_path(self) -> Path:
        """The exported decoder (``.onnx``) of this model and checkpoint, exported on first use."""
        from .onnx_decoder import export_decoder, onnx_decoder_path

        path = onnx_decoder_path(self.onnx_dir, self.model_type, self.checkpoint_sha256)
        if not path.is_file():
            with self._onnx_lock:
                if not path.is_file():
                    export_decoder(self.model, path)
        return path

    def onnx_decoder(self) -> Any:
        """The ONNX Runtime session (:class:`workers.sam.onnx_decoder.OnnxDecoder`), made once."""
        from .onnx_decoder import OnnxDecoder

        if self._onnx is None:
            path = self.onnx_decoder_path()
            with self._onnx_lock:
                if self._onnx is None:
                    self._onnx = OnnxDecoder(path, threads=self.onnx_threads)
        return self._onnx

    def warm_up(self) -> None:
        """Compile before the first task (one padded ``max_batch`` forward) and load the ONNX decoder,
        so no task pays for either. Called when a worker process starts."""
        if self.compiled:
            blank = np.zeros((self._img_size, self._img_size, 3), np.uint8)
            self.encode_batch([blank])
        if self.decoder == "onnx":
            self.onnx_decoder()

    # ------------------------------------------------------------------------------------------
    def _preprocess(self, image: np.ndarray) -> tuple[Any, tuple[int, int]]:
        """Stock path: PIL resize on the host, then normalize and pad. ``(3, S, S)`` + input size."""
        import torch

        resized = self.transform.apply_image(image)
        t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
        t = self.model.preprocess(t[None].float())[0]
        return t, (int(resized.shape[0]), int(resized.shape[1]))

    def _batch_on_device(self, images: list[np.ndarray], size: int) -> Any:
        """Optimized path: ``(size, 3, S, S)`` encoder input made on the device. Each uint8 image is
        copied from pinned memory without blocking, resized there (bilinear, antialiased, rounded to
        uint8 levels like the stock PIL resize), normalized and padded; rows past ``len(images)``
        stay zero (the fixed batch shape of a compiled encoder)."""
        import torch
        import torch.nn.functional as F

        s = self._img_size
        batch = torch.zeros(size, 3, s, s, device=self.device, dtype=torch.float32)
        for i, im in enumerate(images):
            host = torch.from_numpy(np.require(im, requirements=["C", "W"]))
            if self.on_cuda:
                host = host.pin_memory()
            t = host.to(self.device, non_blocking=True).permute(2, 0, 1)[None].float()
            h, w = input_size_for(im.shape[:2], s)
            t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            t = (t.round().clamp(0, 255) - self._mean) / self._std
            batch[i, :, :h, :w] = t[0]
        return batch

    def encode_batch(self, images: list[np.ndarray]) -> Any:
        """Run the image encoder on one batch. Returns fp32 ``(B, 256, 64, 64)`` torch features."""
        import torch

        if self.optimized:
            size = self.max_batch if self.compiled else len(images)
            with torch.inference_mode():
                batch = self._batch_on_device(images, size).to(self._enc_dtype)
        else:
            tensors, _ = zip(*(self._preprocess(im) for im in images), strict=True)
            batch = torch.stack(tensors)
        with self._lock, torch.inference_mode():
            feats = self._encoder(batch)[: len(images)]
            self.encoder_calls += 1
            self.images_encoded += len(images)
        return feats.float()

    def embed(self, images: list[np.ndarray]) -> list[Embedding]:
        """Batched embedding (chunks of ``max_batch``). Input: RGB uint8 ``(H, W, 3)`` arrays."""
        import torch

        images = validate_images(images)
        out: list[Embedding] = []
        for i in range(0, len(images), self.max_batch):
            chunk = images[i : i + self.max_batch]
            # fp16 on the device: half the bytes cross to the host.
            feats = self.encode_batch(chunk).to(torch.float16).cpu().numpy()
            for im, f in zip(chunk, feats, strict=True):
                h, w = im.shape[:2]
                out.append(
                    Embedding(
                        model_name=self.model_name,
                        checkpoint_sha256=self.checkpoint_sha256,
                        original_size=(h, w),
                        input_size=self.transform.get_preprocess_shape(h, w, self.transform.target_length),
                        data=f,
                    )
                )
        return out

    def _features(self, embedding: Embedding) -> Any:
        """``(1, 256, 64, 64)`` fp32 features on the device; the last embedding's stay there, so the
        clicks that follow on the same image upload nothing."""
        import torch

        last = self._last_features
        if last is not None and last[0] is embedding.data:
            return last[1]
        feats = torch.as_tensor(np.asarray(embedding.data, dtype=np.float32), device=self.device)[None]
        self._last_features = (embedding.data, feats)
        return feats

    def _decode(
        self,
        features: Any,
        embedding: Embedding,
        coords: Any,
        labels: Any,
        boxes: Any,
        mask_input: Any,
        multimask: bool,
    ) -> tuple[Any, Any]:
        """Prompt encoder + mask decoder. Returns (low-res logits (B,C,256,256), iou (B,C))."""
        points = (coords, labels) if coords is not None else None
        sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
        low_res, iou = self.model.mask_decoder(
            image_embeddings=features,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        return low_res, iou

    def _upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """Low-res logits (B,C,256,256) -> logits at the original size (B,C,H,W)."""
        return self.model.postprocess_masks(low_res, embedding.input_size, embedding.original_size)

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
        """Mask for one prompt from a cached embedding (prompt encoder + mask decoder only).

        ``multimask_output=None`` -> SAM's recommendation: three candidate masks (best predicted
        IoU returned) for a single click without box/mask_input, one mask otherwise. ``candidate``
        k returns the (k+1)-th best of the three instead (the labeler cycling SAM's candidates).
        """
        import torch

        check_embedding(embedding, self.model_name, self.checkpoint_sha256)
        p = validate_prompt(
            embedding.original_size,
            points=points,
            point_labels=point_labels,
            box=box,
            mask_input=mask_input,
        )
        if multimask_output is None:
            multimask_output = (
                p.points is not None and len(p.points) == 1 and p.box is None and p.mask_input is None
            )
        if self.decoder == "onnx":
            return self._predict_onnx(embedding, p, multimask_output, candidate)
        dev = self.device
        coords = labels = boxes = mi = None
        if p.points is not None:
            tc = self.transform.apply_coords(p.points, embedding.original_size)
            coords = torch.as_tensor(tc, dtype=torch.float, device=dev)[None]
            labels = torch.as_tensor(p.point_labels, dtype=torch.int, device=dev)[None]
        if p.box is not None:
            tb = self.transform.apply_boxes(p.box[None], embedding.original_size)
            boxes = torch.as_tensor(tb, dtype=torch.float, device=dev)
        if p.mask_input is not None:
            mi = torch.as_tensor(p.mask_input, dtype=torch.float, device=dev)[None]
        with torch.inference_mode():
            low_res, iou = self._decode(
                self._features(embedding), embedding, coords, labels, boxes, mi, multimask_output
            )
            scores = iou[0].float().cpu().numpy()
            best = candidate_index(scores, candidate)
            chosen = low_res[:, best : best + 1]
            mask = self._upscale(chosen, embedding)[0, 0] > self.model.mask_threshold
        return PromptResult(
            mask=mask.cpu().numpy(),
            score=float(scores[best]),
            low_res_logits=chosen[0].float().cpu().numpy().reshape(1, LOW_RES, LOW_RES),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            candidates=len(scores),
            candidate=int(candidate),
        )

    def _predict_onnx(
        self, embedding: Embedding, p: Any, multimask: bool, candidate: int = 0
    ) -> PromptResult:
        """:meth:`predict` through ONNX Runtime: the same prompt encoding and token choice as
        ``MaskDecoder.forward`` (token 0 for one mask, the best of tokens 1-3 for multimask)."""
        from .onnx_decoder import prompt_arrays, upscale_logits

        size = embedding.original_size
        coords = None if p.points is None else self.transform.apply_coords(p.points, size)
        box = None if p.box is None else self.transform.apply_boxes(p.box[None], size)
        pc, pl = prompt_arrays(coords, p.point_labels, box)
        low_res, iou = self.onnx_decoder().run(embedding.data, pc, pl, p.mask_input)
        tokens = [1, 2, 3] if multimask else [0]
        best = tokens[candidate_index(iou[tokens], candidate)]
        logits = upscale_logits(low_res[best], embedding.input_size, size)
        return PromptResult(
            mask=logits > self.model.mask_threshold,
            score=float(iou[best]),
            low_res_logits=low_res[best].reshape(1, LOW_RES, LOW_RES),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            candidates=len(tokens),
            candidate=int(candidate),
        )

    def automatic(
        self,
        image: np.ndarray | Embedding,
        *,
        points_per_side: int = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        min_area: int = 0,
        crop_n_layers: int = 0,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        crop_nms_thresh: float = 0.7,
        source: np.ndarray | None = None,
    ) -> list[AutoMask]:
        """ "Segment everything": a ``points_per_side``² grid of single-click prompts per crop.

        The same filtering as ``SamAutomaticMaskGenerator``: predicted-IoU and stability-score
        thresholds and box NMS within each crop; with ``crop_n_layers`` > 0 also its crop layers
        (layer i: (2^i)² overlapping crops, each embedded on its own, with a grid
        ``crop_n_points_downscale_factor^i`` times sparser; masks touching a crop's inner edge are
        dropped, and duplicates between crops go by NMS preferring the smaller crop). Pass an
        :class:`Embedding` to reuse a cached one for the whole image (no encoder call without crop
        layers; crop layers need the pixels too: ``source``). Returns masks sorted by descending
        score; may be empty.
        """
        import torch
        from segment_anything.utils.amg import (
            build_all_layer_point_grids,
            generate_crop_boxes,
            uncrop_boxes_xyxy,
            uncrop_masks,
        )
        from torchvision.ops import box_area, nms

        if isinstance(image, Embedding):
            whole = image
            check_embedding(whole, self.model_name, self.checkpoint_sha256)
            pixels = None if source is None else validate_image(source)
        else:
            pixels = validate_image(image)
            whole = None
        if pixels is None and (crop_n_layers > 0 or whole is None):
            raise ValueError("crop layers embed crops of the image: pass its pixels as source=")
        h, w = whole.original_size if whole is not None else pixels.shape[:2]  # type: ignore[union-attr]
        source_pixels: np.ndarray = pixels  # type: ignore[assignment]  # None only when no crop needs it
        crop_boxes, layers = generate_crop_boxes((h, w), crop_n_layers, crop_overlap_ratio)
        grids = build_all_layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        found: list[tuple] = []  # (masks on the device, scores, boxes xyxy, crop area), image frame
        for crop, layer in zip(crop_boxes, layers, strict=True):
            x0, y0, x1, y1 = crop
            if crop == [0, 0, w, h]:
                emb = whole if whole is not None else self.embed([source_pixels])[0]
            else:
                emb = self.embed([np.ascontiguousarray(source_pixels[y0:y1, x0:x1])])[0]
            masks, scores, boxes = self._automatic_crop(
                emb,
                grids[layer],
                crop=crop,
                image_size=(h, w),
                points_per_batch=points_per_batch,
                pred_iou_thresh=pred_iou_thresh,
                stability_score_thresh=stability_score_thresh,
                stability_score_offset=stability_score_offset,
                box_nms_thresh=box_nms_thresh,
            )
            if len(scores):
                found.append((uncrop_masks(masks, crop, h, w), scores, uncrop_boxes_xyxy(boxes, crop), crop))
        if not found:
            return []
        masks = torch.cat([f[0] for f in found])
        scores = torch.cat([f[1] for f in found])
        boxes = torch.cat([f[2] for f in found])
        if len(crop_boxes) > 1:  # duplicates between crops: keep the one from the smaller crop
            crop_of = torch.cat(
                [torch.tensor([f[3]] * len(f[1]), dtype=torch.float, device=boxes.device) for f in found]
            )
            keep = nms(boxes, 1 / box_area(crop_of), crop_nms_thresh)
            masks, scores, boxes = masks[keep], scores[keep], boxes[keep]
        order = torch.argsort(scores, descending=True)
        masks = masks[order].cpu().numpy()
        scores, boxes = scores[order].cpu(), boxes[order].cpu()
        out: list[AutoMask] = []
        for j in range(len(scores)):
            m = masks[j]
            area = int(m.sum())
            if area == 0 or area < min_area:
                continue
            bx0, by0, bx1, by1 = (int(v) for v in boxes[j].tolist())
            out.append(
                AutoMask(
                    mask=m,
                    score=float(scores[j]),
                    bbox=(bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1),
                    model_name=self.model_name,
                    checkpoint_sha256=self.checkpoint_sha256,
                )
            )
        return out

    def _automatic_crop(
        self,
        emb: Embedding,
        grid: np.ndarray,
        *,
        crop: list[int],
        image_size: tuple[int, int],
        points_per_batch: int,
        pred_iou_thresh: float,
        stability_score_thresh: float,
        stability_score_offset: float,
        box_nms_thresh: float,
    ):
        """Masks, scores and boxes (crop frame, kept on the device) of one crop's point grid, after
        the thresholds, the crop-edge filter and NMS within the crop."""
        import torch
        from segment_anything.utils.amg import (
            batched_mask_to_box,
            calculate_stability_score,
            is_box_near_crop_edge,
        )
        from torchvision.ops import nms

        ch, cw = emb.original_size
        h, w = image_size
        points = grid * np.array([[cw, ch]], dtype=np.float64)
        thr = self.model.mask_threshold
        masks_all, scores_all, boxes_all = [], [], []
        # On the GPU the grid's decoder batches run in bf16 (optimized path); masks, scores and boxes
        # stay on the device until NMS has chosen the few that are copied to the host.
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.bfloat16)
            if self.on_cuda and self.dtype == "bf16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            feats = self._features(emb)
            for i in range(0, len(points), points_per_batch):
                pts = self.transform.apply_coords(points[i : i + points_per_batch], emb.original_size)
                coords = torch.as_tensor(pts, dtype=torch.float, device=self.device)[:, None, :]
                labels = torch.ones(coords.shape[0], 1, dtype=torch.int, device=self.device)
                low_res, iou = self._decode(feats, emb, coords, labels, None, None, True)
                low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
                keep = iou > pred_iou_thresh
                if not keep.any():
                    continue
                logits = self._upscale(low_res[keep][:, None].float(), emb)[:, 0]
                stab = calculate_stability_score(logits, thr, stability_score_offset)
                keep2 = stab >= stability_score_thresh
                if not keep2.any():
                    continue
                masks = logits[keep2] > thr
                boxes = batched_mask_to_box(masks).float()
                inner = ~is_box_near_crop_edge(boxes, crop, [0, 0, w, h])
                if not inner.any():
                    continue
                masks_all.append(masks[inner])
                scores_all.append(iou[keep][keep2][inner].float())
                boxes_all.append(boxes[inner])
        if not masks_all:
            empty = torch.zeros(0, device=self.device)
            return torch.zeros(0, ch, cw, dtype=torch.bool, device=self.device), empty, empty.reshape(0, 4)
        scores = torch.cat(scores_all)
        boxes = torch.cat(boxes_all)
        keep_idx = nms(boxes, scores, box_nms_thresh)
        return torch.cat(masks_all)[keep_idx], scores[keep_idx], boxes[keep_idx]
