"""Validation of annotation regions against their image and the project's label schema.

A region: {"id", "label", "kind": "polygon"|"mask", "polygons": [{"exterior": [[x, y], ...],
"holes": [[[x, y], ...], ...]}], "rle": {"size": [h, w], "counts": str}, "source": "ai"|"human",
"prediction_id", "score", "z_order"}. Coordinates are pixels, origin at the top-left corner of the image,
(x, y) = (column, row) measured on pixel corners, so a polygon lies within [0, width] x [0, height].

In a video task a region is one shape of a track on one frame, with these keys as well: "frame" (the
frame number, within the task's range), "track" (the object's id, the same on every frame of it),
"keyframe" (true: drawn or corrected by a person; false: propagated or interpolated), "outside" (the
object has left the view from this frame), "occluded", and "model" ({"name", "version"}: what propagated
a shape that is not a keyframe). A track keeps one class; a frame holds at most one shape per track; the
stuff and overlap rules of the project apply frame by frame.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from labelhub.core.errors import DomainError

REGION_KEYS = {"id", "label", "kind", "polygons", "rle", "source", "prediction_id", "score", "z_order"}
VIDEO_KEYS = {"frame", "track", "keyframe", "outside", "occluded", "model"}
MAX_REGIONS = 10_000  # a gigapixel slide holds thousands of nuclei (issue 29)
MAX_VERTICES = 200_000


def _ring(points: Any, where: str, width: int, height: int) -> list[list[float]]:
    if not isinstance(points, list):
        raise DomainError("A ring is a list of [x, y] points.", field=where, code="invalid_polygon")
    ring: list[list[float]] = []
    for j, point in enumerate(points):
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in point)
        ):
            raise DomainError(
                "A point is [x, y] with two numbers.", field=f"{where}[{j}]", code="invalid_polygon"
            )
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DomainError(
                "Coordinates must be finite numbers.", field=f"{where}[{j}]", code="invalid_polygon"
            )
        if not (0.0 <= x <= width and 0.0 <= y <= height):
            raise DomainError(
                f"Point ({x}, {y}) lies outside the image (0..{width}, 0..{height}).",
                field=f"{where}[{j}]",
                code="out_of_bounds",
            )
        ring.append([x, y])
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()  # accept closed rings; store them open
    if len({(p[0], p[1]) for p in ring}) < 3:
        raise DomainError("A ring needs at least 3 distinct points.", field=where, code="invalid_polygon")
    return ring


def polygons_clean(polygons: Any, where: str, width: int, height: int) -> list[dict]:
    if not isinstance(polygons, list) or not polygons:
        raise DomainError(
            "polygons is a non-empty list of {exterior, holes}.", field=where, code="invalid_polygon"
        )
    cleaned = []
    for i, poly in enumerate(polygons):
        at = f"{where}[{i}]"
        if not isinstance(poly, dict) or "exterior" not in poly:
            raise DomainError("A polygon is {exterior, holes}.", field=at, code="invalid_polygon")
        unknown = set(poly) - {"exterior", "holes"}
        if unknown:
            raise DomainError(f"Unknown keys: {sorted(unknown)}.", field=at, code="invalid_polygon")
        exterior = _ring(poly["exterior"], f"{at}.exterior", width, height)
        holes_in = poly.get("holes") or []
        if not isinstance(holes_in, list):
            raise DomainError("holes is a list of rings.", field=f"{at}.holes", code="invalid_polygon")
        holes = [_ring(h, f"{at}.holes[{k}]", width, height) for k, h in enumerate(holes_in)]
        shape = Polygon(exterior, holes)
        if not shape.is_valid:
            raise DomainError(
                f"Polygon is not valid geometry: {explain_validity(shape)}.",
                field=at,
                code="self_intersection",
            )
        cleaned.append({"exterior": exterior, "holes": holes})
    return cleaned


def rle_clean(rle: Any, where: str, width: int, height: int) -> dict:
    from workers.geometry import rle_to_mask

    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise DomainError("rle is {size: [height, width], counts}.", field=where, code="invalid_rle")
    if rle["size"] != [height, width]:
        raise DomainError(
            f"rle size {rle['size']} disagrees with the image ({height}x{width}).",
            field=f"{where}.size",
            code="invalid_rle",
        )
    try:
        rle_to_mask(rle)
    except (ValueError, TypeError) as exc:
        raise DomainError(f"rle does not decode: {exc}", field=f"{where}.counts", code="invalid_rle") from exc
    return {"size": [height, width], "counts": rle["counts"]}


def regions_clean(
    regions: Any,
    *,
    width: int,
    height: int,
    class_names: list[str],
    field: str = "regions",
    stuff: set[str] | frozenset[str] = frozenset(),
    exclusive: bool = False,
    class_kinds: dict[str, list[str]] | None = None,
    frames: range | None = None,
) -> list[dict]:
    """Validate and normalize a list of regions; raise DomainError naming the first bad field.

    `class_kinds` (class name -> the kinds it allows): a region of a kind its class does not allow is
    refused naming `regions[i].kind`.
    `frames`: a video task's frame range; each region is then a track's shape on one of those frames.
    `stuff`: classes of which an image holds at most one region. `exclusive` (semantic and panoptic
    projects): no pixel (pixel-centre rule) belongs to two regions unless both carry a `z_order` and
    the two differ (the higher one owns the pixel)."""
    if not isinstance(regions, list):
        raise DomainError("regions is a list.", field=field)
    if len(regions) > MAX_REGIONS:
        raise DomainError(f"At most {MAX_REGIONS} regions per task.", field=field)
    vertices = _vertices_declared(regions)
    if vertices > MAX_VERTICES:  # counted from list lengths alone, before any point is read
        raise DomainError(
            f"At most {MAX_VERTICES} vertices per annotation; this one has {vertices}.",
            field=field,
            code="too_many_vertices",
        )
    cleaned: list[dict] = []
    ids: set[str] = set()
    for i, region in enumerate(regions):
        at = f"{field}[{i}]"
        if not isinstance(region, dict):
            raise DomainError("A region is an object.", field=at)
        unknown = set(region) - REGION_KEYS - (VIDEO_KEYS if frames is not None else set())
        if unknown:
            raise DomainError(f"Unknown keys: {sorted(unknown)}.", field=at)
        region_id = region.get("id") or uuid.uuid4().hex[:12]
        if not isinstance(region_id, str) or len(region_id) > 64:
            raise DomainError("A region id is a string of at most 64 characters.", field=f"{at}.id")
        if region_id in ids:
            raise DomainError(f"Region id '{region_id}' appears twice.", field=f"{at}.id")
        ids.add(region_id)
        label = region.get("label")
        if label not in class_names:
            raise DomainError(
                f"Unknown class {label!r}; the project's classes are {class_names}.",
                field=f"{at}.label",
                code="unknown_class",
            )
        kind = region.get("kind", "polygon")
        if kind not in ("polygon", "mask"):
            raise DomainError("kind is 'polygon' or 'mask'.", field=f"{at}.kind")
        if class_kinds is not None and kind not in class_kinds.get(label, (kind,)):
            raise DomainError(
                f"Class {label!r} is drawn as {' or '.join(class_kinds[label])} only; region {i + 1} "
                f"is a {kind}.",
                field=f"{at}.kind",
                code="kind_not_allowed",
            )
        out: dict[str, Any] = {"id": region_id, "label": label, "kind": kind}
        if "polygons" in region or kind == "polygon":
            out["polygons"] = polygons_clean(region.get("polygons"), f"{at}.polygons", width, height)
        if "rle" in region or kind == "mask":
            out["rle"] = rle_clean(region.get("rle"), f"{at}.rle", width, height)
        source = region.get("source", "human")
        if source not in ("ai", "human"):
            raise DomainError("source is 'ai' or 'human'.", field=f"{at}.source")
        out["source"] = source
        prediction_id = region.get("prediction_id")
        if prediction_id is not None and (
            isinstance(prediction_id, bool) or not isinstance(prediction_id, int)
        ):
            raise DomainError("prediction_id is an integer or null.", field=f"{at}.prediction_id")
        out["prediction_id"] = prediction_id
        score = region.get("score")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
        ):
            raise DomainError("score is a finite number or null.", field=f"{at}.score")
        out["score"] = score
        if "z_order" in region and region["z_order"] is not None:
            z = region["z_order"]
            if isinstance(z, bool) or not isinstance(z, int) or abs(z) > 1_000_000:
                raise DomainError("z_order is an integer (higher is on top) or null.", field=f"{at}.z_order")
            out["z_order"] = z
        if frames is not None:
            _video_clean(region, out, at, frames)
        cleaned.append(out)
    if frames is not None:
        _check_tracks(cleaned, field)
        by_frame: dict[int, list[int]] = {}
        for i, r in enumerate(cleaned):
            by_frame.setdefault(r["frame"], []).append(i)
        for indices in by_frame.values():
            if stuff:
                _check_stuff([cleaned[i] for i in indices], stuff, field)
            if exclusive and len(indices) > 1:
                _check_exclusive([cleaned[i] for i in indices], width, height, field)
        return cleaned
    if stuff:
        _check_stuff(cleaned, stuff, field)
    if exclusive:
        _check_exclusive(cleaned, width, height, field)
    return cleaned


def _video_clean(region: dict, out: dict, at: str, frames: range) -> None:
    frame = region.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise DomainError(
            "frame is the frame number (an integer).", field=f"{at}.frame", code="invalid_frame"
        )
    if frame not in frames:
        raise DomainError(
            f"Frame {frame} is outside this task's frames {frames.start}..{frames.stop - 1}.",
            field=f"{at}.frame",
            code="invalid_frame",
        )
    track = region.get("track")
    if not isinstance(track, str) or not track or len(track) > 64:
        raise DomainError("track is the object's id, a string of 1-64 characters.", field=f"{at}.track")
    out["frame"], out["track"] = frame, track
    for key in ("keyframe", "outside", "occluded"):
        value = region.get(key, out["source"] == "human" if key == "keyframe" else False)
        if not isinstance(value, bool):
            raise DomainError(f"{key} is true or false.", field=f"{at}.{key}")
        out[key] = value
    model = region.get("model")
    if model is not None:
        if (
            not isinstance(model, dict)
            or set(model) != {"name", "version"}
            or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in model.values())
        ):
            raise DomainError("model is {name, version} (two strings).", field=f"{at}.model")
        out["model"] = {"name": model["name"], "version": model["version"]}
    if not out["keyframe"] and out["source"] == "ai" and "model" not in out:
        raise DomainError(
            "A propagated shape names the model that made it ({name, version}).", field=f"{at}.model"
        )


def _check_tracks(regions: list[dict], field: str) -> None:
    labels: dict[str, str] = {}
    seen: set[tuple[str, int]] = set()
    for i, r in enumerate(regions):
        key = (r["track"], r["frame"])
        if key in seen:
            raise DomainError(
                f"Track {r['track']!r} has two shapes on frame {r['frame']}.", field=f"{field}[{i}].frame"
            )
        seen.add(key)
        if labels.setdefault(r["track"], r["label"]) != r["label"]:
            raise DomainError(
                f"Track {r['track']!r} is {labels[r['track']]!r}; a track keeps one class.",
                field=f"{field}[{i}].label",
                code="track_class_changed",
            )


def keyframes_mark(before: list[dict], after: list[dict]) -> list[dict]:
    """A person's write: every track shape they changed or added becomes a keyframe (source "human", no
    model); shapes they left as they were keep what they were."""
    old = {r["id"]: r for r in before}
    marked = []
    for r in after:
        if "track" in r and old.get(r["id"]) != r:
            r = {**r, "keyframe": True, "source": "human"}
            r.pop("model", None)
        marked.append(r)
    return marked


def _check_stuff(regions: list[dict], stuff: set[str] | frozenset[str], field: str) -> None:
    first: dict[str, int] = {}
    for i, region in enumerate(regions):
        label = region["label"]
        if label not in stuff:
            continue
        if label in first:
            raise DomainError(
                f"Class {label!r} is stuff: an image holds at most one region of it ({field}[{first[label]}] "
                "is one already; draw all of it as one region, with several polygons if needed).",
                field=f"{field}[{i}].label",
                code="stuff_repeated",
            )
        first[label] = i


def _region_pixels(region: dict, width: int, height: int) -> tuple[int, int, int, int, Any]:
    """(y0, x0, y1, x1, window) of a region's pixels: its bounding box and the boolean pixels in it."""
    m = region_mask(region, height, width)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(rows):
        return 0, 0, 0, 0, m[:0, :0]
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return y0, x0, y1, x1, m[y0:y1, x0:x1]


