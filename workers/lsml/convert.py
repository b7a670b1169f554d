"""Label Studio results <-> LabelHub geometry.

Label Studio's conventions (https://labelstud.io/guide/export#Label-Studio-JSON-format-of-annotated-tasks):
every result names its control (`from_name`), the image (`to_name`), its `type` and the image's
`original_width` / `original_height`; coordinates are percent of the image width and height, measured
from the top-left corner, continuous (a polygon vertex at 50% of a 64-pixel-wide image is x = 32.0
pixel corners, LabelHub's convention too, so the conversion is x_px = x% * W / 100 exactly):
- `polygonlabels`: value.points [[x%, y%], ...] (one ring, no holes);
- `rectanglelabels`: value.x, y (top-left corner), width, height in percent, rotation in degrees
  clockwise about the top-left corner;
- `brushlabels`: value.format "rle", value.rle: the brush RLE of the RGBA image (workers.geometry.brush);
- `keypointlabels`: value.x, y (percent), width (the point's drawn size); in an interactive request's
  context a click carries `is_positive` (true: object, false: background).
A prediction is {"result": [...], "score": float, "model_version": str}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np

from workers.geometry.brush import brush_decode, brush_encode

# One control per kind of result, each name unique (Label Studio refuses a config whose controls
# share a name: "Label config contains non-unique names").
CONTROL_NAMES = {
    "polygonlabels": "polygon",
    "brushlabels": "brush",
    "rectanglelabels": "rectangle",
    "keypointlabels": "keypoint",
}
IMAGE_NAME = "image"
_TAGS = {
    "polygonlabels": "PolygonLabels",
    "brushlabels": "BrushLabels",
    "rectanglelabels": "RectangleLabels",
    "keypointlabels": "KeyPointLabels",
}
_SKIPPED = ("choices", "textarea", "rating", "relation", "number", "taxonomy")
# Percent coordinates a hair outside [0, 100] (float rounding in a backend) are clamped; beyond, refused.
_SLACK = 1e-6


class ResultError(ValueError):
    """A result that cannot become a region: `path` names it (`results[0].result[2].value.points`)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Bounds checked before any geometry is built from a service's answer."""

    max_results: int = 500  # results per image
    max_vertices: int = 20000  # vertices per image, all polygons together
    max_mask_bytes: int = 16 * 1024 * 1024  # brush RLE bytes per image, all masks together


def label_config(classes: list[dict]) -> str:
    """The Label Studio labelling config of a project's classes ({"name", "color", "kinds"}): an
    `Image` named "image" (`$image`), PolygonLabels "polygon" with the classes that have the polygon
    kind, BrushLabels "brush" with those that have the mask kind, and RectangleLabels "rectangle" and
    KeyPointLabels "keypoint" (box and click prompts) with every class. Control names are unique."""
    lines = ["<View>", f'  <Image name="{IMAGE_NAME}" value="$image" zoom="true"/>']
    groups = {
        "polygonlabels": [c for c in classes if "polygon" in c.get("kinds", ["polygon"])],
        "brushlabels": [c for c in classes if "mask" in c.get("kinds", [])],
        "rectanglelabels": classes,
        "keypointlabels": classes,
    }
    for kind, members in groups.items():
        if not members:
            continue
        extra = ' smart="true"' if kind in ("rectanglelabels", "keypointlabels") else ""
        lines.append(f'  <{_TAGS[kind]} name="{CONTROL_NAMES[kind]}" toName="{IMAGE_NAME}"{extra}>')
        for c in members:
            colour = c.get("color") or "#e6194b"
            lines.append(f"    <Label value={quoteattr(c['name'])} background={quoteattr(colour)}/>")
        lines.append(f"  </{_TAGS[kind]}>")
    lines.append("</View>")
    return "\n".join(lines)


