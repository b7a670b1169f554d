"""The standard click protocol of interactive segmentation (RITM / SimpleClick / SAM papers), pure.

The first click is the interior point of the object farthest from its boundary; every next click is
put at the interior point of the current error region (false negatives or false positives, whichever
region's interior point is farther from its boundary) farthest from that region's boundary
(``cv2.distanceTransform`` on the error mask padded by one pixel, so the image border counts as
boundary); positive for a missed object pixel (FN), negative for a false positive. Pixels outside
``valid`` are ignored for IoU and never clicked. Up to ``max_clicks`` clicks; NoC@t is the number of
clicks that first reach IoU >= t, ``max_clicks`` if never. Used by benchmarks/sam_interactive.py and
by the evaluation job of labelhub.learning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


def iou(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> float:
    """IoU over ``valid`` pixels; 1.0 when both are empty."""
    inter = np.logical_and(pred, gt)[valid].sum()
    union = np.logical_or(pred, gt)[valid].sum()
    return float(inter / union) if union else 1.0


def _farthest_interior(region: np.ndarray) -> tuple[float, int, int]:
    """(distance, y, x) of the point of ``region`` farthest from its boundary."""
    import cv2

    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(dist[y, x]), int(y), int(x)


def next_click(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> tuple[float, float, int] | None:
    """Next click (x, y, label) by the standard protocol, or None when there is no error."""
    fn = gt & ~pred & valid
    fp = ~gt & pred & valid
    dfn, yn, xn = _farthest_interior(fn)
    dfp, yp, xp = _farthest_interior(fp)
    if max(dfn, dfp) <= 0:
        return None
    if dfn >= dfp:
        return xn + 0.5, yn + 0.5, 1
    return xp + 0.5, yp + 0.5, 0


def noc(ious: list[float], thr: float, max_clicks: int) -> int:
    """Clicks needed to reach IoU >= thr (max_clicks if never)."""
    for i, v in enumerate(ious):
        if v >= thr:
            return i + 1
    return max_clicks


@dataclass
class ClickRun:
    """One object under the protocol: the clicks ``(x, y, label)``, the IoU after each, and the
    wall / process-CPU seconds of each ``predict``."""

    clicks: list[tuple[float, float, int]] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    def noc(self, thr: float, max_clicks: int) -> int:
        return noc(self.ious, thr, max_clicks)


def run_clicks(
    backend,
    embedding,
    gt: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    max_clicks: int = 20,
    prev_mask: bool = True,
    stop_iou: float = 0.99,
) -> ClickRun:
    """Simulate the protocol on one object (``gt``: (H, W) bool) with ``backend.predict`` on a cached
    ``embedding``; the previous low-res logits are fed back as ``mask_input`` unless ``prev_mask`` is
    False. Stops early when there is no error left or IoU reaches ``stop_iou``."""
    gt = np.asarray(gt, dtype=bool)
    valid = np.ones_like(gt) if valid is None else np.asarray(valid, dtype=bool)
    pred = np.zeros_like(gt)
    pts: list[tuple[float, float]] = []
    labels: list[int] = []
    logits = None
    run = ClickRun()
    for _ in range(max_clicks):
        click = next_click(pred, gt, valid)
        if click is None:
            break
        pts.append(click[:2])
        labels.append(click[2])
        t, c = time.perf_counter(), time.process_time()
        res = backend.predict(
            embedding, points=np.array(pts), point_labels=np.array(labels), mask_input=logits
        )
        run.wall_s.append(time.perf_counter() - t)
        run.cpu_s.append(time.process_time() - c)
        pred, logits = np.asarray(res.mask, dtype=bool), (res.low_res_logits if prev_mask else None)
        run.clicks.append((float(click[0]), float(click[1]), int(click[2])))
        run.ious.append(iou(pred, gt, valid))
        if run.ious[-1] >= stop_iou:
            break
    return run