def _check_exclusive(regions: list[dict], width: int, height: int, field: str) -> None:
    """Refuse two regions sharing a pixel, unless an explicit z_order resolves it."""
    boxes = [_region_pixels(r, width, height) for r in regions]
    for j in range(1, len(regions)):
        bj = boxes[j]
        for i in range(j):
            bi = boxes[i]
            y0, x0 = max(bi[0], bj[0]), max(bi[1], bj[1])
            y1, x1 = min(bi[2], bj[2]), min(bi[3], bj[3])
            if y1 <= y0 or x1 <= x0:
                continue
            a = bi[4][y0 - bi[0] : y1 - bi[0], x0 - bi[1] : x1 - bi[1]]
            b = bj[4][y0 - bj[0] : y1 - bj[0], x0 - bj[1] : x1 - bj[1]]
            shared = int((a & b).sum())
            if not shared:
                continue
            zi, zj = regions[i].get("z_order"), regions[j].get("z_order")
            if zi is not None and zj is not None and zi != zj:
                continue
            raise DomainError(
                f"Region {regions[j]['id']!r} shares {shared} pixel(s) with {field}[{i}] "
                f"({regions[i]['id']!r}); in a semantic or panoptic project a pixel belongs to one region. "
                "Remove the overlap, or give both regions different z_order values (higher is on top).",
                field=f"{field}[{j}]",
                code="overlapping_regions",
            )


