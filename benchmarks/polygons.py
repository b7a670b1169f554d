"""Benchmark for issue 5: masks to polygons with simplification at a fixed accuracy.

Usage (from the repo root)::

    .venv/bin/python benchmarks/polygons.py [--min-iou 0.98] [--limit N] [--throughput [--max-distance D]]
    .venv/bin/python benchmarks/polygons.py --per-part [--max-distance 2] [--speed-only] [--repeat 3]

``--throughput`` only measures the per-step throughput of our pipeline (input corner vertices,
and cv2 ``CHAIN_APPROX_NONE`` contour points, per CPU second of this process,
``time.process_time``, one core, best of 3 after a warm-up run that also compiles the numba
kernels): tracing, one Douglas-Peucker pass, the bounded search from polygon dicts
(``simplify_polygons``: parsing and input validation included), and
``mask_to_simplified_polygons`` end to end.

Data: ``<repo>/../shared/data`` (override with ``LABELHUB_SHARED_DATA``); never copied here.

* GrabCut masks (``grabcut/masks/*.bmp``): object = value 255. The 128 "unlabeled band" is
  treated as background, i.e. the polygon outlines the certain object only.
* ISBI 2012 labels (``isbi-membrane/label/*.png``): object = cell interior (value >= 128); the
  whole mask of an image is one multi-part region (hundreds of parts, many holes).

For every mask and method the tolerance is tuned by bisection to the largest value whose
result still has IoU >= ``--min-iou`` against the source mask (our ``bounded`` mode does this
itself, choosing the method too). OpenCV ``approxPolyDP`` runs on ``cv2.findContours`` output
(pixel-centre contours, ``RETR_CCOMP``) and is scored with ``cv2.fillPoly`` (its own raster
convention); shapely ``simplify(preserve_topology=True)`` runs on our exact corner polygons.
Reported: total vertices kept, mean/min IoU, mean/max Hausdorff distance (px) to the exact
pixel-corner outline, share of valid polygons, and time per mask (one simplification at the
tuned tolerance; for ``bounded`` the whole search). Runs on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workers.geometry import (  # noqa: E402
    mask_to_polygons,
    mask_to_simplified_polygons,
    polygons_to_mask,
    simplify_polygons,
)
from workers.geometry.pipeline import warm_up  # noqa: E402

cv2.setNumThreads(1)


def data_root() -> Path:
    env = os.environ.get("LABELHUB_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_sets(root: Path, limit: int | None) -> dict[str, list[np.ndarray]]:
    sets: dict[str, list[np.ndarray]] = {}
    grab = sorted((root / "grabcut" / "masks").glob("*.bmp"))[:limit]
    if grab:
        sets["grabcut"] = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) == 255 for p in grab]
    isbi = sorted((root / "isbi-membrane" / "label").glob("*.png"), key=lambda p: int(p.stem))
    if isbi:
        sets["isbi"] = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) >= 128 for p in isbi[:limit]]
    return sets


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def n_vertices(polys: list[dict]) -> int:
    return sum(len(p["exterior"]) + sum(len(h) for h in p["holes"]) for p in polys)


def to_geoms(polys: list[dict]) -> list[shapely.Polygon]:
    return [shapely.Polygon(p["exterior"], p["holes"]) for p in polys]


def boundary_segments(geoms: list) -> np.ndarray:
    lines = []
    for g in geoms:
        for ring in [g.exterior, *g.interiors] if isinstance(g, shapely.Polygon) else [g]:
            c = np.asarray(ring.coords)
            if len(c) >= 2:
                lines.append(np.stack([c[:-1], c[1:]], axis=1))
    return np.concatenate(lines) if lines else np.zeros((0, 2, 2))


def hausdorff(a: list, b: list, step: float = 0.5) -> float:
    """Symmetric Hausdorff distance between outlines (densified to ``step`` px)."""
    sa, sb = boundary_segments(a), boundary_segments(b)
    if not len(sa) or not len(sb):
        return float("nan")

    def directed(src: np.ndarray, dst: np.ndarray) -> float:
        lines = shapely.linestrings(dst)
        tree = shapely.STRtree(lines)
        pts = shapely.get_coordinates(shapely.segmentize(shapely.linestrings(src), step))
        _, dist = tree.query_nearest(shapely.points(pts), return_distance=True, all_matches=False)
        return float(dist.max())

    return max(directed(sa, sb), directed(sb, sa))


def tune(run: Callable[[float], tuple[float, object]], lo: float, hi: float, target: float, iters: int = 14):
    """Largest parameter in [lo, hi] whose IoU >= target (bisection, assumes monotone)."""
    best_p, best = lo, run(lo)
    if best[0] < target:
        return best_p, best
    top = run(hi)
    if top[0] >= target:
        return hi, top
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        res = run(mid)
        if res[0] >= target:
            lo, best_p, best = mid, mid, res
        else:
            hi = mid
    return best_p, best


# --- OpenCV baseline --------------------------------------------------------------------------


def cv_contours(m: np.ndarray):
    contours, hier = cv2.findContours(m.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return contours, (hier[0] if hier is not None else np.zeros((0, 4), int))


def cv_simplify(contours, eps: float):
    return [cv2.approxPolyDP(c, eps, True) for c in contours]


def cv_raster(approx, shape) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    if approx:
        cv2.fillPoly(out, approx, 1)
    return out.astype(bool)


def cv_geoms(approx, hier) -> tuple[list, int, int]:
    """Polygons (outer + child holes) in corner coordinates; returns geoms, valid, total."""
    geoms, valid, total = [], 0, 0
    for i, h in enumerate(hier):
        if h[3] != -1:
            continue
        total += 1
        rings = [approx[i]]
        child = h[2]
        while child != -1:
            rings.append(approx[child])
            child = hier[child][0]
        coords = [r.reshape(-1, 2).astype(float) + 0.5 for r in rings]
        if any(len(c) < 3 for c in coords):
            geoms.append(
                shapely.LineString(coords[0]) if len(coords[0]) >= 2 else shapely.Point(coords[0][0])
            )
            continue
        g = shapely.Polygon(coords[0], coords[1:])
        geoms.append(g)
        valid += bool(g.is_valid and g.area > 0)
    return geoms, valid, total


# --- main ---------------------------------------------------------------------------------------

METHODS = {
    "douglas_peucker": (0.0, 20.0),
    "visvalingam_whyatt": (0.0, 200.0),
    "slope": (0.0, 90.0),
    "ratio": (0.0, 1.0),
}


def bench_set(masks: list[np.ndarray], min_iou: float, rows: dict) -> None:
    def add(name: str, nv: int, iou_v: float, hd: float, valid: int, total: int, dt: float):
        r = rows.setdefault(name, {"v": 0, "iou": [], "hd": [], "valid": 0, "total": 0, "t": []})
        r["v"] += nv
        r["iou"].append(iou_v)
        r["hd"].append(hd)
        r["valid"] += valid
        r["total"] += total
        r["t"].append(dt)

    for m in masks:
        bench_mask(m, min_iou, rows, add)


def bench_mask(m: np.ndarray, min_iou: float, rows: dict, add: Callable) -> None:
    """All methods on one mask; results accumulated into ``rows`` via ``add``."""
    h, w = m.shape
    t0 = time.perf_counter()
    exact = mask_to_polygons(m)
    t_trace = time.perf_counter() - t0
    exact_g = to_geoms(exact)
    nv_exact = n_vertices(exact)
    add("exact (input)", nv_exact, 1.0, 0.0, len(exact), len(exact), t_trace)
    rows["exact (input)"].setdefault("trace_s", 0.0)
    rows["exact (input)"]["trace_s"] += t_trace

    t0 = time.perf_counter()
    out = simplify_polygons(exact, min_iou=min_iou, height=h, width=w)
    dt = time.perf_counter() - t0
    g = to_geoms(out)
    valid = sum(bool(x.is_valid) for x in g)
    add(
        "ours: bounded",
        n_vertices(out),
        iou(polygons_to_mask(out, h, w), m),
        hausdorff(g, exact_g),
        valid,
        len(g),
        dt,
    )
    r = rows["ours: bounded"]
    r["in_v"] = r.get("in_v", 0) + nv_exact
    r["search_s"] = r.get("search_s", 0.0) + dt
    t0 = time.perf_counter()
    mask_to_simplified_polygons(m, min_iou=min_iou)
    r["e2e_s"] = r.get("e2e_s", 0.0) + time.perf_counter() - t0

    for method, (lo, hi) in METHODS.items():

        def run(t: float, method: str = method):
            res = simplify_polygons(exact, method=method, tolerance=t)
            return iou(polygons_to_mask(res, h, w), m), res

        tol, (iou_v, res) = tune(run, lo, hi, min_iou, iters=10 if method == "slope" else 14)
        t0 = time.perf_counter()
        simplify_polygons(exact, method=method, tolerance=tol)
        dt = time.perf_counter() - t0
        g = to_geoms(res)
        add(
            f"ours: {method}",
            n_vertices(res),
            iou_v,
            hausdorff(g, exact_g),
            sum(bool(x.is_valid) for x in g),
            len(g),
            dt,
        )

    contours, hier = cv_contours(m)

    def run_cv(eps: float):
        ap = cv_simplify(contours, eps)
        return iou(cv_raster(ap, m.shape), m), ap

    eps, (iou_v, ap) = tune(run_cv, 0.0, 20.0, min_iou)
    t0 = time.perf_counter()
    cv_simplify(contours, eps)
    dt = time.perf_counter() - t0
    g, valid, total = cv_geoms(ap, hier)
    add("cv2.approxPolyDP", sum(len(a) for a in ap), iou_v, hausdorff(g, exact_g), valid, total, dt)
    rows["cv2.approxPolyDP"]["in_v"] = rows["cv2.approxPolyDP"].get("in_v", 0) + sum(len(c) for c in contours)

    mp = shapely.MultiPolygon(exact_g)

    def run_sh(tol: float):
        s = shapely.simplify(mp, tol, preserve_topology=True)
        parts = list(s.geoms) if hasattr(s, "geoms") else [s]
        polys = [
            {"exterior": list(p.exterior.coords)[:-1], "holes": [list(i.coords)[:-1] for i in p.interiors]}
            for p in parts
            if isinstance(p, shapely.Polygon) and not p.is_empty
        ]
        return iou(polygons_to_mask(polys, h, w), m), (s, parts)

    tol, (iou_v, (s, parts)) = tune(run_sh, 0.0, 20.0, min_iou)
    t0 = time.perf_counter()
    shapely.simplify(mp, tol, preserve_topology=True)
    dt = time.perf_counter() - t0
    nv = sum(len(p.exterior.coords) - 1 + sum(len(i.coords) - 1 for i in p.interiors) for p in parts)
    add(
        "shapely.simplify",
        nv,
        iou_v,
        hausdorff(parts, exact_g),
        sum(bool(p.is_valid) for p in parts),
        len(parts),
        dt,
    )


def print_table(name: str, n_masks: int, rows: dict) -> None:
    print(f"\n### {name}: {n_masks} masks")
    print(
        "| method | vertices kept | vs approxPolyDP | mean IoU | min IoU | mean / max Hausdorff px | valid polygons | ms / mask | M input vertices/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ref = rows["cv2.approxPolyDP"]["v"]
    for meth, r in rows.items():
        n_in = rows["cv2.approxPolyDP"]["in_v"] if meth.startswith("cv2") else rows["ours: bounded"]["in_v"]
        rel = f"{100 * (r['v'] - ref) / ref:+.1f}%"
        print(
            f"| {meth} | {r['v']} | {rel} | {np.mean(r['iou']):.4f} | {np.min(r['iou']):.4f} | "
            f"{np.nanmean(r['hd']):.2f} / {np.nanmax(r['hd']):.2f} | {r['valid']}/{r['total']} | "
            f"{1e3 * np.mean(r['t']):.1f} | {n_in / max(sum(r['t']), 1e-12) / 1e6:.2f} |"
        )
    b = rows["ours: bounded"]
    print(
        f"\nInput: {b['in_v']} exact corner vertices (cv2 CHAIN_APPROX_NONE: "
        f"{rows['cv2.approxPolyDP']['in_v']} contour points). Tracing: "
        f"{b['in_v'] / rows['exact (input)']['trace_s'] / 1e6:.2f} M vertices/s; bounded search: "
        f"{b['in_v'] / b['search_s'] / 1e6:.3f} M input vertices/s; "
        f"mask_to_simplified_polygons end to end: {b['in_v'] / b['e2e_s'] / 1e6:.3f} M/s."
    )


def throughput(
    name: str, masks: list[np.ndarray], min_iou: float, repeat: int = 3, max_distance: float | None = None
) -> None:
    """Per-step throughput (M input corner vertices per CPU second, best of ``repeat``)."""
    exacts = [mask_to_polygons(m) for m in masks]
    n_in = sum(n_vertices(p) for p in exacts)
    # the conventional contour-point count: every boundary pixel (cv2 CHAIN_APPROX_NONE)
    n_pts = sum(sum(len(c) for c in cv_contours(m)[0]) for m in masks)
    steps: dict[str, Callable[[], object]] = {
        "trace (mask_to_polygons)": lambda: [mask_to_polygons(m) for m in masks],
        "douglas_peucker pass (tol 1 px)": lambda: [
            simplify_polygons(p, method="douglas_peucker", tolerance=1.0) for p in exacts
        ],
        "bounded search (simplify_polygons)": lambda: [
            simplify_polygons(
                p, min_iou=min_iou, max_distance=max_distance, height=m.shape[0], width=m.shape[1]
            )
            for p, m in zip(exacts, masks, strict=True)
        ],
        "end to end (mask_to_simplified_polygons)": lambda: [
            mask_to_simplified_polygons(m, min_iou=min_iou, max_distance=max_distance) for m in masks
        ],
    }
    print(
        f"\n### {name}: {len(masks)} masks, {n_in} input corner vertices "
        f"({n_pts} contour points, cv2 CHAIN_APPROX_NONE)"
    )
    print(
        "| step | CPU s (process_time) | wall s | M input corner vertices / CPU s | M contour points / CPU s |"
    )
    print("|---|---:|---:|---:|---:|")
    for step, fn in steps.items():
        fn()  # warm-up: loads (or compiles) the numba kernels, fills caches
        best_c = best_w = float("inf")
        for _ in range(repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            best_c = min(best_c, time.process_time() - c0)
            best_w = min(best_w, time.perf_counter() - w0)
        print(
            f"| {step} | {best_c:.3f} | {best_w:.3f} | {n_in / best_c / 1e6:.2f} | {n_pts / best_c / 1e6:.2f} |"
        )
    outs = [mask_to_simplified_polygons(m, min_iou=min_iou, max_distance=max_distance) for m in masks]
    ious = [iou(polygons_to_mask(o, *m.shape), m) for o, m in zip(outs, masks, strict=True)]
    geoms = [g for o in outs for g in to_geoms(o)]
    regions = sum(bool(shapely.MultiPolygon(to_geoms(o)).is_valid) for o in outs)
    print(
        f"\nbounded result: {sum(n_vertices(o) for o in outs)} vertices kept, min IoU "
        f"{min(ious):.4f}, valid polygons {sum(bool(g.is_valid) for g in geoms)}/{len(geoms)}, "
        f"valid regions (each mask's polygons as one MultiPolygon) {regions}/{len(outs)}"
    )


# --- per-part bounds (issue 15) --------------------------------------------------------------


def centre_raster(geom: shapely.Polygon, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Pixels of the window [x0, x1) x [y0, y1) whose centre lies in ``geom`` (shapely's
    point-in-polygon: a rasterizer independent of ``workers.geometry``)."""
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return shapely.contains_xy(geom, xs + 0.5, ys + 0.5)


