"""Interactive-segmentation accuracy (NoC@85, NoC@90, IoU@1) on the GrabCut set.

Standard click protocol (:mod:`workers.sam.clicks`; RITM / SimpleClick / SAM papers): the first click is the interior point
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
import json
import os
import time
from pathlib import Path

import numpy as np
from _sam_common import grabcut_pairs, load_rgb, machine

from workers.sam import get_backend
from workers.sam.clicks import noc, run_clicks


def run_image(
    backend,
    image: np.ndarray,
    gt_raw: np.ndarray,
    max_clicks: int,
    click_s: list[float] | None = None,
    click_cpu_s: list[float] | None = None,
    prev_mask: bool = True,
    labels_out: list[int] | None = None,
) -> list[float]:
    """IoU after each click by :func:`workers.sam.clicks.run_clicks` (stops early at IoU >= 0.99);
    ``click_s`` / ``click_cpu_s`` / ``labels_out`` (optional) collect each click's wall and process
    CPU time of ``predict`` and its label (1 positive, 0 negative). Pixels valued 128 are ignored."""
    emb = backend.embed([image])[0]
    run = run_clicks(
        backend, emb, gt_raw == 255, valid=gt_raw != 128, max_clicks=max_clicks, prev_mask=prev_mask
    )
    if click_s is not None:
        click_s.extend(run.wall_s)
    if click_cpu_s is not None:
        click_cpu_s.extend(run.cpu_s)
    if labels_out is not None:
        labels_out.extend(c[2] for c in run.clicks)
    return run.ious


def summarize(records: list[dict], max_clicks: int) -> None:
    """Print NoC@85/90, mIoU@1, failures and per-click time over per-image ``records``."""
    n85 = [noc(r["ious"], 0.85, max_clicks) for r in records]
    n90 = [noc(r["ious"], 0.90, max_clicks) for r in records]
    iou1 = [r["ious"][0] if r["ious"] else 0.0 for r in records]
    print(f"images: {len(records)}  max clicks: {max_clicks}")
    print(f"NoC@85: {np.mean(n85):.2f}  NoC@90: {np.mean(n90):.2f}  mIoU@1: {np.mean(iou1):.3f}")
    for thr in (0.85, 0.90):
        fails = [r["stem"] for r in records if not any(v >= thr for v in r["ious"])]
        print(f"never reaching {thr:.0%} within {max_clicks} clicks: {len(fails)} {fails}")
    drops = [
        (r["ious"][i - 1] - r["ious"][i], r["stem"], i + 1)
        for r in records
        for i in range(1, len(r["ious"]))
        if r.get("labels") and r["labels"][i] == 1
    ]
    if drops:
        worst = max(drops)
        print(
            f"positive follow-up clicks: {len(drops)}; lowering IoU by more than 0.05: "
            f"{sum(d > 0.05 for d, _, _ in drops)}; worst drop {worst[0]:+.3f} ({worst[1]}, click {worst[2]})"
        )
    wall = np.concatenate([r["click_wall_s"] for r in records]) * 1000
    cpu = np.concatenate([r["click_cpu_s"] for r in records]) * 1000
    print(
        f"predict per click over {len(wall)} clicks: wall median {np.median(wall):.0f} ms "
        f"(p90 {np.percentile(wall, 90):.0f}, mean {wall.mean():.0f}); process CPU time median "
        f"{np.median(cpu):.0f} ms (p90 {np.percentile(cpu, 90):.0f}, mean {cpu.mean():.0f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="official SAM .pth (omit: classical backend)")
    ap.add_argument("--model", default="vit_h", help="vit_h | vit_l | vit_b (with --checkpoint)")
    ap.add_argument("--max-clicks", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--no-prev-mask", action="store_true", help="do not feed previous logits back")
    ap.add_argument(
        "--work-size", type=int, default=None, help="classical: GrabCut working long side (0 = full res)"
    )
    ap.add_argument(
        "--no-click-guard",
        action="store_true",
        help="classical: without the follow-up click rules (to measure what they change)",
    )
    ap.add_argument(
        "--click-reach",
        type=float,
        default=None,
        help="classical: reach of a positive click in multiples of its distance to the previous mask (0 = unlimited)",
    )
    ap.add_argument(
        "--click-area",
        type=float,
        default=None,
        help="classical: most a positive click adds, in disks of radius its distance to the previous mask (0 = unlimited)",
    )
    ap.add_argument("--shard", default="0/1", help="K/N: run images K, K+N, K+2N, ... only")
    ap.add_argument("--json", default="", help="write per-image records to this file")
    ap.add_argument("--merge", nargs="+", default=None, help="summarize --json files of all shards")
    args = ap.parse_args()
    if args.merge:
        records = [r for f in args.merge for r in json.loads(Path(f).read_text())]
        records.sort(key=lambda r: r["stem"])
        summarize(records, args.max_clicks)
        return
    pairs = grabcut_pairs()
    if not pairs:
        raise SystemExit("GrabCut data not found (set LABELHUB_SHARED_DATA or create ../shared/data)")
    if args.limit:
        pairs = pairs[: args.limit]
    k, n = (int(v) for v in args.shard.split("/"))
    pairs = pairs[k::n]
    if args.checkpoint:
        backend = get_backend(args.model, args.checkpoint)
    else:
        from workers.sam import ClassicalBackend

        kw = {"guard_clicks": not args.no_click_guard}
        if args.work_size is not None:
            kw["work_size"] = args.work_size
        if args.click_reach is not None:
            kw["click_reach"] = args.click_reach
        if args.click_area is not None:
            kw["click_area"] = args.click_area
        backend = ClassicalBackend(**kw)
    print(f"machine: {machine()}")
    extra = (
        f", GrabCut work size {backend.work_size}, click rules {'on' if backend.guard_clicks else 'off'}"
        f", click reach {backend.click_reach}, click area {backend.click_area}"
        if hasattr(backend, "work_size")
        else ""
    )
    print(f"backend: {backend.model_name} checkpoint sha256 {backend.checkpoint_sha256}{extra}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    import cv2

    records = []
    t0 = time.perf_counter()
    for stem, ip, mp in pairs:
        image = load_rgb(ip)
        gt = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        wall: list[float] = []
        cpu: list[float] = []
        labels: list[int] = []
        ious = run_image(backend, image, gt, args.max_clicks, wall, cpu, not args.no_prev_mask, labels)
        records.append(
            {"stem": stem, "ious": ious, "labels": labels, "click_wall_s": wall, "click_cpu_s": cpu}
        )
        print(
            f"{stem:>12} IoU@1 {ious[0]:.3f} NoC85 {noc(ious, 0.85, args.max_clicks):2d} "
            f"NoC90 {noc(ious, 0.90, args.max_clicks):2d} clicks {len(ious)} "
            f"median click {1000 * np.median(wall):.0f} ms wall / {1000 * np.median(cpu):.0f} ms CPU",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(records))
    summarize(records, args.max_clicks)
    print(
        f"wall {time.perf_counter() - t0:.0f} s; load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
