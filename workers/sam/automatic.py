"""SAM's "segment everything" (automatic masks): a grid of single-click prompts per crop, filtered as
``SamAutomaticMaskGenerator`` does, decoded by a predictor (:class:`workers.sam.predictor.SamBackend`).

``torch`` / ``segment_anything`` / ``torchvision`` are imported lazily (inside functions).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import numpy as np

from .interface import AutoMask, Embedding, check_embedding, validate_image

__all__ = ["Predictor", "automatic_masks"]


class Predictor(Protocol):
    """What the everything mode uses of a predictor (:class:`workers.sam.predictor.SamBackend`)."""

    model: Any
    model_name: str
    checkpoint_sha256: str
    device: Any
    dtype: str
    on_cuda: bool
    transform: Any

    def embed(self, images: list[np.ndarray]) -> list[Embedding]: ...

    def features(self, embedding: Embedding) -> Any: ...

    def decode(
        self,
        features: Any,
        embedding: Embedding,
        coords: Any,
        labels: Any,
        boxes: Any,
        mask_input: Any,
        multimask: bool,
    ) -> tuple[Any, Any]: ...

    def upscale(self, low_res: Any, embedding: Embedding) -> Any: ...


def automatic_masks(
    backend: Predictor,
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
        check_embedding(whole, backend.model_name, backend.checkpoint_sha256)
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
            emb = whole if whole is not None else backend.embed([source_pixels])[0]
        else:
            emb = backend.embed([np.ascontiguousarray(source_pixels[y0:y1, x0:x1])])[0]
        masks, scores, boxes = _automatic_crop(
            backend,
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
                model_name=backend.model_name,
                checkpoint_sha256=backend.checkpoint_sha256,
            )
        )
    return out


def _automatic_crop(
    backend: Predictor,
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
    thr = backend.model.mask_threshold
    masks_all, scores_all, boxes_all = [], [], []
    # On the GPU the grid's decoder batches run in bf16 (optimized path); masks, scores and boxes
    # stay on the device until NMS has chosen the few that are copied to the host.
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if backend.on_cuda and backend.dtype == "bf16"
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        feats = backend.features(emb)
        for i in range(0, len(points), points_per_batch):
            pts = backend.transform.apply_coords(points[i : i + points_per_batch], emb.original_size)
            coords = torch.as_tensor(pts, dtype=torch.float, device=backend.device)[:, None, :]
            labels = torch.ones(coords.shape[0], 1, dtype=torch.int, device=backend.device)
            low_res, iou = backend.decode(feats, emb, coords, labels, None, None, True)
            low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
            keep = iou > pred_iou_thresh
            if not keep.any():
                continue
            logits = backend.upscale(low_res[keep][:, None].float(), emb)[:, 0]
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
        empty = torch.zeros(0, device=backend.device)
        return torch.zeros(0, ch, cw, dtype=torch.bool, device=backend.device), empty, empty.reshape(0, 4)
    scores = torch.cat(scores_all)
    boxes = torch.cat(boxes_all)
    keep_idx = nms(boxes, scores, box_nms_thresh)
    return torch.cat(masks_all)[keep_idx], scores[keep_idx], boxes[keep_idx]