def _number(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResultError("a finite number", path)
    return float(value)


def _percent(value, path: str) -> float:
    v = _number(value, path)
    if not -_SLACK <= v <= 100 + _SLACK:
        raise ResultError(f"{v} is out of range: coordinates are percent of the image (0..100)", path)
    return min(max(v, 0.0), 100.0)


def _label(value: dict, kind: str, classes: list[str], path: str) -> str:
    labels = value.get(kind)
    if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
        raise ResultError("one class name per result", f"{path}.value.{kind}")
    if labels[0] not in classes:
        raise ResultError(
            f"unknown class {labels[0]!r}; the project's classes are {classes}", f"{path}.value.{kind}"
        )
    return labels[0]


def _rectangle_corners(value: dict, width: int, height: int, path: str) -> list[list[float]]:
    x = _percent(value.get("x"), f"{path}.value.x")
    y = _percent(value.get("y"), f"{path}.value.y")
    w = _percent(value.get("width"), f"{path}.value.width")
    h = _percent(value.get("height"), f"{path}.value.height")
    if w <= 0 or h <= 0:
        raise ResultError("a rectangle has a positive width and height", f"{path}.value")
    angle = math.radians(_number(value.get("rotation", 0) or 0, f"{path}.value.rotation"))
    x0, y0, bw, bh = x * width / 100.0, y * height / 100.0, w * width / 100.0, h * height / 100.0
    c, s = math.cos(angle), math.sin(angle)  # clockwise on screen (y down) about the top-left corner
    corners = [
        [x0 + dx * c - dy * s, y0 + dx * s + dy * c] for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))
    ]
    for px, py in corners:
        if not (
            -_SLACK * width <= px <= width * (1 + _SLACK) and -_SLACK * height <= py <= height * (1 + _SLACK)
        ):
            raise ResultError("the rectangle reaches outside the image (out of range)", f"{path}.value")
    return corners


def prediction_shapes(
    prediction, *, width: int, height: int, classes: list[str], limits: Limits, path: str = "prediction"
) -> tuple[list[dict], float | None, str | None]:
    """The shapes of one Label Studio prediction for an image of `width` x `height` pixels:
    ([{"type": "polygon", "label", "points": [[x, y], ...] pixels, "score"} | {"type": "box", "label",
    "box": [x0, y0, x1, y1], "corners": 4 points (rotated boxes), "score"} | {"type": "mask", "label",
    "mask": bool (height, width), "score"}], prediction score, model_version).
    Results without geometry (choices, text) are skipped; keypoints are skipped too (prompts, not regions).
    Raises ResultError for anything else that is wrong: wrong image size, out-of-range coordinates, an
    unknown class, too many results, vertices or mask bytes (counted before any geometry is built)."""
    if not isinstance(prediction, dict):
        raise ResultError("a prediction is an object {result, score, model_version}", path)
    results = prediction.get("result")
    if not isinstance(results, list):
        raise ResultError("result is a list", f"{path}.result")
    if len(results) > limits.max_results:
        raise ResultError(f"{len(results)} results; at most {limits.max_results} per image", f"{path}.result")
    vertices = mask_bytes = 0
    for j, result in enumerate(results):  # sizes first, before any geometry
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict):
            raise ResultError("a result is an object with a value object", f"{path}.result[{j}]")
        if isinstance(value.get("points"), list):
            vertices += len(value["points"])
        if isinstance(value.get("rle"), list):
            mask_bytes += len(value["rle"])
    if vertices > limits.max_vertices:
        raise ResultError(
            f"{vertices} polygon vertices; at most {limits.max_vertices} per image", f"{path}.result"
        )
    if mask_bytes > limits.max_mask_bytes:
        raise ResultError(
            f"{mask_bytes} brush RLE bytes; at most {limits.max_mask_bytes} per image", f"{path}.result"
        )
    shapes: list[dict] = []
    for j, result in enumerate(results):
        at = f"{path}.result[{j}]"
        kind = result.get("type")
        if kind in _SKIPPED or kind == "keypointlabels":
            continue
        if kind not in ("polygonlabels", "rectanglelabels", "brushlabels"):
            raise ResultError(f"{kind!r} results cannot become regions", f"{at}.type")
        ow, oh = result.get("original_width", width), result.get("original_height", height)
        if (ow, oh) != (width, height):
            raise ResultError(f"original size {ow}x{oh} is not the image's ({width}x{height})", at)
        value = result["value"]
        label = _label(value, kind, classes, at)
        score = result.get("score", prediction.get("score"))
        score = None if score is None else _number(score, f"{at}.score")
        if kind == "polygonlabels":
            points = value.get("points")
            if not isinstance(points, list) or len(points) < 3:
                raise ResultError("points is a list of at least 3 [x, y] in percent", f"{at}.value.points")
            ring = []
            for k, point in enumerate(points):
                if not isinstance(point, list | tuple) or len(point) != 2:
                    raise ResultError("a point is [x, y]", f"{at}.value.points[{k}]")
                ring.append(
                    [
                        _percent(point[0], f"{at}.value.points[{k}][0]") * width / 100.0,
                        _percent(point[1], f"{at}.value.points[{k}][1]") * height / 100.0,
                    ]
                )
            shapes.append({"type": "polygon", "label": label, "points": ring, "score": score})
        elif kind == "rectanglelabels":
            corners = _rectangle_corners(value, width, height, at)
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            box = [max(min(xs), 0.0), max(min(ys), 0.0), min(max(xs), width), min(max(ys), height)]
            shapes.append({"type": "box", "label": label, "box": box, "corners": corners, "score": score})
        else:
            if value.get("format") != "rle":
                raise ResultError(
                    "brush masks are read in Label Studio's RLE (format 'rle')", f"{at}.value.format"
                )
            try:
                mask = brush_decode(value.get("rle"), height, width)
            except ValueError as exc:
                raise ResultError(f"the brush RLE does not decode: {exc}", f"{at}.value.rle") from exc
            shapes.append({"type": "mask", "label": label, "mask": mask, "score": score})
    score = prediction.get("score")
    score = None if score is None else _number(score, f"{path}.score")
    version = prediction.get("model_version")
    return shapes, score, (str(version)[:200] if version is not None else None)


