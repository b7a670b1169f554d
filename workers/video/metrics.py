"""Video object segmentation measures, per frame: region similarity J (the IoU of the masks) and
contour accuracy F (the F-measure of the boundary pixels matched within a tolerance of 0.008 of the
image diagonal, as the DAVIS benchmark measures it), their mean J&F; also pixel accuracy and Dice.
An empty prediction of an empty truth counts 1 (the object is correctly absent)."""

from __future__ import annotations

import math

import cv2
import numpy as np


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (
        m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    ).astype(bool)


def region_j(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)


def contour_f(pred: np.ndarray, truth: np.ndarray, tolerance: float = 0.008) -> float:
    bp, bt = _boundary(pred), _boundary(truth)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    radius = max(1, math.ceil(tolerance * math.hypot(*pred.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_t = cv2.dilate(bt.astype(np.uint8), disk).astype(bool)
    near_p = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    precision = (bp & near_t).sum() / bp.sum()
    recall = (bt & near_p).sum() / bt.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def frame_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    pred, truth = pred.astype(bool), truth.astype(bool)
    j, f = region_j(pred, truth), contour_f(pred, truth)
    inter, total = np.logical_and(pred, truth).sum(), pred.sum() + truth.sum()
    return {
        "j": j,
        "f": f,
        "jf": (j + f) / 2,
        "iou": j,
        "dice": 1.0 if total == 0 else float(2 * inter / total),
        "pixel_accuracy": float((pred == truth).mean()),
    }


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
