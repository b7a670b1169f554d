"""Segmentation quality metrics on label maps: pixel accuracy, Dice, IoU and Boundary F1.

Pure numpy/OpenCV. Masks are ``(H, W)`` arrays; a binary metric takes bool masks (``pred``,
``truth``), the per-class summary takes integer label maps. Conventions for empty inputs: two
empty masks agree perfectly (Dice = IoU = BF1 = 1); one empty and one not scores 0.

Boundary F1 (Csurka et al., "What is a good evaluation measure for semantic segmentation?",
BMVC 2013; the BF score of MATLAB's ``bfscore``): the boundary of a mask is its pixels with at
least one 4-neighbour outside the mask (the image edge does not count as outside). A predicted
boundary pixel is matched when a true boundary pixel lies within ``tolerance`` pixels (Euclidean
distance between pixel centres, from an exact distance transform); precision is the matched share
of the predicted boundary, recall the matched share of the true boundary, BF1 their harmonic mean. Masks without a boundary (empty, or covering the
whole image) score 1 against each other when both are empty or both full, else 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "boundary",
    "boundary_f1",
    "dice",
    "iou",
    "pixel_accuracy",
    "segmentation_scores",
]


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f"masks must be 2-D and of one shape, got {pred.shape} and {truth.shape}")
    return pred, truth


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels whose label (or bool) equals the truth's."""
    pred, truth = _pair(pred, truth)
    return float(np.count_nonzero(pred == truth) / pred.size) if pred.size else 1.0


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2 |P & T| / (|P| + |T|) of two bool masks."""
    pred, truth = _pair(pred, truth)
    p, t = pred.astype(bool), truth.astype(bool)
    total = np.count_nonzero(p) + np.count_nonzero(t)
    return 1.0 if total == 0 else float(2 * np.count_nonzero(p & t) / total)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P & T| / |P | T| of two bool masks (Jaccard index)."""
    pred, truth = _pair(pred, truth)
    p, t = pred.astype(bool), truth.astype(bool)
    union = np.count_nonzero(p | t)
    return 1.0 if union == 0 else float(np.count_nonzero(p & t) / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Bool mask of the pixels of ``mask`` with a 4-neighbour outside it (inner boundary)."""
    m = np.asarray(mask).astype(bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def _distance_to(points: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels, centre to centre) from every pixel to the nearest True of ``points``."""
    import cv2

    if not points.any():
        return np.full(points.shape, np.inf, dtype=np.float32)
    # distanceTransform measures the distance to the nearest zero pixel; DIST_MASK_PRECISE is exact.
    return cv2.distanceTransform((~points).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_f1(pred: np.ndarray, truth: np.ndarray, *, tolerance: float = 2.0) -> float:
    """Boundary F1 of two bool masks with a match tolerance in pixels (see the module docstring)."""
    pred, truth = _pair(pred, truth)
    bp, bt = boundary(pred), boundary(truth)
    n_p, n_t = int(np.count_nonzero(bp)), int(np.count_nonzero(bt))
    if n_p == 0 and n_t == 0:  # each mask empty or full: they agree when both are the same
        return 1.0 if bool(pred.any()) == bool(truth.any()) else 0.0
    if n_p == 0 or n_t == 0:
        return 0.0
    precision = np.count_nonzero(_distance_to(bt)[bp] <= tolerance) / n_p
    recall = np.count_nonzero(_distance_to(bp)[bt] <= tolerance) / n_t
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def segmentation_scores(
    pred: np.ndarray, truth: np.ndarray, *, classes: list[int], tolerance: float = 2.0
) -> dict:
    """Pixel accuracy of two label maps, and Dice, IoU and BF1 for each class value in ``classes``
    present in either map: ``{"pixel_accuracy", "dice", "iou", "boundary_f1", "per_class": {c: {...}},
    "classes_present": n}``. A class absent from both maps is left out of ``per_class`` and of the means
    (it would score a vacuous 1.0: an image whose every pre-label was deleted would read as near perfect);
    the means are over the classes present, None when no class is present on either side."""
    pred, truth = _pair(pred, truth)
    per_class = {}
    present_pred, present_truth = set(np.unique(pred).tolist()), set(np.unique(truth).tolist())
    for c in classes:
        if c not in present_pred and c not in present_truth:
            continue
        p, t = pred == c, truth == c
        per_class[int(c)] = {
            "dice": dice(p, t),
            "iou": iou(p, t),
            "boundary_f1": boundary_f1(p, t, tolerance=tolerance),
        }
    out: dict[str, Any] = {"pixel_accuracy": pixel_accuracy(pred, truth)}
    for key in ("dice", "iou", "boundary_f1"):
        out[key] = float(np.mean([v[key] for v in per_class.values()])) if per_class else None
    out["per_class"] = per_class
    out["classes_present"] = len(per_class)
    return out


def mean_scores(rows: list[dict]) -> dict:
    """Means of the top-level figures of several :func:`segmentation_scores` results: pixel accuracy
    over all rows, Dice, IoU and BF1 per class over the rows where the class is present, then the mean
    of those per-class means (the classes present anywhere). Figures with nothing to average are None."""
    if not rows:
        return {}
    out: dict = {"pixel_accuracy": float(np.mean([r["pixel_accuracy"] for r in rows]))}
    per_class: dict[int, dict[str, list[float]]] = {}
    for r in rows:
        for c, v in (r.get("per_class") or {}).items():
            slot = per_class.setdefault(int(c), {"dice": [], "iou": [], "boundary_f1": []})
            for k in slot:
                slot[k].append(v[k])
    for k in ("dice", "iou", "boundary_f1"):
        means = [float(np.mean(v[k])) for v in per_class.values()]
        out[k] = float(np.mean(means)) if means else None
    return out
