"""COCO panoptic segmentation.

Layout: `annotations/panoptic_{subset}.json` and `annotations/panoptic_{subset}/{stem}.png` (RGB,
segment id = R + 256 G + 256^2 B, 0 = unlabelled), one per non-empty subset, and, with images,
`images/{subset}/{file_name}`. Conventions:
- categories: `id` = index in the label schema + 1, `isthing` 1 for a "thing" class, 0 for "stuff",
  `color` the project colour as [r, g, b].
- segments: a thing region is one segment; all regions of a stuff class in an image are one segment
  (a panoptic or semantic project has at most one anyway). Segment `id` = 1-based position of the
  segment's first region in the annotation. Regions are painted by `z_order`, then in order (a later
  region covers an earlier one); a segment left with no pixel is not listed.
- `area` = pixel count, `bbox` = [x, y, w, h] of its pixels, `iscrowd` 0.
"""

from __future__ import annotations

import cv2
import numpy as np

from workers.geometry.label_png import encode_id_png

from .base import COORDINATES, ExportFormat, Record, paint_order, region_is_mask, register
from .coco import SUBSETS
from .voc import top_regions


def _window(region: dict, height: int, width: int) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1): where the region's pixels can be (its geometry's bounding box)."""
    if region_is_mask(region):
        return 0, 0, height, width
    xs = [p[0] for poly in region.get("polygons") or [] for p in poly["exterior"]]
    ys = [p[1] for poly in region.get("polygons") or [] for p in poly["exterior"]]
    if not xs:
        return 0, 0, 0, 0
    return (
        max(int(min(ys)), 0),
        max(int(min(xs)), 0),
        min(int(max(ys)) + 1, height),
        min(int(max(xs)) + 1, width),
    )


@register("coco_panoptic")
class CocoPanopticFormat(ExportFormat):
    title = "COCO panoptic segmentation"
    description = "annotations/panoptic_<subset>.json and RGB segment-id PNGs; categories with isthing."

    def begin(self) -> None:
        self.images = {s: self.spool(f"panoptic-images-{s}.json") for s in SUBSETS}
        self.annotations = {s: self.spool(f"panoptic-annotations-{s}.json") for s in SUBSETS}
        self.stuff = set(self.meta.get("stuff") or [])

    def add(self, record: Record) -> int:
        h, w = record.height, record.width
        regions = paint_order(record.regions or [])
        top = top_regions(regions, h, w)
        # segment id of each region position: stuff regions of one class share the first one's
        seg_of = np.zeros(len(regions) + 1, dtype=np.int64)
        first: dict[str, int] = {}
        for k, region in enumerate(regions, start=1):
            label = region["label"]
            seg_of[k] = first.setdefault(label, k) if label in self.stuff else k
        if not first:  # no stuff region: segment id = region position, the image as it is
            seg = top
        elif len(regions) < 256 and top.dtype == np.uint8:  # the usual case: one byte per pixel
            lut = np.zeros(256, dtype=np.uint8)
            lut[: len(regions) + 1] = seg_of
            seg = cv2.LUT(top, lut)
        else:
            seg = seg_of[top]
        segments = []
        windows: dict[int, list[int]] = {}
        for k, region in enumerate(regions, start=1):
            sid = int(seg_of[k])
            y0, x0, y1, x1 = _window(region, h, w)
            box = windows.setdefault(sid, [y0, x0, y1, x1])
            box[:] = [min(box[0], y0), min(box[1], x0), max(box[2], y1), max(box[3], x1)]
        for k, region in enumerate(regions, start=1):
            sid = int(seg_of[k])
            if sid != k:
                continue
            y0, x0, y1, x1 = windows[sid]  # every pixel of the segment lies in its regions' boxes
            sub = seg[y0:y1, x0:x1] == sid
            area = int(np.count_nonzero(sub))
            if not area:
                continue
            rows, cols = np.flatnonzero(sub.any(axis=1)), np.flatnonzero(sub.any(axis=0))
            segments.append({
                "id": sid,
                "category_id": self.class_index[region["label"]] + 1,
                "area": area,
                "bbox": [x0 + int(cols[0]), y0 + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)],
                "iscrowd": 0,
                "attributes": {"labelhub_region_id": region.get("id")},
            })  # fmt: skip
        png_name = f"{record.stem}.png"
        self.writestr(f"annotations/panoptic_{record.subset}/{png_name}", encode_id_png(seg))
        self.images[record.subset].append(
            {"id": record.image_id, "file_name": record.file_name, "width": w, "height": h}
        )
        self.annotations[record.subset].append(
            {"image_id": record.image_id, "file_name": png_name, "segments_info": segments}
        )
        return len(segments)

    def finish(self) -> None:
        categories = []
        for i, name in enumerate(self.classes):
            color = (self.colors[i] if i < len(self.colors) else "") or "#000000"
            categories.append({
                "id": i + 1, "name": name, "supercategory": "", "isthing": 0 if name in self.stuff else 1,
                "color": list(bytes.fromhex(color[1:7])),
            })  # fmt: skip
        info = {
            "description": self.meta.get("description", ""),
            "version": str(self.meta.get("export_id")),
            "coordinates": COORDINATES,
        }
        for subset in SUBSETS:
            images, annotations = self.images[subset], self.annotations[subset]
            if images.count == 0:
                images.close()
                annotations.close()
                continue
            with self.zf.open(f"annotations/panoptic_{subset}.json", "w", force_zip64=True) as out:
                out.write(b'{"info":' + _dumps(info) + b',"licenses":[],"images":[')
                images.copy_into(out)
                out.write(b'],"annotations":[')
                annotations.copy_into(out)
                out.write(b'],"categories":' + _dumps(categories) + b"}")


def _dumps(value) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode()