def _base(kind: str, width: int, height: int, rid: str) -> dict:
    return {"id": rid, "from_name": CONTROL_NAMES[kind], "to_name": IMAGE_NAME, "type": kind,
            "original_width": width, "original_height": height, "image_rotation": 0}  # fmt: skip


def region_results(region: dict, *, width: int, height: int, mask: np.ndarray | None = None) -> list[dict]:
    """A LabelHub region as Label Studio results: one `polygonlabels` per part of a polygon region
    without holes (ids `<id>`, `<id>~1`, ...), else one `brushlabels` of `mask` (the region's pixels,
    bool (height, width), which the caller rasterizes for mask regions and regions with holes)."""
    rid = str(region.get("id") or "")
    extra = {"score": region["score"]} if region.get("score") is not None else {}
    polygons = region.get("polygons") or []
    if mask is not None or region.get("kind") == "mask" or any(p.get("holes") for p in polygons):
        if mask is None:
            raise ValueError("a mask region or a region with holes needs its mask")
        value: dict = {"format": "rle", "rle": brush_encode(mask), "brushlabels": [region["label"]]}
        return [{**_base("brushlabels", width, height, rid), "value": value, **extra}]
    out = []
    for k, polygon in enumerate(polygons):
        points = [[x * 100.0 / width, y * 100.0 / height] for x, y in polygon["exterior"]]
        value = {"points": points, "closed": True, "polygonlabels": [region["label"]]}  # type: ignore[dict-item]
        out.append(
            {
                **_base("polygonlabels", width, height, rid if k == 0 else f"{rid}~{k}"),
                "value": value,
                **extra,
            }
        )
    return out


def box_result(box: list[float], *, label: str, width: int, height: int, rid: str = "box") -> dict:
    """A `rectanglelabels` result of a pixel box [x0, y0, x1, y1]."""
    x0, y0, x1, y1 = box
    value = {"x": x0 * 100.0 / width, "y": y0 * 100.0 / height, "width": (x1 - x0) * 100.0 / width,
             "height": (y1 - y0) * 100.0 / height, "rotation": 0, "rectanglelabels": [label]}  # fmt: skip
    return {**_base("rectanglelabels", width, height, rid), "value": value}


def click_context(
    *, points: list, point_labels: list, box: list | None, label: str, width: int, height: int
) -> dict:
    """An interactive prompt as Label Studio's context (what its frontend sends to a SAM backend):
    {"result": [keypointlabels with is_positive per click, rectanglelabels for the box]}. Pixels in."""
    results = []
    for k, ((x, y), positive) in enumerate(zip(points or [], point_labels or [], strict=True)):
        value = {"x": x * 100.0 / width, "y": y * 100.0 / height, "width": 0.5, "keypointlabels": [label]}
        results.append({**_base("keypointlabels", width, height, f"click{k}"), "value": value,
                        "is_positive": bool(positive), "origin": "manual"})  # fmt: skip
    if box:
        results.append({**box_result(box, label=label, width=width, height=height), "origin": "manual"})
    return {"result": results}