def part_scores(out: list[dict], exact: list[dict], shape: tuple[int, int]) -> tuple[list, list]:
    """IoU and Hausdorff distance (px) of every simplified part against its exact part (same
    index: the simplifier keeps parts in order), each on the part's own pixels."""
    h, w = shape
    ious, hds = [], []
    prepared = [to_geoms([p])[0] for p in exact]
    for g_out, g_ex in zip(to_geoms(out), prepared, strict=True):
        bx0, by0, bx1, by1 = shapely.bounds(shapely.union(g_out.envelope, g_ex.envelope))
        x0, y0 = max(int(np.floor(bx0)), 0), max(int(np.floor(by0)), 0)
        x1, y1 = min(int(np.ceil(bx1)), w), min(int(np.ceil(by1)), h)
        a, b = centre_raster(g_out, x0, y0, x1, y1), centre_raster(g_ex, x0, y0, x1, y1)
        ious.append(iou(a, b))
        hds.append(shapely.hausdorff_distance(g_out.boundary, g_ex.boundary, densify=0.05))
    return ious, hds


def cv_objects(m: np.ndarray) -> list[list[np.ndarray]]:
    """``cv2.findContours`` objects (outer contour + its holes, ``RETR_CCOMP``)."""
    contours, hier = cv_contours(m)
    objs = []
    for i, hrow in enumerate(hier):
        if hrow[3] != -1:
            continue
        rings, child = [contours[i]], hrow[2]
        while child != -1:
            rings.append(contours[child])
            child = hier[child][0]
        objs.append(rings)
    return objs


