"""Segment Anything backend: batched image encoder, cached-embedding prompt decoder, automatic masks.

``torch`` / ``segment_anything`` are imported lazily (inside functions) so importing
``workers.sam`` does not pull them into the API process.

Paths
-----
* ``optimized=False`` ("stock"): the unmodified ``segment_anything`` fp32 code path (manual
  attention matmul), kept for comparisons.
* ``optimized=True``: every ``segment_anything.modeling.image_encoder.Attention`` runs through
  ``torch.nn.functional.scaled_dot_product_attention`` with the decomposed relative-position bias
  passed as an additive ``attn_mask`` (as segment-anything-fast does); on CUDA the encoder runs
  under bf16 autocast (``dtype="bf16"``), on CPU fp32 by default (``dtype="bf16"`` optional).
  ``compile=True`` additionally wraps the image encoder in ``torch.compile``.

The SDPA forward is bound to the Attention *instances* only for the duration of an encoder call
(:func:`sdpa_attention`), so a stock and an optimized backend may share one model object (the
agreement tests/benchmarks do exactly that to guarantee identical weights). With
``compile=True`` the patch is applied permanently to that model.

Embeddings hold the encoder output as fp16 ``(256, 64, 64)`` (2 MiB) plus original/input sizes;
``predict`` only runs the prompt encoder and mask decoder (fp32) on them. ``encoder_calls`` and
``images_encoded`` count image-encoder invocations (tests assert ``predict`` never adds to them).
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from .backend import (
    LOW_RES,
    AutoMask,
    Embedding,
    PromptResult,
    check_embedding,
    validate_image,
    validate_images,
    validate_prompt,
)
from .registry import LoadedSam, load_sam

__all__ = ["SamBackend", "sdpa_attention", "sdpa_attention_forward"]


def sdpa_attention_forward(self: Any, x: Any) -> Any:
    """Drop-in replacement for ``image_encoder.Attention.forward`` using fused SDPA.

    Args:
        x: ``(B, H, W, C)`` tokens.
    Returns:
        ``(B, H, W, C)``; equal to the stock forward up to floating-point rounding.
    """
    import torch
    import torch.nn.functional as F
    from segment_anything.modeling.image_encoder import get_rel_pos

    B, H, W, _ = x.shape
    n = self.num_heads
    qkv = self.qkv(x).reshape(B, H * W, 3, n, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, n, L, c)
    bias = None
    if self.use_rel_pos:
        c = q.shape[-1]
        rh = get_rel_pos(H, H, self.rel_pos_h).to(q.dtype)
        rw = get_rel_pos(W, W, self.rel_pos_w).to(q.dtype)
        r_q = q.reshape(B * n, H, W, c)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(B, n, H * W, H * W)
        bias = bias.to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = out.view(B, n, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
    return self.proj(out)


def _attention_modules(model: Any) -> list[Any]:
    from segment_anything.modeling.image_encoder import Attention

    return [m for m in model.image_encoder.modules() if isinstance(m, Attention)]


@contextlib.contextmanager
def sdpa_attention(model: Any, enabled: bool = True) -> Iterator[None]:
    """Temporarily bind :func:`sdpa_attention_forward` to the encoder's Attention instances."""
    if not enabled:
        yield
        return
    mods = [m for m in _attention_modules(model) if "forward" not in m.__dict__]
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
        optimized: SDPA attention (+ bf16 autocast on CUDA); ``False`` = stock fp32 path.
        compile: wrap the image encoder in ``torch.compile`` (optimized path only).
        dtype: ``"fp32"`` or ``"bf16"`` encoder precision; default bf16 on CUDA when optimized,
            else fp32.
        max_batch: images per encoder forward in :meth:`embed` (memory bound: ~1 GiB of attention
            bias per image in vit_h global layers at fp32).

    Attributes:
        model_name: ``"sam-<model_type>"``; checkpoint_sha256: from ``loaded``.
        encoder_calls / images_encoded: counters of image-encoder forwards / images.
    """

    def __init__(
        self,
        loaded: LoadedSam,
        *,
        optimized: bool = True,
        compile: bool = False,
        dtype: str | None = None,
        max_batch: int = 4,
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
        on_cuda = str(self.device).startswith("cuda")
        if dtype is None:
            dtype = "bf16" if (optimized and on_cuda) else "fp32"
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        if dtype == "bf16" and not optimized:
            raise ValueError("the stock path (optimized=False) is fp32 only")
        self.dtype = dtype
        self.max_batch = max(1, int(max_batch))
        self.transform = ResizeLongestSide(self.model.image_encoder.img_size)
        self.encoder_calls = 0
        self.images_encoded = 0
        self._lock = threading.Lock()
        self._encoder: Any = self.model.image_encoder
        self.compiled = False
        if compile and optimized:
            for m in _attention_modules(self.model):
                m.forward = types.MethodType(sdpa_attention_forward, m)
            self._encoder = torch.compile(self.model.image_encoder, dynamic=False)
            self.compiled = True

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
    def _preprocess(self, image: np.ndarray) -> tuple[Any, tuple[int, int]]:
        """RGB uint8 HxWx3 -> normalized, padded (3, 1024, 1024) float tensor + input size."""
        import torch

        resized = self.transform.apply_image(image)
        t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
        t = self.model.preprocess(t[None].float())[0]
        return t, (int(resized.shape[0]), int(resized.shape[1]))

    def encode_batch(self, images: list[np.ndarray]) -> Any:
        """Run the image encoder on one batch. Returns fp32 ``(B, 256, 64, 64)`` torch features."""
        import torch

        tensors, _ = zip(*(self._preprocess(im) for im in images), strict=True)
        batch = torch.stack(tensors)
        use_sdpa = self.optimized and not self.compiled
        autocast = (
            torch.autocast(device_type=str(self.device).split(":")[0], dtype=torch.bfloat16)
            if self.dtype == "bf16"
            else contextlib.nullcontext()
        )
        with self._lock, torch.inference_mode(), sdpa_attention(self.model, use_sdpa), autocast:
            feats = self._encoder(batch)
            self.encoder_calls += 1
            self.images_encoded += len(images)
        return feats.float()

    def embed(self, images: list[np.ndarray]) -> list[Embedding]:
        """Batched embedding (chunks of ``max_batch``). Input: RGB uint8 ``(H, W, 3)`` arrays."""
        images = validate_images(images)
        out: list[Embedding] = []
        for i in range(0, len(images), self.max_batch):
            chunk = images[i : i + self.max_batch]
            feats = self.encode_batch(chunk).to("cpu").numpy().astype(np.float16)
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
        import torch

        return torch.as_tensor(np.asarray(embedding.data, dtype=np.float32), device=self.device)[None]

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
    ) -> PromptResult:
        """Mask for one prompt from a cached embedding (prompt encoder + mask decoder only).

        ``multimask_output=None`` -> SAM's recommendation: three candidate masks (best predicted
        IoU returned) for a single click without box/mask_input, one mask otherwise.
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
            best = int(torch.argmax(iou[0]))
            chosen = low_res[:, best : best + 1]
            mask = self._upscale(chosen, embedding)[0, 0] > self.model.mask_threshold
        return PromptResult(
            mask=mask.cpu().numpy(),
            score=float(iou[0, best]),
            low_res_logits=chosen[0].float().cpu().numpy().reshape(1, LOW_RES, LOW_RES),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
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
    ) -> list[AutoMask]:
        """ "Segment everything": a ``points_per_side``² grid of single-click prompts on ONE embedding.

        Same filtering as ``SamAutomaticMaskGenerator`` (single crop layer): predicted-IoU and
        stability-score thresholds, then box NMS. Pass an :class:`Embedding` to reuse a cached one
        (no encoder call). Returns masks sorted by descending score; may be empty.
        """
        import torch
        from segment_anything.utils.amg import (
            batched_mask_to_box,
            build_point_grid,
            calculate_stability_score,
        )
        from torchvision.ops import nms

        if isinstance(image, Embedding):
            emb = image
            check_embedding(emb, self.model_name, self.checkpoint_sha256)
        else:
            emb = self.embed([validate_image(image)])[0]
        h, w = emb.original_size
        grid = build_point_grid(points_per_side) * np.array([[w, h]], dtype=np.float64)
        thr = self.model.mask_threshold
        masks_all, scores_all, boxes_all = [], [], []
        with torch.inference_mode():
            feats = self._features(emb)
            for i in range(0, len(grid), points_per_batch):
                pts = self.transform.apply_coords(grid[i : i + points_per_batch], emb.original_size)
                coords = torch.as_tensor(pts, dtype=torch.float, device=self.device)[:, None, :]
                labels = torch.ones(coords.shape[0], 1, dtype=torch.int, device=self.device)
                low_res, iou = self._decode(feats, emb, coords, labels, None, None, True)
                low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
                keep = iou > pred_iou_thresh
                if not keep.any():
                    continue
                logits = self._upscale(low_res[keep][:, None], emb)[:, 0]
                stab = calculate_stability_score(logits, thr, stability_score_offset)
                keep2 = stab >= stability_score_thresh
                if not keep2.any():
                    continue
                masks = logits[keep2] > thr
                masks_all.append(masks.cpu())
                scores_all.append(iou[keep][keep2].float().cpu())
                boxes_all.append(batched_mask_to_box(masks).float().cpu())
        if not masks_all:
            return []
        masks = torch.cat(masks_all)
        scores = torch.cat(scores_all)
        boxes = torch.cat(boxes_all)
        keep_idx = nms(boxes, scores, box_nms_thresh)
        out: list[AutoMask] = []
        for j in keep_idx.tolist():
            m = masks[j].numpy()
            area = int(m.sum())
            if area == 0 or area < min_area:
                continue
            x0, y0, x1, y1 = (int(v) for v in boxes[j].tolist())
            out.append(
                AutoMask(
                    mask=m,
                    score=float(scores[j]),
                    bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                    model_name=self.model_name,
                    checkpoint_sha256=self.checkpoint_sha256,
                )
            )
        return out
