"""Polygon simplifiers and the bounded (accuracy-guaranteed) mode.

All simplifiers work on closed rings in pixel-corner coordinates (see
:mod:`workers.geometry.contours`). The tolerance methods only *delete* vertices, so each of
their output vertices is an input vertex. Each ring keeps at least 3 vertices, no ring is
dropped (topology: same parts, same holes, same order), and any polygon that a simplifier would
make invalid (self-intersection, hole crossing or leaving its exterior, zero area) or that
would overlap another part is re-simplified with a smaller tolerance (t/2, t/4, ...) and
finally replaced by its unsimplified rings. Outputs are therefore always valid polygons with
pairwise disjoint interiors.

Methods (``tolerance`` meaning and units):

* ``"douglas_peucker"``: Ramer-Douglas-Peucker; ``tolerance`` = max distance in pixels from a
  dropped vertex to the kept chord (so the Hausdorff distance to the input is <= tolerance).
  The whole DP hierarchy is computed level by level, vectorized over all rings.
* ``"visvalingam_whyatt"``: drop the vertex whose triangle with its neighbours has the smallest
  area, repeatedly; ``tolerance`` = minimum effective area to keep, in pixels squared. Vertices
  that are local minima are removed in parallel rounds (vectorized), which can differ from the
  strictly sequential algorithm on ties.
* ``"slope"``: walk each ring from its first vertex; from the current anchor, keep extending
  while the directions from the anchor to the following vertices (those at least 1.5 px away)
  stay within a cone of ``tolerance`` degrees; then the last vertex inside the cone becomes
  the next anchor. Vertices where the direction barely changes are deleted.
* ``"ratio"``: size- and curvature-relative; a vertex's score is the height of the triangle it
  forms with its neighbours (curvature times support length), eliminated like
  Visvalingam-Whyatt, and compared with ``tolerance`` times the square root of the part's
  exterior area (a unitless ratio: the same ratio simplifies large and small objects alike).
* ``"bounded"``: given ``min_iou`` (IoU of the result against the source region, measured on
  the pixel grid with the pixel-centre rule) and/or ``max_distance`` (symmetric Hausdorff
  distance in pixels between the input and output outlines), return the valid result with the
  fewest vertices found among :data:`BOUNDED_CANDIDATES`, each with its tolerance chosen by
  binary search (IoU evaluated by rasterizing only the bounding box). Candidates run
  Douglas-Peucker or Visvalingam-Whyatt on the exact rings or on the "crack-midpoint" rings
  (each pixel-outline corner chamfered by 0.5 px, which turns staircases into straight lines),
  optionally followed by a line-fit refinement that moves each kept vertex (by at most 2 px)
  to the intersection of the least-squares lines of its two edges. So in this mode vertices
  may be non-integer and need not be input vertices. Every returned result has been checked
  against the bound(s) after the validity repair; the exact input is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely

from .raster import crossings_flat, parse_polygons, rasterize_flat, rasterize_rings

__all__ = ["SIMPLIFIERS", "simplify_polygons"]

SIMPLIFIERS: tuple[str, ...] = ("douglas_peucker", "visvalingam_whyatt", "slope", "ratio", "bounded")
HIERARCHICAL: tuple[str, ...] = ("douglas_peucker", "visvalingam_whyatt", "ratio")
_FIT_MAX_SHIFT = 8.0  # px, hard cap on how far the line-fit refinement moves a vertex


def _fit_shift(method: str, t: float) -> float:
    """Max vertex shift (px) for the line-fit refinement at tolerance ``t``."""
    scale = t if method == "douglas_peucker" else float(np.sqrt(max(t, 0.0)))
    return float(min(max(2.0, 1.5 * scale), _FIT_MAX_SHIFT))


#: (base rings, method, line-fit refinement) tried by the bounded mode.
BOUNDED_CANDIDATES: tuple[tuple[str, str, bool], ...] = (
    ("exact", "douglas_peucker", False),
    ("midpoint", "douglas_peucker", True),
    ("exact", "douglas_peucker", True),
    ("midpoint", "visvalingam_whyatt", True),
)


@dataclass
class _Rings:
    """All rings of a polygon list, flattened. Ring k is pts[off[k]:off[k+1]]."""

    pts: np.ndarray  # (N, 2) float64
    off: np.ndarray  # (R + 1,) int64
    poly: np.ndarray  # (R,) polygon index of each ring
    n_polys: int
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # per-base derived data

    @classmethod
    def from_parsed(cls, parsed: list[tuple[np.ndarray, list[np.ndarray]]]) -> _Rings:
        rings, poly = [], []
        for i, (ext, holes) in enumerate(parsed):
            for r in (ext, *holes):
                rings.append(r)
                poly.append(i)
        lens = np.array([len(r) for r in rings], dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        pts = np.concatenate(rings) if rings else np.zeros((0, 2))
        return cls(pts, off, np.array(poly, dtype=np.int64), len(parsed))

    @property
    def ring_id(self) -> np.ndarray:
        rid = self.cache.get("ring_id")
        if rid is None:
            rid = self.cache["ring_id"] = np.repeat(np.arange(len(self.off) - 1), np.diff(self.off))
        return rid

    def ring_list(self, keep: np.ndarray | None = None) -> list[np.ndarray]:
        if keep is None:
            return [self.pts[a:b] for a, b in zip(self.off[:-1], self.off[1:], strict=True)]
        return [self.pts[a:b][keep[a:b]] for a, b in zip(self.off[:-1], self.off[1:], strict=True)]


# ---------------------------------------------------------------------------------------------
# Hierarchies: per-vertex significance; the simplification at tolerance t keeps sig > t.
# ---------------------------------------------------------------------------------------------


def _dp_significance(R: _Rings) -> np.ndarray:
    """Douglas-Peucker significance of every vertex, computed level by level (vectorized over
    all segments of all rings). Keeping ``sig > t`` equals running DP with tolerance ``t``."""
    n_r = len(R.off) - 1
    lens = np.diff(R.off)
    # closed layout: ring k occupies coff[k] .. coff[k] + len_k (last = copy of first)
    coff = R.off[:-1] + np.arange(n_r)
    cpts = np.empty((len(R.pts) + n_r, 2))
    mask = np.ones(len(cpts), dtype=bool)
    mask[coff + lens] = False
    cpts[mask] = R.pts
    cpts[coff + lens] = R.pts[R.off[:-1]]
    sig = np.zeros(len(cpts))
    sig[coff] = np.inf
    sig[coff + lens] = np.inf
    # First split: the vertex farthest from the ring's first vertex (always kept).
    first = np.repeat(R.pts[R.off[:-1]], lens, axis=0)
    d0 = np.sum((R.pts - first) ** 2, axis=1)
    far = _group_argmax(d0, R.off[:-1], lens) - R.off[:-1]
    mid = coff + far
    sig[mid] = np.inf
    S = np.concatenate([coff, mid])
    E = np.concatenate([mid, coff + lens])
    PS = np.full(len(S), np.inf)
    forced = np.ones(len(S), dtype=bool)  # the first split of the larger half is forced kept
    seg_ring = np.concatenate([np.arange(n_r), np.arange(n_r)])
    while len(S):
        L = E - S - 1
        ok = L > 0
        S, E, PS, L, forced = S[ok], E[ok], PS[ok], L[ok], forced[ok]
        seg_ring = seg_ring[ok]
        if not len(S):
            break
        seg = np.repeat(np.arange(len(S)), L)
        starts = np.cumsum(L) - L
        idx = np.arange(int(L.sum())) - starts[seg] + S[seg] + 1
        a, b, p = cpts[S][seg], cpts[E][seg], cpts[idx]
        d2 = _seg_dist2(p, a, b)
        k = _group_argmax(d2, starts, L)
        dmax = np.sqrt(d2[k])
        kidx = idx[k]
        s = np.minimum(dmax, PS)
        if forced.any():
            # make sure each ring keeps >= 3 vertices: force the better of its two halves
            fidx = np.flatnonzero(forced)
            order = np.lexsort((-dmax[fidx], seg_ring[fidx]))
            fidx = fidx[order]
            fr = seg_ring[fidx]
            s[fidx[np.concatenate([[True], fr[1:] != fr[:-1]])]] = np.inf
        sig[kidx] = s
        S, E = np.concatenate([S, kidx]), np.concatenate([kidx, E])
        PS = np.concatenate([s, s])
        forced = np.zeros(len(S), dtype=bool)
        seg_ring = np.zeros(len(S), dtype=np.int64)
    return sig[mask]


def _seg_dist2(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    ap = p - a
    den = np.einsum("ij,ij->i", ab, ab)
    t = np.einsum("ij,ij->i", ap, ab) / np.where(den > 0, den, 1.0)
    t = np.clip(t, 0.0, 1.0)
    q = ap - t[:, None] * ab
    return np.einsum("ij,ij->i", q, q)


def _group_argmax(v: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Index (into v) of the first maximum of each contiguous group."""
    gmax = np.maximum.reduceat(v, starts)
    seg = np.repeat(np.arange(len(starts)), lens)
    hit = np.flatnonzero(v == gmax[seg])
    hs = seg[hit]
    firsts = np.flatnonzero(np.concatenate([[True], hs[1:] != hs[:-1]]))
    return hit[firsts]