def cv_object_tuned(rings: list[np.ndarray], shape, min_iou: float, max_dist: float, exact_g) -> tuple:
    """approxPolyDP on one object with the largest epsilon (bisection in [0, 20]) meeting both
    bounds on that object (IoU by ``cv2.fillPoly`` against the object's own filled contours,
    Hausdorff to the exact pixel-corner outline ``exact_g``); returns (vertices, IoU, Hausdorff,
    valid)."""
    x, y, bw, bh = cv2.boundingRect(np.concatenate(rings))
    pad = 2
    off = np.array([x - pad, y - pad])
    local = [r - off for r in rings]
    size = (bh + 2 * pad, bw + 2 * pad)
    src = np.zeros(size, np.uint8)
    cv2.fillPoly(src, local, 1)
    src = src.astype(bool)

    def run(eps: float):
        ap = [cv2.approxPolyDP(r, eps, True) for r in local]
        out = np.zeros(size, np.uint8)
        cv2.fillPoly(out, ap, 1)
        coords = [a.reshape(-1, 2).astype(float) + 0.5 + off for a in ap]
        if any(len(c) < 3 for c in coords):
            return None
        g = shapely.Polygon(coords[0], coords[1:])
        hd = shapely.hausdorff_distance(g.boundary, exact_g.boundary, densify=0.05)
        return iou(out.astype(bool), src), hd, g, sum(len(a) for a in ap)

    lo, hi = 0.0, 20.0
    best = run(0.0)
    if best is None:  # a contour of 1-2 points (a part 1-2 pixels wide): no polygon at all
        return sum(len(r) for r in rings), 0.0, float("inf"), False
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        res = run(mid)
        if res is not None and res[0] >= min_iou and res[1] <= max_dist:
            lo, best = mid, res
        else:
            hi = mid
    i_v, hd, g, nv = best
    return nv, i_v, hd, bool(g.is_valid)


