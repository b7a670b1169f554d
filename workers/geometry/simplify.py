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
  area, repeatedly (strictly sequential, a binary heap; ties: lowest index); ``tolerance`` =
  minimum effective area to keep, in pixels squared.
* ``"slope"``: walk each ring from its first vertex; from the current anchor, keep extending
  while the directions from the anchor to the following vertices (those at least 1.5 px away)
  stay within a cone of ``tolerance`` degrees; then the last vertex inside the cone becomes
  the next anchor. Vertices where the direction barely changes are deleted.
* ``"ratio"``: size- and curvature-relative; a vertex's score is the height of the triangle it
  forms with its neighbours (curvature times support length), eliminated like
  Visvalingam-Whyatt, and compared with ``tolerance`` times the square root of the part's
  exterior area (a unitless ratio: the same ratio simplifies large and small objects alike).
* ``"bounded"``: given ``min_iou`` (IoU against the source, measured on the pixel grid with
  the pixel-centre rule) and/or ``max_distance`` (symmetric Hausdorff distance in pixels
  between the input and output outlines), both bounds hold **for every part** (polygon: an
  exterior and its holes) on its own: its IoU against its own pixels, its distance to its own
  exact outline. Each part takes the valid result with the fewest vertices found among two
  candidates, each at the largest tolerance level meeting both bounds on that part (binary
  search; IoU from the scanline crossings of the part's box, the distance bound computed per
  edge from the exact outline it replaces, :mod:`workers.geometry._part_kernels`). For pixel
  outlines the candidates run Douglas-Peucker and Visvalingam-Whyatt on the "crack-midpoint"
  rings (each corner chamfered by 0.5 px, which turns staircases into straight lines); for
  other rings Douglas-Peucker on the exact rings, with and without the refinement. The line-fit
  refinement moves each kept vertex to the intersection of the least-squares lines of its two
  edges, by at most ``min(max(2, 1.5 s), 8)`` px where ``s`` is the largest significance its
  ring dropped (px for Douglas-Peucker, the square root of px^2 for Visvalingam-Whyatt). So in
  this mode vertices may be non-integer and need not be input vertices. A part that the
  validity repair touches is re-checked against both bounds; its exact rings are the fallback.
  Parts too small to keep are the caller's rule: ``mask_to_simplified_polygons(min_part_area=)``
  drops them before tracing, they are never distorted.