def _elimination_significance(R: _Rings, metric: str) -> np.ndarray:
    """Visvalingam-Whyatt style elimination in parallel rounds.

    ``metric`` is ``"area"`` (triangle area, px^2) or ``"height"`` (triangle height over the
    chord of the neighbours, px). Returns monotone effective significance per vertex; the last
    3 vertices of each ring get ``inf``.
    """
    n = len(R.pts)
    rid = R.ring_id
    idx = np.arange(n)
    prv = idx - 1
    nxt = idx + 1
    prv[R.off[:-1]] = R.off[1:] - 1
    nxt[R.off[1:] - 1] = R.off[:-1]
    count = np.diff(R.off).copy()
    runmax = np.zeros(len(count))
    sig = np.full(n, np.inf)
    # deterministic pseudo-random tie breaker so that runs of equal metric shrink fast
    tie = ((idx * 2654435761) % 4294967296).astype(np.float64)
    active = idx[count[rid] > 3]
    pts = R.pts
    met = np.full(n, np.inf)
    while len(active):
        p, q, r = pts[prv[active]], pts[active], pts[nxt[active]]
        cross = np.abs((p[:, 0] - q[:, 0]) * (r[:, 1] - q[:, 1]) - (p[:, 1] - q[:, 1]) * (r[:, 0] - q[:, 0]))
        if metric == "area":
            m = 0.5 * cross
        else:
            base = np.hypot(r[:, 0] - p[:, 0], r[:, 1] - p[:, 1])
            m = np.where(base > 0, cross / np.where(base > 0, base, 1.0), np.hypot(*(q - p).T))
        met[active] = m
        mp, mn = met[prv[active]], met[nxt[active]]
        tp, tn, ta = tie[prv[active]], tie[nxt[active]], tie[active]
        cand = ((m < mp) | ((m == mp) & (ta < tp))) & ((m < mn) | ((m == mn) & (ta < tn)))
        rem = active[cand]
        if not len(rem):
            break
        rr = rid[rem]
        nrem = np.bincount(rr, minlength=len(count))
        over = (count - nrem) < 3
        if over[rr].any():
            # small rings: remove only their smallest candidate this round
            bad = over[rr]
            keep_ok = rem[~bad]
            sub = rem[bad]
            order = np.lexsort((tie[sub], met[sub], rid[sub]))
            sub = sub[order]
            sr = rid[sub]
            firsts = np.concatenate([[True], sr[1:] != sr[:-1]])
            rem = np.concatenate([keep_ok, sub[firsts]])
            rr = rid[rem]
            nrem = np.bincount(rr, minlength=len(count))
        sig[rem] = np.maximum(met[rem], runmax[rr])
        np.maximum.at(runmax, rr, met[rem])
        nxt[prv[rem]] = nxt[rem]
        prv[nxt[rem]] = prv[rem]
        count -= nrem
        met[rem] = np.inf
        alive_mask = np.ones(len(active), dtype=bool)
        alive_mask[np.flatnonzero(cand)] = False
        # (indices removed from 'rem' by the small-ring rule stay active; recompute below)
        active = active[np.isin(active, rem, invert=True)] if over.any() else active[alive_mask]
        active = active[count[rid[active]] > 3]
    return sig