def per_part(
    name: str,
    masks: list[np.ndarray],
    min_iou: float,
    max_dist: float,
    repeat: int = 3,
    speed_only: bool = False,
) -> None:
    """Whole masks simplified with both bounds: every part's IoU and Hausdorff distance, the
    vertices against approxPolyDP tuned per object to the same bounds, and the end-to-end speed
    (CPU time, best of ``repeat`` after a warm-up). ``speed_only``: only the speed line."""
    exacts = [mask_to_polygons(m) for m in masks]
    n_in = sum(n_vertices(p) for p in exacts)
    run = lambda: [mask_to_simplified_polygons(m, min_iou=min_iou, max_distance=max_dist) for m in masks]  # noqa: E731
    outs = run()
    best_c = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        run()
        best_c = min(best_c, time.process_time() - c0)
    if speed_only:
        print(
            f"{name}: {len(masks)} masks, {n_in} input vertices, {sum(n_vertices(o) for o in outs)} kept; "
            f"both bounds: CPU {best_c:.3f} s (best of {repeat}) = {n_in / best_c / 1e6:.2f} M input "
            f"vertices / CPU s; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        return
    iou_only = [mask_to_simplified_polygons(m, min_iou=min_iou) for m in masks]
    c0 = time.process_time()
    for m in masks:
        mask_to_simplified_polygons(m, min_iou=min_iou)
    t_iou = time.process_time() - c0
    ious, hds, valid, parts = [], [], 0, 0
    for o, e, m in zip(outs, exacts, masks, strict=True):
        i_, h_ = part_scores(o, e, m.shape)
        ious += i_
        hds += h_
        valid += sum(bool(g.is_valid) for g in to_geoms(o))
        parts += len(o)
    regions = sum(bool(shapely.MultiPolygon(to_geoms(o)).is_valid) for o in outs)
    cv_nv, cv_iou, cv_hd, cv_valid, cv_n = 0, [], [], 0, 0
    for m, e in zip(masks, exacts, strict=True):
        exact_g = to_geoms(e)
        tree = shapely.STRtree(exact_g)
        for rings in cv_objects(m):
            # the exact part this object outlines: the one holding its first contour pixel's centre
            px, py = rings[0][0, 0]
            hit = tree.query(shapely.points(px + 0.5, py + 0.5), predicate="within")
            if not len(hit):
                continue
            nv, i_v, hd, ok = cv_object_tuned(rings, m.shape, min_iou, max_dist, exact_g[int(hit[0])])
            cv_nv += nv
            cv_iou.append(i_v)
            cv_hd.append(hd)
            cv_valid += ok
            cv_n += 1
    ours = sum(n_vertices(o) for o in outs)
    ious_a, hds_a = np.array(ious), np.array(hds)
    ok = (ious_a >= min_iou) & (hds_a <= max_dist + 1e-9)
    print(
        f"\n### {name}: {len(masks)} whole masks, {parts} parts, bounds IoU >= {min_iou} and Hausdorff <= {max_dist} px per part"
    )
    print(
        "| method | vertices kept | vs approxPolyDP | parts meeting both bounds | min part IoU | max part Hausdorff px | valid polygons | M input vertices / CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| ours: bounded, per part | {ours} | {100 * (ours - cv_nv) / cv_nv:+.1f}% | {ok.sum()}/{len(ok)} | "
        f"{ious_a.min():.4f} | {hds_a.max():.2f} | {valid}/{parts} (regions {regions}/{len(outs)}) | "
        f"{n_in / best_c / 1e6:.2f} |"
    )
    cv_ok = (np.array(cv_iou) >= min_iou) & (np.array(cv_hd) <= max_dist + 1e-9)
    print(
        f"| cv2.approxPolyDP tuned per object | {cv_nv} | +0.0% | {cv_ok.sum()}/{cv_n} | {min(cv_iou):.4f} | "
        f"{max(cv_hd):.2f} | {cv_valid}/{cv_n} | |"
    )
    io_n = sum(n_vertices(o) for o in iou_only)
    print(
        f"\nInput {n_in} exact corner vertices; CPU {best_c:.3f} s for all masks with both bounds; "
        f"IoU bound alone: {io_n} vertices, {n_in / t_iou / 1e6:.2f} M input vertices / CPU s."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-iou", type=float, default=0.98)
    ap.add_argument(
        "--max-distance",
        type=float,
        default=None,
        help="--throughput: also bound the Hausdorff distance (px); --per-part: the distance bound (default 2)",
    )
    ap.add_argument("--limit", type=int, default=None, help="masks per set (default: all)")
    ap.add_argument(
        "--speed-only",
        action="store_true",
        help="--per-part: only the speed line per set (no scoring, no approxPolyDP tuning)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="--per-part: timed runs, the best is reported")
    ap.add_argument("--throughput", action="store_true", help="only the per-step throughput table")
    ap.add_argument(
        "--per-part",
        action="store_true",
        help="only the per-part table: every part at --min-iou and --max-distance (default 2 px)",
    )
    args = ap.parse_args(argv)
    root = data_root()
    sets = load_sets(root, args.limit) if root.is_dir() else {}
    if not sets:
        print(f"SKIPPED: shared data not found at {root} (set LABELHUB_SHARED_DATA)")
        return 0
    warm_up()  # load (or compile) the numba kernels before anything is timed
    if args.per_part:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, masks in sets.items():
            per_part(
                name,
                masks,
                args.min_iou,
                2.0 if args.max_distance is None else args.max_distance,
                repeat=args.repeat,
                speed_only=args.speed_only,
            )
        return 0
    if args.throughput:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, masks in sets.items():
            throughput(name, masks, args.min_iou, max_distance=args.max_distance)
        return 0
    for name, masks in sets.items():
        rows: dict = {}
        bench_set(masks, args.min_iou, rows)
        print_table(name, len(masks), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