def _vertices_declared(regions: list) -> int:
    """How many points the regions' rings hold, from the lengths of their lists (malformed parts count
    as nothing here; the full validation names them)."""
    total = 0
    for region in regions:
        polygons = region.get("polygons") if isinstance(region, dict) else None
        for poly in polygons if isinstance(polygons, list) else ():
            if not isinstance(poly, dict):
                continue
            holes = poly.get("holes")
            rings = [poly.get("exterior"), *(holes if isinstance(holes, list) else ())]
            total += sum(len(r) for r in rings if isinstance(r, list))
    return total


def regions_diff(before: list[dict], after: list[dict]) -> dict[str, list[str]]:
    """Which region ids were added, removed or changed between two revisions."""
    old = {r["id"]: r for r in before}
    new = {r["id"]: r for r in after}
    return {
        "added": [i for i in new if i not in old],
        "removed": [i for i in old if i not in new],
        "changed": [i for i in new if i in old and new[i] != old[i]],
    }


def region_mask(region: dict, height: int, width: int) -> np.ndarray:
    """The region's pixels as a (height, width) bool mask: its RLE for a mask region, else its
    rasterized polygons (pixel-centre rule), else any RLE it carries; empty otherwise. The one
    precedence used by exports, gold scoring and the metrics."""
    from workers.geometry import polygons_to_mask, rle_to_mask

    if region.get("kind") == "mask" and region.get("rle"):
        return rle_to_mask(region["rle"]).astype(bool, copy=False)
    if region.get("polygons"):
        return polygons_to_mask(region["polygons"], height, width)
    if region.get("rle"):
        return rle_to_mask(region["rle"]).astype(bool, copy=False)
    return np.zeros((height, width), dtype=bool)


def label_map(regions: list[dict], *, classes: list[str], height: int, width: int) -> np.ndarray:
    """``(H, W)`` int64 map: 0 background, i+1 for ``classes[i]``; later regions paint over earlier ones.
    The one rasterisation of an annotation for training (learning) and scoring (qa)."""
    out = np.zeros((height, width), dtype=np.int64)
    index = {name: i + 1 for i, name in enumerate(classes)}
    for region in regions or []:
        c = index.get(region.get("label"))
        if c is not None:
            out[region_mask(region, height, width)] = c
    return out