def significance(R: _Rings, method: str) -> np.ndarray:
    """Per-vertex significance for a hierarchical method (see module docstring for units)."""
    if method == "douglas_peucker":
        return _dp_significance(R)
    if method == "visvalingam_whyatt":
        return _elimination_significance(R, "area")
    if method == "ratio":
        sig = _elimination_significance(R, "height")
        ext_area = np.zeros(R.n_polys)
        rid = R.ring_id
        for k in range(len(R.off) - 1):
            if ext_area[R.poly[k]] == 0:
                ring = R.pts[R.off[k] : R.off[k + 1]]
                x, y = ring[:, 0], ring[:, 1]
                ext_area[R.poly[k]] = abs(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        scale = np.sqrt(np.maximum(ext_area, 1e-12))[R.poly[rid]]
        return sig / scale
    raise ValueError(f"method {method!r} has no significance hierarchy")


def _slope_keep(R: _Rings, tol_deg: float, min_len: float = 1.5, window: int = 256) -> np.ndarray:
    tol = np.deg2rad(tol_deg)
    keep = np.zeros(len(R.pts), dtype=bool)
    for k in range(len(R.off) - 1):
        a0, b0 = int(R.off[k]), int(R.off[k + 1])
        ring = R.pts[a0:b0]
        n = len(ring)
        ext = np.vstack([ring, ring[:1]])
        kept = [0]
        a = 0
        while a < n:
            j1 = min(n + 1, a + 1 + window)
            v = ext[a + 1 : j1] - ext[a]
            dist = np.hypot(v[:, 0], v[:, 1])
            ang = np.arctan2(v[:, 1], v[:, 0])
            far = dist >= min_len
            if not far.any():
                a = j1 - 1
                kept.append(a)
                continue
            ref = ang[np.argmax(far)]
            rel = np.where(far, (ang - ref + np.pi) % (2 * np.pi) - np.pi, 0.0)
            spread = np.maximum.accumulate(rel) - np.minimum.accumulate(rel)
            bad = np.flatnonzero(spread > tol)
            if len(bad):
                j = int(bad[0])  # v[j] violates -> previous point is the new anchor
                a = a + max(j, 1)
            else:
                a = j1 - 1
            kept.append(a)
        kept_arr = np.array([i for i in kept if i < n], dtype=np.int64)
        if len(np.unique(kept_arr)) < 3:
            kept_arr = np.unique(np.concatenate([kept_arr, [0, n // 3, (2 * n) // 3]]))
        keep[a0 + kept_arr] = True
    return keep


# ---------------------------------------------------------------------------------------------
# Validity and repair
# ---------------------------------------------------------------------------------------------


def _ring_keep_min3(R: _Rings, keep: np.ndarray, sig: np.ndarray | None) -> np.ndarray:
    """Ensure every ring keeps >= 3 vertices (adds the most significant ones)."""
    counts = np.add.reduceat(keep.astype(np.int64), R.off[:-1])
    for k in np.flatnonzero(counts < 3):
        a, b = R.off[k], R.off[k + 1]
        order = np.argsort(-sig[a:b], kind="stable") if sig is not None else np.arange(b - a)
        keep[a + order[:3]] = True
    return keep


def _assemble(R: _Rings, rings: list[np.ndarray], polys: np.ndarray | None = None) -> list:
    """shapely Polygons for the polygons ``polys`` (default all) from a flat ring list."""
    groups: list[list[np.ndarray]] = [[] for _ in range(R.n_polys)]
    for k, r in enumerate(rings):
        groups[R.poly[k]].append(r)
    idx = range(R.n_polys) if polys is None else polys
    return [shapely.Polygon(groups[i][0], groups[i][1:]) for i in idx]


def invalid_parts(geoms: list[shapely.Polygon]) -> np.ndarray:
    """Indices of polygons that are invalid on their own, or that overlap or share a boundary
    segment with another part (a valid MultiPolygon needs parts touching at points only)."""
    arr = np.array(geoms, dtype=object)
    bad = ~shapely.is_valid(arr) | (shapely.area(arr) <= 0)
    if len(arr) > 1:
        tree = shapely.STRtree(arr)
        pairs = tree.query(arr, predicate="intersects")
        pairs = pairs[:, pairs[0] < pairs[1]]
        if pairs.shape[1]:
            i, j = pairs
            ok = ~bad[i] & ~bad[j]
            i, j = i[ok], j[ok]
            if len(i):
                # parts may only touch at isolated points: no shared area (II = 2) and no
                # shared boundary segment (BB = 1)
                de9im = shapely.relate(arr[i], arr[j])
                rel = np.array([d[0] == "2" or d[4] == "1" for d in de9im], dtype=bool)
                bad[i[rel]] = True
                bad[j[rel]] = True
    return np.flatnonzero(bad)


def _repair(
    R: _Rings, make: Callable[[int], list[np.ndarray]], n_levels: int
) -> tuple[list[np.ndarray], list[shapely.Polygon]]:
    """Candidate ``make(0)``; every polygon that is invalid or overlaps another part is
    replaced by its version from ``make(1)``, ``make(2)``, ... and finally by its exact rings
    (``R``), until the whole region is valid. ``make(level)`` returns a flat ring list aligned
    with ``R``'s rings."""
    cache = {0: make(0)}
    rings = list(cache[0])
    exact = R.ring_list()
    level = np.zeros(R.n_polys, dtype=np.int64)
    ring_ids = [np.flatnonzero(R.poly == i) for i in range(R.n_polys)]
    geoms = _assemble(R, rings)
    want = _ring_areas(exact) > 0
    for _ in range(n_levels + 3):
        # invalid, overlapping, or a ring whose orientation flipped (degenerate shortcut)
        flipped = (_ring_areas(rings) > 0) != want
        bad = np.union1d(invalid_parts(geoms), R.poly[flipped])
        if not len(bad):
            return rings, geoms
        level[bad] += 1
        for i in bad:
            lv = int(level[i])
            if lv >= n_levels:
                src = exact
            else:
                if lv not in cache:
                    cache[lv] = make(lv)
                src = cache[lv]
            for k in ring_ids[i]:
                rings[k] = src[k]
        for i, g in zip(bad, _assemble(R, rings, bad), strict=True):
            geoms[i] = g
    # unreachable in practice: exact pixel outlines are valid and disjoint
    rings = exact
    return rings, _assemble(R, rings)


def _flatten(rings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A ring list as a flat (pts, off) pair."""
    lens = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    off = np.zeros(len(rings) + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    pts = np.concatenate(rings) if rings else np.zeros((0, 2))
    return pts, off


def _ring_areas(rings: list[np.ndarray]) -> np.ndarray:
    """Signed (shoelace) area of every ring of a list (rings with >= 1 vertex), vectorized."""
    pts, off = _flatten(rings)
    if not len(pts):
        return np.zeros(len(rings))
    nxt = np.arange(1, len(pts) + 1)
    nxt[off[1:] - 1] = off[:-1]
    x, y = pts[:, 0], pts[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    return 0.5 * np.add.reduceat(cross, off[:-1])


def _flat_keep(base: _Rings, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kept vertices as a flat (pts, off) pair: ring k is pts[off[k]:off[k+1]]."""
    counts = np.add.reduceat(keep.astype(np.int64), base.off[:-1])
    return base.pts[keep], np.concatenate([[0], np.cumsum(counts)])


def _split(flat: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    pts, off = flat
    return np.split(pts, off[1:-1])


def _edge_moments(base: _Rings) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums over the base edges (edge i: pts[i] -> next vertex of its ring) of the
    exact length-weighted moments [L, Sx, Sy, Sxx, Syy, Sxy] in ring-local coordinates
    (origin = the ring's first vertex, to keep the sums well conditioned), and the origins.
    Cached on ``base``: every candidate of a search reuses them."""
    if "moments" in base.cache:
        return base.cache["moments"]
    n = len(base.pts)
    rid = base.ring_id
    origin = base.pts[base.off[:-1]]
    nxt = np.arange(1, n + 1)
    nxt[base.off[1:] - 1] = base.off[:-1]
    p = base.pts - origin[rid]
    q = base.pts[nxt] - origin[rid]
    L = np.hypot(q[:, 0] - p[:, 0], q[:, 1] - p[:, 1])
    m = np.empty((n, 6))
    m[:, 0] = L
    m[:, 1] = L * (p[:, 0] + q[:, 0]) / 2
    m[:, 2] = L * (p[:, 1] + q[:, 1]) / 2
    m[:, 3] = L * (p[:, 0] ** 2 + p[:, 0] * q[:, 0] + q[:, 0] ** 2) / 3
    m[:, 4] = L * (p[:, 1] ** 2 + p[:, 1] * q[:, 1] + q[:, 1] ** 2) / 3
    m[:, 5] = L * (2 * p[:, 0] * p[:, 1] + p[:, 0] * q[:, 1] + q[:, 0] * p[:, 1] + 2 * q[:, 0] * q[:, 1]) / 6
    P = np.zeros((n + 1, 6))
    np.cumsum(m, axis=0, out=P[1:])
    base.cache["moments"] = (P, origin)
    return P, origin


def _fit_rings(
    base: _Rings, keep: np.ndarray, max_shift: float, frame: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Refine kept vertices: fit a total-least-squares line to the part of the base outline
    that each simplified edge replaces (exact moments of the base edges), and move each vertex
    to the intersection of its two fitted lines. A vertex stays put where the lines are nearly
    parallel, the intersection is more than ``max_shift`` px away, or (with ``frame=(h, w)``)
    it lies outside the image ``[0, w] x [0, h]``."""
    rid = base.ring_id
    P, origin = _edge_moments(base)
    kk = np.flatnonzero(keep)
    # per kept vertex: the base edges from it up to the next kept vertex of its ring (cyclic)
    pos = np.arange(len(kk))
    rk = rid[kk]
    start = np.flatnonzero(np.concatenate([[True], rk[1:] != rk[:-1]]))
    cnt = np.diff(np.concatenate([start, [len(kk)]]))
    last = start + cnt - 1
    nk = pos + 1
    nk[last] = start
    mom = P[kk[nk]] - P[kk]
    rl = rk[last]
    mom[last] = P[base.off[1:][rl]] - P[kk[last]] + P[kk[start]] - P[base.off[:-1][rl]]
    ws = np.maximum(mom[:, 0], 1e-12)
    lx, ly = mom[:, 1] / ws, mom[:, 2] / ws  # centroid in ring-local coordinates
    vxx = mom[:, 3] / ws - lx**2
    vyy = mom[:, 4] / ws - ly**2
    vxy = mom[:, 5] / ws - lx * ly
    cx, cy = lx + origin[rk, 0], ly + origin[rk, 1]
    th = 0.5 * np.arctan2(2 * vxy, vxx - vyy)
    ux, uy = np.cos(th), np.sin(th)
    # previous kept vertex's line (the edge arriving at each kept vertex), per ring cyclically
    prev = pos - 1
    prev[start] = last
    c1x, c1y, u1x, u1y = cx[prev], cy[prev], ux[prev], uy[prev]
    den = u1x * uy - u1y * ux
    dx, dy = cx - c1x, cy - c1y
    a = (dx * uy - dy * ux) / np.where(np.abs(den) > 1e-12, den, 1.0)
    ix, iy = c1x + a * u1x, c1y + a * u1y
    orig = base.pts[kk]
    shift = np.hypot(ix - orig[:, 0], iy - orig[:, 1])
    good = (np.abs(den) > np.sin(np.deg2rad(8))) & (shift <= max_shift)
    if frame is not None:
        good &= (ix >= 0) & (ix <= frame[1]) & (iy >= 0) & (iy <= frame[0])
    new = orig.copy()
    new[good, 0] = ix[good]
    new[good, 1] = iy[good]
    off = np.zeros(len(base.off), dtype=np.int64)
    np.cumsum(np.bincount(rk, minlength=len(base.off) - 1), out=off[1:])
    return new, off


def _rings_to_dicts(R: _Rings, rings: list[np.ndarray]) -> list[dict]:
    out: list[dict] = []
    for k, r in enumerate(rings):
        if len(out) <= R.poly[k]:
            out.append({"exterior": r.tolist(), "holes": []})
        else:
            out[R.poly[k]]["holes"].append(r.tolist())
    return out


def _boundary_lines(geoms: list[shapely.Polygon]) -> np.ndarray:
    rings = [r for g in geoms for r in (g.exterior, *g.interiors)]
    return np.array([shapely.LineString(r.coords) for r in rings], dtype=object)


def _hausdorff(geoms: list[shapely.Polygon], ref: list[shapely.Polygon], step: float = 0.1) -> float:
    """Upper bound of the symmetric Hausdorff distance (px) between the outlines: outlines are
    densified to ``step`` px, exact point-to-segment distances are taken (via an STRtree) and
    ``step / 2`` is added (the distance function is 1-Lipschitz along the outline)."""
    if not geoms:
        return 0.0
    a, b = _boundary_lines(geoms), _boundary_lines(ref)

    def directed(src: np.ndarray, dst: np.ndarray) -> float:
        tree = shapely.STRtree(dst)
        pts = shapely.points(shapely.get_coordinates(shapely.segmentize(src, step)))
        _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        return float(dist.max())

    return max(directed(a, b), directed(b, a)) + step / 2


class _Evaluator:
    """Cheap IoU of a candidate against a fixed source region, on the source bounding box."""

    def __init__(self, R: _Rings, source: np.ndarray | None, frame: tuple[int, int] | None):
        # candidates stay within _FIT_MAX_SHIFT px of the input vertices: add a margin
        margin = int(np.ceil(_FIT_MAX_SHIFT)) + 1
        lo = np.floor(R.pts.min(axis=0)).astype(int) - margin
        hi = np.ceil(R.pts.max(axis=0)).astype(int) + margin
        if frame is not None:
            lo = np.maximum(lo, 0)
            hi = np.minimum(hi, [frame[1], frame[0]])
        self.frame = frame
        self.x0, self.y0 = int(lo[0]), int(lo[1])
        self.w, self.h = max(int(hi[0] - lo[0]), 0), max(int(hi[1] - lo[1]), 0)
        self.R = R
        if source is None:
            source = rasterize_rings(R.ring_list(), self.x0, self.y0, self.h, self.w)
        self.src = source
        self.src_area = int(np.count_nonzero(source))
        # row prefix counts of the source: pref[r, c] = source pixels in row r left of column c
        pref = np.zeros((self.h, self.w + 1), dtype=np.int64)
        np.cumsum(source, axis=1, out=pref[:, 1:])
        self._pref = pref.ravel()
        self._row_tot = pref[:, -1]

    def fast_iou(self, rings: list[np.ndarray] | tuple[np.ndarray, np.ndarray]) -> float:
        """IoU from the scanline crossings only, in O(crossings) instead of O(window area).

        Uses the winding number itself as the inside indicator, so it equals :meth:`iou`
        whenever the winding number is 0 or 1 at every pixel centre (any valid region with
        disjoint parts); for self-overlapping candidates it is an estimate. Used to steer the
        search; results are accepted with :meth:`iou`."""
        pts, off = rings if isinstance(rings, tuple) else _flatten(rings)
        cr = crossings_flat(pts, off, self.x0, self.y0, self.h, self.w)
        if cr is None:
            return 1.0 if self.src_area == 0 else 0.0
        rows, col, wgt = cr
        area = int(np.dot(wgt, self.w - col))
        inter = int(np.dot(wgt, self._row_tot[rows] - self._pref[rows * (self.w + 1) + col]))
        union = self.src_area + area - inter
        return 1.0 if union == 0 else inter / union

    def iou(self, rings: list[np.ndarray] | tuple[np.ndarray, np.ndarray]) -> float:
        if isinstance(rings, tuple):
            m = rasterize_flat(rings[0], rings[1], self.x0, self.y0, self.h, self.w)
        else:
            m = rasterize_rings(rings, self.x0, self.y0, self.h, self.w)
        inter = np.count_nonzero(m & self.src)
        union = self.src_area + np.count_nonzero(m) - inter
        return 1.0 if union == 0 else inter / union


def _midpoint_rings(R: _Rings) -> _Rings:
    """Chamfer every vertex of integer (pixel-outline) rings by 0.5 px: the ring through the
    ends of each edge's first and last unit steps ("crack midpoints"). For a pixel outline
    these points lie halfway between inside and outside pixel centres, so staircases become
    straight lines and far fewer vertices are needed for the same IoU."""
    parsed: list[tuple[np.ndarray, list[np.ndarray]]] = []
    for k, ring in enumerate(R.ring_list()):
        nxt = np.roll(ring, -1, axis=0)
        d = nxt - ring
        length = np.hypot(d[:, 0], d[:, 1])
        u = d / length[:, None]
        a = ring + 0.5 * u
        b = nxt - 0.5 * u
        pts = np.stack([a, b], axis=1).reshape(-1, 2)
        keep = np.ones(len(pts), dtype=bool)
        keep[1::2] = length > 1.0 + 1e-9
        pts = pts[keep]
        prv, nx = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
        cross = (pts[:, 0] - prv[:, 0]) * (nx[:, 1] - pts[:, 1]) - (pts[:, 1] - prv[:, 1]) * (
            nx[:, 0] - pts[:, 0]
        )
        pts = pts[np.abs(cross) > 1e-12]
        if R.poly[k] >= len(parsed):
            parsed.append((pts, []))
        else:
            parsed[R.poly[k]][1].append(pts)
    return _Rings.from_parsed(parsed)


def _bounded(
    R: _Rings,
    ev: _Evaluator,
    min_iou: float | None,
    max_distance: float | None,
) -> list[np.ndarray]:
    """Fewest-vertex valid result meeting the bounds, as a flat ring list aligned with ``R``.

    Candidates (see :data:`BOUNDED_CANDIDATES`): a hierarchical method on the exact rings or
    on the crack-midpoint rings, with or without the line-fit vertex refinement. For each,
    the largest tolerance level whose result meets the bounds is found by binary search over
    the levels where the result changes (IoU evaluated by rasterizing the bounding box only);
    the result is then repaired for validity and re-checked, stepping down a level if the
    repair broke the bound. The exact rings are always a valid fallback."""
    exact = R.ring_list()
    exact_geoms = _assemble(R, exact)
    best: tuple[list[np.ndarray], int] = (exact, len(R.pts))
    integer = bool(np.array_equal(R.pts, np.round(R.pts)))
    bases = {"exact": R}
    sigs: dict[tuple[str, str], np.ndarray] = {}

    for base_name, method, refine in BOUNDED_CANDIDATES:
        if base_name == "midpoint":
            if not integer:
                continue
            if "midpoint" not in bases:
                bases["midpoint"] = _midpoint_rings(R)
        base = bases[base_name]
        if (base_name, method) not in sigs:
            sigs[(base_name, method)] = significance(base, method)
        sig = sigs[(base_name, method)]
        levels = np.concatenate([[-1.0], np.unique(sig[np.isfinite(sig)])])
        # plain Douglas-Peucker on the exact rings: Hausdorff distance <= tolerance
        dist_by_tol = method == "douglas_peucker" and base_name == "exact" and not refine
        if dist_by_tol and max_distance is not None:
            levels = levels[levels <= max_distance]

        def make(
            t: float,
            base: _Rings = base,
            sig: np.ndarray = sig,
            refine: bool = refine,
            method: str = method,
        ) -> tuple[np.ndarray, np.ndarray]:
            keep = _ring_keep_min3(base, sig > t, sig)
            if refine and t >= 0:
                return _fit_rings(base, keep, _fit_shift(method, t), ev.frame)
            return _flat_keep(base, keep)

        def meets(rings, geoms: list | None, dist_by_tol: bool = dist_by_tol, fast: bool = False) -> bool:
            if min_iou is not None and (ev.fast_iou(rings) if fast else ev.iou(rings)) < min_iou:
                return False
            if max_distance is not None and not dist_by_tol:
                if geoms is None:
                    geoms = _assemble(R, _split(rings) if isinstance(rings, tuple) else rings)
                if _hausdorff(geoms, exact_geoms) > max_distance:
                    return False
            return True

        lo, hi = 0, len(levels) - 1  # levels[0] = -1 keeps the base ring as is
        if base_name == "exact" and not refine:
            pass  # level -1 is the exact input, which meets any bound
        elif not meets(make(-1.0), None, fast=True):
            continue
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if meets(make(float(levels[mid])), None, fast=True):
                lo = mid
            else:
                hi = mid - 1
        for j in range(lo, max(lo - 4, -1), -1):
            t = float(levels[j])
            steps = [t / 2**i for i in range(4)] + [-1.0] if t > 0 else [t]
            rings, geoms = _repair(R, lambda i, steps=steps, make=make: _split(make(steps[i])), len(steps))
            if meets(rings, geoms):
                nv = sum(len(r) for r in rings)
                if nv < best[1]:
                    best = (rings, nv)
                break
    return best[0]


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def simplify_polygons(
    polygons: list[dict],
    *,
    method: str = "bounded",
    tolerance: float | None = None,
    min_iou: float | None = None,
    max_distance: float | None = None,
    height: int | None = None,
    width: int | None = None,
    _source: np.ndarray | None = None,
) -> list[dict]:
    """Simplify polygons (pixel-corner coordinates) and return valid polygons.

    Args:
        polygons: list of ``{"exterior": [[x, y], ...], "holes": [...]}`` (any orientation;
            output exteriors have positive signed area, holes negative).
        method: one of :data:`SIMPLIFIERS`.
        tolerance: required for every method except ``"bounded"`` (0 = no simplification,
            the input rings are returned re-oriented); units per method:
            Douglas-Peucker px, Visvalingam-Whyatt px^2, slope degrees, ratio unitless
            (fraction of sqrt(part area)).
        min_iou: ``"bounded"`` only: minimum IoU (0..1] against the input region on the pixel
            grid (pixel-centre rule).
        max_distance: ``"bounded"`` only: maximum Hausdorff distance in pixels between the
            input and output outlines.
        height, width: optional image size; IoU is then measured inside the image only.

    Returns:
        A list of valid polygons, one per input polygon (same order, same number of holes),
        each ring with >= 3 vertices that are a subset of the input ring's vertices.

    Raises:
        ValueError: unknown method, missing/invalid tolerance or bounds, malformed polygons,
            or input polygons that are invalid or overlap each other.
    """
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown method {method!r}; expected one of {SIMPLIFIERS}")
    parsed = parse_polygons(polygons)
    if (height is None) != (width is None):
        raise ValueError("height and width must be given together")
    frame = None
    if height is not None:
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        frame = (int(height), int(width))  # type: ignore[arg-type]
    if method == "bounded":
        if tolerance is not None:
            raise ValueError("tolerance is not used by method='bounded'; give min_iou/max_distance")
        if min_iou is None and max_distance is None:
            raise ValueError("method='bounded' needs min_iou and/or max_distance")
        if min_iou is not None and not (0.0 < float(min_iou) <= 1.0):
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        if max_distance is not None and not (np.isfinite(max_distance) and max_distance >= 0):
            raise ValueError(f"max_distance must be a finite number >= 0, got {max_distance!r}")
    else:
        if min_iou is not None or max_distance is not None:
            raise ValueError(f"min_iou/max_distance are only used by method='bounded', not {method!r}")
        if tolerance is None or not np.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"method {method!r} needs a finite tolerance >= 0, got {tolerance!r}")
    if not parsed:
        return []
    R = _Rings.from_parsed(parsed)
    bad = invalid_parts(_assemble(R, R.ring_list()))
    if len(bad):
        i = int(bad[0])
        g = shapely.Polygon(parsed[i][0], parsed[i][1])
        reason = shapely.is_valid_reason(g) if g.is_valid is False else "overlaps another part"
        raise ValueError(
            f"input polygon {i} is not valid ({reason}); simplification needs valid input "
            "(e.g. the output of mask_to_polygons)"
        )
    if method == "bounded":
        ev = _Evaluator(R, _source, frame)
        return _rings_to_dicts(R, _bounded(R, ev, min_iou, max_distance))
    if method != "bounded" and tolerance == 0:
        return _rings_to_dicts(R, R.ring_list())
    tol = float(tolerance)  # type: ignore[arg-type]
    if method == "slope":

        def make(i: int) -> list[np.ndarray]:
            return R.ring_list(_slope_keep(R, tol / 2**i))

    else:
        sig = significance(R, method)

        def make(i: int) -> list[np.ndarray]:
            return R.ring_list(_ring_keep_min3(R, sig > tol / 2**i, sig))

    rings, _ = _repair(R, make, 6)
    return _rings_to_dicts(R, rings)