The hot loops are compiled (numba), one module per computation: ``_sort``, ``_douglas_peucker``,
``_visvalingam``, ``_slope``, ``_candidates``, ``_winding_iou``, ``_levels``, ``_edge_grid``,
``_edge_contacts``, ``_outline_distance`` and ``_part_kernels`` (all under :mod:`workers.geometry`).
Every kernel works on rings stored flat: ring ``k`` is ``pts[off[k]:off[k + 1]]`` (open, float64
``(n, 2)`` x/y in pixel-corner coordinates), and reproduces the NumPy formulation documented here
operation for operation. Compiled on first use and cached on disk next to its file
(``NUMBA_CACHE_DIR`` moves the cache; :mod:`workers.geometry._cache` keeps the caches in step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely

from . import (
    _candidates,
    _douglas_peucker,
    _edge_contacts,
    _edge_grid,
    _outline_distance,
    _slope,
    _visvalingam,
    _winding_iou,
)
from . import _part_kernels as PK
from .raster import parse_polygons, rasterize_flat, rasterize_rings

__all__ = ["SIMPLIFIERS", "check_arguments", "simplify_polygons", "simplify_rings"]

SIMPLIFIERS: tuple[str, ...] = ("douglas_peucker", "visvalingam_whyatt", "slope", "ratio", "bounded")
HIERARCHICAL: tuple[str, ...] = ("douglas_peucker", "visvalingam_whyatt", "ratio")
_FIT_MAX_SHIFT = 8.0  # px, hard cap on how far the line-fit refinement moves a vertex


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
    """Douglas-Peucker significance of every vertex: keeping ``sig > t`` equals running DP with
    tolerance ``t`` (compiled: :func:`workers.geometry._douglas_peucker.dp_significance`)."""
    return _douglas_peucker.dp_significance(R.pts, R.off)


def significance(R: _Rings, method: str) -> np.ndarray:
    """Per-vertex significance for a hierarchical method (see module docstring for units)."""
    if method == "douglas_peucker":
        return _dp_significance(R)
    if method == "visvalingam_whyatt":
        return _visvalingam.elimination_significance(R.pts, R.off, False)
    if method == "ratio":
        sig = _visvalingam.elimination_significance(R.pts, R.off, True)
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


# ---------------------------------------------------------------------------------------------
# Validity and repair
# ---------------------------------------------------------------------------------------------


def _assemble(R: _Rings, rings: list[np.ndarray], polys: np.ndarray | None = None) -> list:
    """shapely Polygons for the polygons ``polys`` (default all) from a flat ring list."""
    groups: list[list[np.ndarray]] = [[] for _ in range(R.n_polys)]
    for k, r in enumerate(rings):
        groups[R.poly[k]].append(r)
    idx = range(R.n_polys) if polys is None else polys
    return [shapely.Polygon(groups[i][0], groups[i][1:]) for i in idx]


def invalid_parts(geoms: list[shapely.Polygon]) -> np.ndarray:
    """Indices of polygons that are invalid on their own, or that overlap or share a boundary
    segment with another part (a valid MultiPolygon needs parts touching at points only).
    Finally the parts together must make a valid MultiPolygon: GEOS's exact validity test can
    see a touch that ``relate`` (which snaps) calls a point as a crossing (a vertex a rounding
    error off another part's edge); then every part that touches another counts as invalid."""
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
                if not bad.any() and not shapely.MultiPolygon(list(arr)).is_valid:
                    bad[i] = True
                    bad[j] = True
    return np.flatnonzero(bad)


def _repair(R: _Rings, make: Callable[[int], list[np.ndarray]], n_levels: int) -> list[np.ndarray]:
    """Candidate ``make(0)``; every polygon that is invalid or overlaps another part is
    replaced by its version from ``make(1)``, ``make(2)``, ... and finally by its exact rings
    (``R``), until the whole region is valid. ``make(level)`` returns a flat ring list aligned
    with ``R``'s rings. Validity is decided by the compiled test
    :func:`workers.geometry._edge_contacts.suspect_polygons`, and by GEOS for the polygons that it
    could not clear (touching rings of one polygon, a vertex on another ring's edge)."""
    cache = {0: make(0)}
    rings = list(cache[0])
    exact: list[np.ndarray] | None = None
    level = np.zeros(R.n_polys, dtype=np.int64)
    ring_ids: list[np.ndarray] | None = None
    exterior = _exterior_flags(R)
    for _ in range(n_levels + 3):
        flag = _edge_contacts.suspect_polygons(*_flatten(rings), R.poly, exterior)
        bad = np.flatnonzero(flag == 2)  # wrong orientation, zero area: no GEOS needed
        if not len(bad):
            suspects = np.flatnonzero(flag == 1)
            if not len(suspects):
                return rings
            bad = suspects[invalid_parts(_assemble(R, rings, suspects))]
            if not len(bad):
                return rings
        if ring_ids is None:
            ring_ids = [np.flatnonzero(R.poly == i) for i in range(R.n_polys)]
        level[bad] += 1
        for i in bad:
            lv = int(level[i])
            if lv >= n_levels:
                if exact is None:
                    exact = R.ring_list()
                src = exact
            else:
                if lv not in cache:
                    cache[lv] = make(lv)
                src = cache[lv]
            for k in ring_ids[i]:
                rings[k] = src[k]
    # unreachable in practice: exact pixel outlines are valid and disjoint
    return R.ring_list()


def _exterior_flags(R: _Rings) -> np.ndarray:
    """True for each ring that is its polygon's exterior (the first ring of the polygon)."""
    flags = R.cache.get("exterior")
    if flags is None:
        flags = R.cache["exterior"] = np.concatenate([[True], R.poly[1:] != R.poly[:-1]])
    return flags


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


def _split(flat: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """A flat (pts, off) pair as a ring list (views; plain slices: ``np.split`` costs several
    microseconds per ring)."""
    pts, off = flat
    bounds = off.tolist()
    return [pts[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _edge_moments(base: _Rings) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums over the base edges (edge i: pts[i] -> next vertex of its ring) of the
    exact length-weighted moments [L, Sx, Sy, Sxx, Syy, Sxy] in ring-local coordinates
    (origin = the ring's first vertex, to keep the sums well conditioned), and the origins.
    Cached on ``base``: every candidate of a search reuses them."""
    if "moments" not in base.cache:
        base.cache["moments"] = _candidates.edge_moments(base.pts, base.off)
    return base.cache["moments"]


def _rings_to_dicts(R: _Rings, rings: list[np.ndarray]) -> list[dict]:
    # one tolist for all rings, then list slices: a tolist per ring costs microseconds each
    pts, off = _flatten(rings)
    coords = pts.tolist()
    bounds = off.tolist()
    out: list[dict] = []
    for k, poly in enumerate(R.poly.tolist()):
        ring = coords[bounds[k] : bounds[k + 1]]
        if len(out) <= poly:
            out.append({"exterior": ring, "holes": []})
        else:
            out[poly]["holes"].append(ring)
    return out


class _Outline:
    """A region's outline as flat rings (``pts``, ``off``) for the compiled distance kernel."""

    def __init__(self, geoms: list[shapely.Polygon], step: float):
        rings = [np.asarray(r.coords)[:-1] for g in geoms for r in (g.exterior, *g.interiors)]
        rings = [r for r in rings if len(r)]
        self.pts: np.ndarray
        self.off: np.ndarray
        self.pts, self.off = _flatten(rings) if rings else (np.zeros((0, 2)), np.zeros(1, np.int64))
        self.step = step

    def farthest(self, other: _Outline) -> float:
        """Largest distance from a point of ``other`` (sampled every ``step`` px along it) to
        this outline (:func:`workers.geometry._outline_distance.directed_outline_distance`)."""
        if not len(other.pts) or not len(self.pts):
            return 0.0
        both = np.concatenate([self.pts, other.pts])
        (x0, y0), (x1, y1) = both.min(axis=0), both.max(axis=0)
        return float(
            _outline_distance.directed_outline_distance(
                other.pts, other.off, self.pts, self.off, self.step, x0, y0, x1, y1
            )
        )


def _hausdorff(
    geoms: list[shapely.Polygon], ref: list[shapely.Polygon] | _Outline, step: float = 0.1
) -> float:
    """Upper bound of the symmetric Hausdorff distance (px) between the outlines: outlines are
    sampled every ``step`` px, exact point-to-segment distances are taken (compiled, a grid of
    segments) and ``step / 2`` is added (the distance function is 1-Lipschitz along the
    outline). ``ref`` may be prepared once (:class:`_Outline` with the same step)."""
    if not geoms:
        return 0.0
    a = _Outline(geoms, step)
    b = ref if isinstance(ref, _Outline) else _Outline(ref, step)
    return max(b.farthest(a), a.farthest(b)) + step / 2


class _Evaluator:
    """IoU of candidates against a fixed source region, on the source bounding box."""

    def __init__(self, R: _Rings, source: np.ndarray | None, frame: tuple[int, int] | None):
        # candidates stay within _FIT_MAX_SHIFT px of the input vertices: add a margin
        margin = int(np.ceil(_FIT_MAX_SHIFT)) + 1
        xmin, ymin, xmax, ymax, self.integer = _edge_grid.bbox(R.pts)
        x0, y0 = math.floor(xmin) - margin, math.floor(ymin) - margin
        x1, y1 = math.ceil(xmax) + margin, math.ceil(ymax) + margin
        if frame is not None:
            x0, y0 = max(x0, 0), max(y0, 0)
            x1, y1 = min(x1, frame[1]), min(y1, frame[0])
        self.frame = frame
        self.x0, self.y0 = x0, y0
        self.w, self.h = max(x1 - x0, 0), max(y1 - y0, 0)
        self.R = R
        self._src = None
        if source is None:
            # the source region is the rings' own raster
            self.pref = _winding_iou.row_prefix_of_rings(R.pts, R.off, self.x0, self.y0, self.h, self.w)
        else:
            if source.shape != (self.h, self.w):  # the whole mask: take the window
                source = source[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w]
            self._src = np.ascontiguousarray(source, dtype=bool)
            # row prefix counts: pref[r, c] = source pixels in row r left of column c
            self.pref = _winding_iou.row_prefix(self._src)
        self.src_area = int(self.pref[:, -1].sum()) if self.h else 0

    @property
    def src(self) -> np.ndarray:
        """The source region in the window as a bool mask."""
        if self._src is None:
            self._src = rasterize_rings(self.R.ring_list(), self.x0, self.y0, self.h, self.w)
        return self._src

    def fast_iou(self, rings: list[np.ndarray] | tuple[np.ndarray, np.ndarray]) -> float:
        """IoU from the winding-weighted scanline crossings, in O(crossings) instead of
        O(window area) (:func:`workers.geometry._winding_iou.winding_iou`). Equals :meth:`iou`
        whenever the winding number is 0 or 1 at every pixel centre (any valid region with
        disjoint parts); for self-overlapping candidates it is an estimate."""
        pts, off = rings if isinstance(rings, tuple) else _flatten(rings)
        return _winding_iou.winding_iou(pts, off, self.x0, self.y0, self.h, self.w, self.pref, self.src_area)

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
    ends of each edge's first and last unit steps ("crack midpoints"), collinear points
    dropped. For a pixel outline these points lie halfway between inside and outside pixel
    centres, so staircases become straight lines and far fewer vertices are needed for the
    same IoU."""
    pts, off, _ = PK.midpoint_rings_mapped(R.pts, R.off)
    return _Rings(pts, off, R.poly, R.n_polys)


def _part_offsets(R: _Rings) -> np.ndarray:
    """Ring offsets of the parts: part ``p`` is rings ``[po[p], po[p + 1])`` (rings come part
    by part, the exterior first)."""
    return np.concatenate([np.flatnonzero(_exterior_flags(R)), [len(R.off) - 1]]).astype(np.int64)


class _PartSearch:
    """The per-part bounded search of one region (:func:`_bounded`) and its validity repair."""

    def __init__(self, R: _Rings, frame, min_iou, max_distance, candidates) -> None:
        self.R = R
        self.fh: int
        self.fw: int
        self.fh, self.fw = frame if frame is not None else (0, 0)
        self.min_iou = 0.0 if min_iou is None else float(min_iou)
        self.max_dist = np.inf if max_distance is None else float(max_distance)
        self.po = _part_offsets(R)
        integer = bool(_edge_grid.bbox(R.pts)[4])
        if candidates is None and integer:
            # pixel outlines: crack-midpoint rings, Douglas-Peucker and Visvalingam-Whyatt, both
            # refined by the line fit
            self.bpts, self.boff, self.medge = PK.midpoint_rings_mapped(R.pts, R.off)
            sig_a = _douglas_peucker.dp_significance(self.bpts, self.boff)
            sig_b = _visvalingam.elimination_significance(self.bpts, self.boff, False)
            self.cands = [(sig_a, True, True), (sig_b, False, True)]
            # every base vertex kept = the crack-midpoint rings: IoU 1, within 0.354 px
            self.first_ok = self.max_dist >= 0.36
        else:
            self.bpts, self.boff, self.medge = R.pts, R.off, np.arange(len(R.pts), dtype=np.int64)
            if candidates is None:  # other rings: Douglas-Peucker with and without the line fit
                sig = _douglas_peucker.dp_significance(R.pts, R.off)
                self.cands = [(sig, True, True), (sig, True, False)]
            else:
                self.cands = [
                    (significance(R, m), m == "douglas_peucker", refine) for _, m, refine in candidates
                ]
            self.first_ok = True  # every base vertex kept = the exact rings
        self.P: np.ndarray
        self.origin: np.ndarray
        self.P, self.origin = (
            _candidates.edge_moments(self.bpts, self.boff) if any(c[2] for c in self.cands) else _NO_MOMENTS
        )

    def run(self) -> list[np.ndarray]:
        R, (sa, da, ra) = self.R, self.cands[0]
        sb, db, rb = self.cands[-1]
        pts, off, choice, tol, _, _ = PK.search_parts(
            self.bpts, self.boff, self.medge, R.pts, R.off, self.po, self.P, self.origin,
            sa, da, ra, sb, db, rb, len(self.cands) > 1, self.fh, self.fw, self.min_iou, self.max_dist,
            self.first_ok,
        )  # fmt: skip
        return self._repair(_split((pts, off)), choice, tol, (pts, off))

    def _part(self, p: int, choice: int, t: float) -> list[np.ndarray] | None:
        """Part ``p``'s candidate ``choice`` at tolerance ``t`` as a ring list, or None if it
        breaks a bound."""
        R, r0, r1 = self.R, int(self.po[p]), int(self.po[p + 1])
        ba, bb, ea, eb = self.boff[r0], self.boff[r1], R.off[r0], R.off[r1]
        sig, dp, refine = self.cands[choice]
        pe, pe_off = R.pts[ea:eb], R.off[r0 : r1 + 1] - ea
        win = PK.part_window(R.pts, ea, eb, self.fh, self.fw)
        pref = _winding_iou.row_prefix_of_rings(pe, pe_off, *win)
        P = self.P[ba : bb + 1] if len(self.P) > 1 else self.P
        origin = self.origin[r0:r1] if len(self.P) > 1 else self.origin
        pts, off, iou, dist = PK.part_candidate(  # type: ignore[call-arg]  # a numba dispatcher
            self.bpts[ba:bb], self.boff[r0 : r1 + 1] - ba, sig[ba:bb], t, refine, dp, P, origin,
            self.medge[ba:bb] - ea, pe, pe_off, self.fh, self.fw, *win, pref, int(pref[:, -1].sum()),
        )  # fmt: skip
        if iou < self.min_iou or dist > self.max_dist:
            return None
        return _split((pts, off))

    def _repair(
        self,
        rings: list[np.ndarray],
        choice: np.ndarray,
        tol: np.ndarray,
        flat: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Parts that are invalid or overlap another part step down their tolerance (t/2, t/4,
        t/8, every base vertex) and finally take their exact rings, each step checked against
        both bounds, until the region is valid (exact pixel outlines always are). ``flat``:
        ``rings`` as a flat (pts, off) pair, if at hand (the first check needs no copy)."""
        R = self.R
        exterior = _exterior_flags(R)
        step = np.zeros(R.n_polys, dtype=np.int64)
        n_steps = 5  # t, t/2, t/4, t/8, -1 (every base vertex); then the exact rings
        for _ in range(n_steps + 3):
            flag = _edge_contacts.suspect_polygons(
                *(flat if flat is not None else _flatten(rings)), R.poly, exterior
            )
            flat = None
            bad = np.flatnonzero(flag == 2)  # wrong orientation, zero area: no GEOS needed
            if not len(bad):
                suspects = np.flatnonzero(flag == 1)
                if not len(suspects):
                    return rings
                bad = suspects[invalid_parts(_assemble(R, rings, suspects))]
                if not len(bad):
                    return rings
            for p in bad:
                new = None
                while new is None and choice[p] >= 0 and tol[p] >= 0 and step[p] < n_steps - 1:
                    step[p] += 1
                    t = -1.0 if step[p] == n_steps - 1 else float(tol[p]) / 2 ** step[p]
                    new = self._part(int(p), int(choice[p]), t)
                if new is None:
                    choice[p] = -1
                    new = [R.pts[R.off[k] : R.off[k + 1]] for k in range(self.po[p], self.po[p + 1])]
                rings[self.po[p] : self.po[p + 1]] = new
        return R.ring_list()  # unreachable in practice: exact pixel outlines are valid and disjoint


_NO_MOMENTS = (np.zeros((1, 6)), np.zeros((1, 2)))


def _bounded(
    R: _Rings,
    frame: tuple[int, int] | None,
    min_iou: float | None,
    max_distance: float | None,
    candidates: tuple[tuple[str, str, bool], ...] | None = None,
) -> list[np.ndarray]:
    """Fewest-vertex valid result meeting the bounds on every part, as a flat ring list aligned
    with ``R``.

    Every part (polygon: exterior and holes) is searched on its own
    (:func:`workers.geometry._part_kernels.search_parts`): for each candidate the largest
    tolerance level whose result meets both bounds on that part (IoU against the part's own
    pixels, the distance bound to the part's own exact outline) is found by bisection, and the
    candidate with fewer vertices wins. Candidates: for pixel outlines, Douglas-Peucker and
    Visvalingam-Whyatt on the crack-midpoint rings with the line-fit refinement; for other
    rings, Douglas-Peucker with and without it; ``candidates`` (one method tuned to the bound)
    replaces them, on the exact rings. Parts left invalid or overlapping another are repaired
    part by part (:meth:`_PartSearch._repair`); a part for which nothing meets the bounds keeps
    its exact rings."""
    return _PartSearch(R, frame, min_iou, max_distance, candidates).run()


def _tuned_slope(R: _Rings, ev: _Evaluator, min_iou: float | None, max_distance: float | None) -> list:
    """Slope filtering with the largest cone (degrees, found by bisection in [0, 180]) whose
    validity-repaired result meets the bound(s); the exact rings if none does."""
    exact_geoms = _Outline(_assemble(R, R.ring_list()), 0.1) if max_distance is not None else None

    def result(t: float) -> tuple[list[np.ndarray], bool]:
        rings = _repair(R, lambda i: R.ring_list(_slope.slope_keep(R.pts, R.off, t / 2**i, 1.5, 256)), 6)
        ok = min_iou is None or ev.fast_iou(rings) >= min_iou  # valid: the raster IoU
        if ok and exact_geoms is not None and max_distance is not None:
            ok = _hausdorff(_assemble(R, rings), exact_geoms) <= max_distance
        return rings, ok

    best = R.ring_list()
    lo, hi = 0.0, 180.0
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        rings, ok = result(mid)
        if ok:
            lo, best = mid, rings
        else:
            hi = mid
    return best


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
        tolerance: for every method except ``"bounded"``, unless a bound is given instead
            (0 = no simplification, the input rings are returned re-oriented); units per
            method: Douglas-Peucker px, Visvalingam-Whyatt px^2, slope degrees, ratio unitless
            (fraction of sqrt(part area)).
        min_iou: minimum IoU (0..1] against the input region on the pixel grid (pixel-centre
            rule). For ``"bounded"``, or for another method given no tolerance: its tolerance
            is then tuned (the largest tolerance level whose repaired result meets the bound).
        max_distance: maximum Hausdorff distance in pixels between the input and output
            outlines; used like ``min_iou`` (either or both).
        height, width: optional image size; IoU is then measured inside the image only.

    Returns:
        A list of valid polygons, one per input polygon (same order, same number of holes),
        each ring with >= 3 vertices that are a subset of the input ring's vertices.

    Raises:
        ValueError: unknown method, missing/invalid tolerance or bounds, malformed polygons,
            or input polygons that are invalid or overlap each other.
    """
    frame = check_arguments(method, tolerance, min_iou, max_distance, height, width)
    parsed = parse_polygons(polygons)
    if not parsed:
        return []
    R = _Rings.from_parsed(parsed)
    flag = _edge_contacts.suspect_polygons(R.pts, R.off, R.poly, _exterior_flags(R))
    if flag.any():
        bad = np.flatnonzero(flag == 2)
        if not len(bad):
            suspects = np.flatnonzero(flag == 1)
            bad = suspects[invalid_parts(_assemble(R, R.ring_list(), suspects))]
        if len(bad):
            i = int(bad[0])
            g = shapely.Polygon(parsed[i][0], parsed[i][1])
            if not g.is_valid:
                reason = shapely.is_valid_reason(g)
            else:
                reason = "zero area" if g.area <= 0 else "overlaps another part"
            raise ValueError(
                f"input polygon {i} is not valid ({reason}); simplification needs valid input "
                "(e.g. the output of mask_to_polygons)"
            )
    return _rings_to_dicts(R, simplify_rings(R, method, tolerance, min_iou, max_distance, frame, _source))


def check_arguments(
    method: str,
    tolerance: float | None,
    min_iou: float | None,
    max_distance: float | None,
    height: int | None,
    width: int | None,
) -> tuple[int, int] | None:
    """Check the arguments of :func:`simplify_polygons` (``ValueError`` naming the bad one);
    returns the frame ``(height, width)`` or ``None``."""
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown method {method!r}; expected one of {SIMPLIFIERS}")
    if (height is None) != (width is None):
        raise ValueError("height and width must be given together")
    frame = None
    if height is not None:
        for name, v in (("height", height), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        frame = (int(height), int(width))  # type: ignore[arg-type]
    bound = min_iou is not None or max_distance is not None
    if method == "bounded":
        if tolerance is not None:
            raise ValueError("tolerance is not used by method='bounded'; give min_iou/max_distance")
        if not bound:
            raise ValueError("method='bounded' needs min_iou and/or max_distance")
    elif tolerance is not None:
        if bound:
            raise ValueError(
                f"min_iou/max_distance are only used without a tolerance (they then tune the "
                f"tolerance of {method!r}); give one or the other"
            )
        if not np.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"method {method!r} needs a finite tolerance >= 0, got {tolerance!r}")
    elif not bound:
        raise ValueError(
            f"method {method!r} needs a finite tolerance >= 0, or min_iou/max_distance to tune one"
        )
    if min_iou is not None and not (0.0 < float(min_iou) <= 1.0):
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
    if max_distance is not None and not (np.isfinite(max_distance) and max_distance >= 0):
        raise ValueError(f"max_distance must be a finite number >= 0, got {max_distance!r}")
    return frame


def simplify_rings(
    R: _Rings,
    method: str,
    tolerance: float | None,
    min_iou: float | None,
    max_distance: float | None,
    frame: tuple[int, int] | None,
    source: np.ndarray | None = None,
) -> list[np.ndarray]:
    """:func:`simplify_polygons` on rings already parsed, checked and known valid (e.g. traced
    from a mask); arguments as checked by :func:`check_arguments`. ``source``: the source
    region as a bool mask (the whole ``frame``-sized image, or the evaluator's window), if
    known; otherwise it is rasterized from ``R``. Returns a flat ring list aligned with ``R``."""
    if method == "bounded":
        return _bounded(R, frame, min_iou, max_distance)
    if tolerance is None:  # tune the method's tolerance to the bound
        if method == "slope":
            return _tuned_slope(R, _Evaluator(R, source, frame), min_iou, max_distance)
        return _bounded(R, frame, min_iou, max_distance, candidates=(("exact", method, False),))
    if tolerance == 0:
        return R.ring_list()
    tol = float(tolerance)  # type: ignore[arg-type]
    if method == "slope":

        def make(i: int) -> list[np.ndarray]:
            return R.ring_list(_slope.slope_keep(R.pts, R.off, tol / 2**i, 1.5, 256))

    else:
        sig = significance(R, method)

        def make(i: int) -> list[np.ndarray]:
            return R.ring_list(_candidates.keep_mask(sig, R.off, tol / 2**i))

    return _repair(R, make, 6)
