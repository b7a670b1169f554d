"""YOLO segmentation (Ultralytics layout).

Layout: `labels/{subset}/{stem}.txt` (one per image, empty when the image has no region), `data.yaml`
(`names` in label-schema order, `train`/`val`/`test` image folders) and, with images,
`images/{subset}/{file_name}`. A line is `class x1 y1 x2 y2 ...`: class = index in the label schema
(0-based), coordinates divided by the image width/height (0..1, 6 decimals), pixel-corner convention
as stored, ring open. One line per region (one instance), as Ultralytics' COCO converter writes a
multi-part object (`merge_multi_segment`): the parts are joined into one ring by zero-width bridges
between their closest vertices, walked out and back. A hole is bridged the same way and walked in the
opposite direction (the usual "keyhole"), so the ring covers the region's pixels under both the
even-odd and the non-zero fill rule. Mask regions are traced exactly into polygons first.
"""

from __future__ import annotations

import json

import numpy as np

from .base import ExportFormat, Record, region_polygons, register


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _bridge(ring: np.ndarray, part: np.ndarray) -> np.ndarray:
    """`ring` with `part` spliced in at their closest vertices: out along a zero-width bridge, around
    `part` and back (Ultralytics' `min_index` + `merge_multi_segment` join)."""
    d = ((ring[:, None, :] - part[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    part = np.roll(part, -j, axis=0)
    return np.concatenate([ring[: i + 1], part, part[:1], ring[i:]])


def keyhole(polygon: dict) -> list[list[float]]:
    """One ring for a polygon: the exterior (positive area) with each hole (negative) spliced in."""
    if not polygon.get("holes"):
        return polygon["exterior"]
    return _keyhole_array(polygon).tolist()


def _keyhole_array(polygon: dict) -> np.ndarray:
    ring = np.asarray(polygon["exterior"], dtype=np.float64)
    if _signed_area(ring) < 0:
        ring = ring[::-1]
    for hole in polygon.get("holes") or []:
        h = np.asarray(hole, dtype=np.float64)
        if _signed_area(h) > 0:
            h = h[::-1]
        ring = _bridge(ring, h)
    return ring


def merged_ring(polygons: list[dict]) -> list[list[float]]:
    """One ring for a whole region: each part keyholed, then the parts bridged one to the next."""
    if len(polygons) == 1:
        return keyhole(polygons[0])
    ring = _keyhole_array(polygons[0])
    for polygon in polygons[1:]:
        ring = _bridge(ring, _keyhole_array(polygon))
    return ring.tolist()


def yolo_line(class_index: int, ring: list[list[float]], width: int, height: int) -> str:
    sx, sy = 1.0 / width, 1.0 / height
    flat = [v for x, y in ring for v in (x * sx, y * sy)]
    return f"{class_index} " + " ".join(["%.6f"] * len(flat)) % tuple(flat)


@register("yolo")
class YoloSegFormat(ExportFormat):
    title = "YOLO segmentation"
    description = "labels/<subset>/<stem>.txt with normalized polygons, data.yaml with class names."

    def add(self, record: Record) -> int:
        lines = []
        for region in record.regions:
            cls = self.class_index[region["label"]]
            polygons = region_polygons(region, record.height, record.width)
            if polygons:
                lines.append(yolo_line(cls, merged_ring(polygons), record.width, record.height))
        self.writestr(f"labels/{record.subset}/{record.stem}.txt", "".join(line + "\n" for line in lines))
        return len(record.regions)

    def finish(self) -> None:
        names = "\n".join(f"  {i}: {json.dumps(name)}" for i, name in enumerate(self.classes))
        self.writestr(
            "data.yaml",
            f"path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnc: {len(self.classes)}\nnames:\n{names}\n",
        )
