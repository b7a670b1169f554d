"""YOLO segmentation (Ultralytics layout).

Layout: `labels/{subset}/{stem}.txt` (one per image, empty when the image has no region), `data.yaml`
(`names` in label-schema order, `train`/`val`/`test` image folders) and, with images,
`images/{subset}/{file_name}`. A line is `class x1 y1 x2 y2 ...`: class = index in the label schema
(0-based), coordinates divided by the image width/height (0..1, 6 decimals), pixel-corner convention
as stored, ring open. Each polygon of a region is one line. A polygon with holes is written as one ring
that walks to each hole along a zero-width cut and around it in the opposite direction (the usual
"keyhole" of Ultralytics' mask converter), so it covers the same pixels under both the even-odd and
the non-zero fill rule. Mask regions are traced exactly into polygons first.
"""

from __future__ import annotations

import json

import numpy as np

from .base import ExportFormat, Record, region_polygons, register


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def keyhole(polygon: dict) -> list[list[float]]:
    """One ring for a polygon: the exterior (positive area) with each hole (negative) spliced in."""
    if not polygon.get("holes"):
        return polygon["exterior"]
    ring = np.asarray(polygon["exterior"], dtype=np.float64)
    if _signed_area(ring) < 0:
        ring = ring[::-1]
    for hole in polygon["holes"]:
        h = np.asarray(hole, dtype=np.float64)
        if _signed_area(h) > 0:
            h = h[::-1]
        d = ((ring[:, None, :] - h[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        h = np.roll(h, -j, axis=0)
        ring = np.concatenate([ring[: i + 1], h, h[:1], ring[i:]])
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
            for polygon in region_polygons(region, record.height, record.width):
                lines.append(yolo_line(cls, keyhole(polygon), record.width, record.height))
        self.writestr(f"labels/{record.subset}/{record.stem}.txt", "".join(line + "\n" for line in lines))
        return len(record.regions)

    def finish(self) -> None:
        names = "\n".join(f"  {i}: {json.dumps(name)}" for i, name in enumerate(self.classes))
        self.writestr(
            "data.yaml",
            f"path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnc: {len(self.classes)}\nnames:\n{names}\n",
        )
