"""Polygons interpolated between two keyframes of a track: each ring resampled to the same number of
points by arc length, started at the point nearest the other ring's start, then blended linearly
(CVAT does the same for its polygon tracks). Parts and holes pair up by order; a frame between two
keyframes whose part counts differ takes the nearer keyframe's polygons."""

from __future__ import annotations

import numpy as np


def _resample(ring: np.ndarray, n: int) -> np.ndarray:
    closed = np.vstack([ring, ring[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    cum = np.concatenate([[0], np.cumsum(seg)])
    at = np.linspace(0, cum[-1], n, endpoint=False)
    return np.stack([np.interp(at, cum, closed[:, 0]), np.interp(at, cum, closed[:, 1])], 1)


def _pair(a: list, b: list, t: float) -> list[list[float]]:
    ra, rb = np.asarray(a, float), np.asarray(b, float)
    n = max(len(ra), len(rb))
    ra, rb = _resample(ra, n), _resample(rb, n)
    shift = int(np.argmin(np.hypot(*(rb - ra[0]).T)))
    rb = np.roll(rb, -shift, axis=0)
    return ((1 - t) * ra + t * rb).round(3).tolist()


def interpolate_polygons(a: list[dict], b: list[dict], t: float) -> list[dict]:
    """The polygons a fraction `t` (0..1) of the way from keyframe polygons `a` to `b`."""
    if len(a) != len(b) or any(
        len(p.get("holes") or []) != len(q.get("holes") or []) for p, q in zip(a, b, strict=False)
    ):
        return a if t < 0.5 else b
    out = []
    for p, q in zip(a, b, strict=True):
        out.append(
            {
                "exterior": _pair(p["exterior"], q["exterior"], t),
                "holes": [
                    _pair(h, k, t) for h, k in zip(p.get("holes") or [], q.get("holes") or [], strict=True)
                ],
            }
        )
    return out


def track_fill(shapes: list[dict]) -> list[dict]:
    """A track's shapes with the frames between two consecutive polygon keyframes (with no shape of
    their own) filled by interpolation; filled shapes are not keyframes and name the model
    "interpolation". `shapes` are one track's, any order; the result is in frame order."""
    by_frame = {s["frame"]: s for s in shapes}
    keys = sorted(
        f for f, s in by_frame.items() if s.get("keyframe") and s.get("polygons") and s.get("kind") != "mask"
    )
    for f0, f1 in zip(keys, keys[1:], strict=False):
        a, b = by_frame[f0], by_frame[f1]
        if a.get("outside"):
            continue
        for f in range(f0 + 1, f1):
            if f in by_frame:
                continue
            t = (f - f0) / (f1 - f0)
            by_frame[f] = {
                **{k: v for k, v in a.items() if k not in ("rle",)},
                "id": f"{a['track']}-{f}",
                "frame": f,
                "polygons": interpolate_polygons(a["polygons"], b["polygons"], t),
                "keyframe": False,
                "source": "ai",
                "model": {"name": "interpolation", "version": "1"},
            }
    return [by_frame[f] for f in sorted(by_frame)]
