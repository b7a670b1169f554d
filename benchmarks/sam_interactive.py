"""Interactive-segmentation accuracy (NoC@85, NoC@90, IoU@1) on the GrabCut set.

Standard click protocol (RITM / SimpleClick / SAM papers): the first click is the interior point
of the object farthest from its boundary; every next click is put at the interior point of the
current error region (false negatives or false positives, whichever region's interior point is
farther from its boundary) farthest from that region's boundary (``cv2.distanceTransform`` on the
error mask padded by one pixel, so the image border counts as boundary); positive for a missed
object pixel (FN), negative for a false positive. Ground-truth pixels valued 128 are ignored for
IoU and never chosen as clicks. Up to ``--max-clicks`` (20) clicks; an image that never reaches the
target counts as ``max_clicks``. For SAM the previous low-res logits are passed as ``mask_input``.

Backend: ``--checkpoint PATH --model vit_h`` (SHA-256 verified) or, without a checkpoint, the
classical GrabCut backend. Random SAM weights are refused: their "accuracy" means nothing.

Usage: ``python benchmarks/sam_interactive.py [--checkpoint P --model vit_b] [--limit N]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _sam_common import grabcut_pairs, load_rgb, machine

from workers.sam import get_backend


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


def run_image(backend, image: np.ndarray, gt_raw: np.ndarray, max_clicks: int) -> list[float]:
    """IoU after each click (list of length <= max_clicks; stops early at IoU >= 0.99)."""
    gt = gt_raw == 255
    valid = gt_raw != 128
    emb = backend.embed([image])[0]
    pred = np.zeros_like(gt)
    pts: list[tuple[float, float]] = []
    labels: list[int] = []
    logits = None
    ious: list[float] = []
    for _ in range(max_clicks):
        click = next_click(pred, gt, valid)
        if click is None:
            break
        pts.append(click[:2])
        labels.append(click[2])
        res = backend.predict(emb, points=np.array(pts), point_labels=np.array(labels), mask_input=logits)
        pred, logits = res.mask, res.low_res_logits
        ious.append(iou(pred, gt, valid))
        if ious[-1] >= 0.99:
            break
    return ious


def noc(ious: list[float], thr: float, max_clicks: int) -> int:
    """Clicks needed to reach IoU >= thr (max_clicks if never)."""
    for i, v in enumerate(ious):
        if v >= thr:
            return i + 1
    return max_clicks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="official SAM .pth (omit: classical backend)")
    ap.add_argument("--model", default="vit_h", help="vit_h | vit_l | vit_b (with --checkpoint)")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--no-prev-mask", action="store_true", help="do not feed previous logits back")
    args = ap.parse_args()
    pairs = grabcut_pairs()
    if not pairs:
        raise SystemExit("GrabCut data not found (set LABELHUB_SHARED_DATA or create ../shared/data)")
    if args.limit:
        pairs = pairs[: args.limit]
    backend = get_backend(args.model if args.checkpoint else None, args.checkpoint)
    print(f"machine: {machine()}")
    print(f"backend: {backend.model_name} checkpoint sha256 {backend.checkpoint_sha256}")
    import cv2

    n85, n90, iou1, t_pred, n_pred = [], [], [], 0.0, 0
    t0 = time.perf_counter()
    for stem, ip, mp in pairs:
        image = load_rgb(ip)
        gt = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        ts = time.perf_counter()
        ious = run_image(backend, image, gt, args.max_clicks)
        t_pred += time.perf_counter() - ts
        n_pred += len(ious)
        n85.append(noc(ious, 0.85, args.max_clicks))
        n90.append(noc(ious, 0.90, args.max_clicks))
        iou1.append(ious[0] if ious else 0.0)
        print(f"{stem:>12} IoU@1 {iou1[-1]:.3f} NoC85 {n85[-1]:2d} NoC90 {n90[-1]:2d}", flush=True)
    n = len(pairs)
    print(f"images: {n}  max clicks: {args.max_clicks}")
    print(f"NoC@85: {np.mean(n85):.2f}  NoC@90: {np.mean(n90):.2f}  mIoU@1: {np.mean(iou1):.3f}")
    print(
        f"images failing to reach 90% within {args.max_clicks} clicks: {sum(v >= args.max_clicks for v in n90)}"
    )
    print(
        f"predictions: {n_pred}, mean {1000 * t_pred / max(1, n_pred):.0f} ms per click incl. embed; "
        f"wall {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
