"""COCO instance segmentation.

Layout: `annotations/instances_{train,val,test}.json` (one file per non-empty subset) and, with images,
`images/{subset}/{file_name}`. Conventions:
- categories: `id` = index in the project's label schema + 1, `name` = class name, `supercategory` "".
- images: `id` = LabelHub image id, `file_name` (unique in the export), `width`, `height`.
- annotations: `id` counts from 1 across the export; a polygon region without holes is written as
  COCO polygons (one flat `[x1, y1, x2, y2, ...]` list per part, pixel-corner coordinates as stored);
  a region with holes (COCO polygons cannot express them) or a mask region is written as compressed
  RLE (`{"size": [h, w], "counts": str}`) of its exact pixels. `iscrowd` is 0 for every region: each
  LabelHub region is one object, never a crowd; COCO readers (pycocotools, detectron2) decode RLE with
  iscrowd 0. `area` = pixel count for RLE, shoelace area for polygons; `bbox` = [x, y, w, h] of the
  geometry. Extra keys: `attributes.labelhub_region_id`, and `score` for AI regions that have one.

Both arrays are streamed: each image and annotation is appended to a file on disk as it comes, and the
JSON document is assembled from those files at the end.
"""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as coco_mask

from .base import ExportFormat, Record, region_has_holes, region_is_mask, region_mask, register

SUBSETS = ("train", "val", "test")


def shoelace(flat: list[float]) -> float:
    x = np.asarray(flat[0::2], dtype=np.float64)
    y = np.asarray(flat[1::2], dtype=np.float64)
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0)


def region_to_coco(region: dict, height: int, width: int) -> dict:
    """segmentation, area and bbox of one region."""
    if region_is_mask(region) or region_has_holes(region):
        if region_is_mask(region) and isinstance(region["rle"].get("counts"), str):
            rle = {"size": [height, width], "counts": region["rle"]["counts"].encode("ascii")}
        else:
            m = region_mask(region, height, width)
            rle = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
        area = float(coco_mask.area(rle))
        bbox = [float(v) for v in coco_mask.toBbox(rle)]
        return {
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "area": area,
            "bbox": bbox,
        }
    parts = []
    area = 0.0
    xs_min, ys_min, xs_max, ys_max = float("inf"), float("inf"), float("-inf"), float("-inf")
    for poly in region.get("polygons") or []:
        ring = poly["exterior"]
        flat = [float(v) for point in ring for v in point]
        parts.append(flat)
        xs, ys = flat[0::2], flat[1::2]
        # shoelace, in plain Python: faster than numpy for a few dozen vertices
        area += (
            abs(
                sum(
                    x0 * y1 - x1 * y0
                    for x0, y0, x1, y1 in zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True)
                )
            )
            / 2.0
        )
        xs_min, xs_max = min(xs_min, min(xs)), max(xs_max, max(xs))
        ys_min, ys_max = min(ys_min, min(ys)), max(ys_max, max(ys))
    bbox = [xs_min, ys_min, xs_max - xs_min, ys_max - ys_min] if parts else [0.0, 0.0, 0.0, 0.0]
    return {"segmentation": parts, "area": area, "bbox": bbox}


@register("coco")
class CocoFormat(ExportFormat):
    title = "COCO instance segmentation"
    description = "annotations/instances_<subset>.json; polygons, RLE for regions with holes and masks."

    def begin(self) -> None:
        self.images = {s: self.spool(f"coco-images-{s}.json") for s in SUBSETS}
        self.annotations = {s: self.spool(f"coco-annotations-{s}.json") for s in SUBSETS}
        self.next_id = 1

    def add(self, record: Record) -> int:
        subset = record.subset
        self.images[subset].append(
            {
                "id": record.image_id,
                "file_name": record.file_name,
                "width": record.width,
                "height": record.height,
            }
        )
        spool = self.annotations[subset]
        for region in record.regions:
            ann = {
                "id": self.next_id,
                "image_id": record.image_id,
                "category_id": self.class_index[region["label"]] + 1,
                "iscrowd": 0,
                **region_to_coco(region, record.height, record.width),
                "attributes": {"labelhub_region_id": region.get("id")},
            }
            if region.get("score") is not None:
                ann["score"] = region["score"]
            spool.append(ann)
            self.next_id += 1
        return len(record.regions)

    def finish(self) -> None:
        categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(self.classes)]
        info = {"description": self.meta.get("description", ""), "version": str(self.meta.get("export_id"))}
        for subset in SUBSETS:
            images, annotations = self.images[subset], self.annotations[subset]
            if images.count == 0:
                images.close()
                annotations.close()
                continue
            with self.zf.open(f"annotations/instances_{subset}.json", "w", force_zip64=True) as out:
                out.write(b'{"info":' + json.dumps(info).encode() + b',"licenses":[],"categories":')
                out.write(json.dumps(categories, separators=(",", ":")).encode())
                out.write(b',"images":[')
                images.copy_into(out)
                out.write(b'],"annotations":[')
                annotations.copy_into(out)
                out.write(b"]}")
