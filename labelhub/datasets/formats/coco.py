"""COCO instance segmentation, both directions: the export writer and the import parser.

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

Import: `instances*.json` files (polygons, RLE as string or counts list); an annotation with a `bbox`
and no segmentation becomes a box prompt for the segmentation model. Polygon coordinates are read
rounded to 1e-9 px (as the Label Studio importer reads its percent): a file whose pixels were computed
from percent, as Label Studio's COCO export computes `x% / 100 * width`, carries float noise such as
49.99999999999999 for 50, which would move a pixel centre lying on an edge across it. Every problem is
reported with its JSON path.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from labelhub.core.errors import DomainError
from labelhub.core.parsers import json_loads_bounded
from labelhub.projects.models import Project
from labelhub.regions.validation import polygons_clean, region_mask
from workers.geometry.area import ring_signed_area

from .base import (
    ExportFormat,
    ProjectImages,
    Record,
    Report,
    check_regions,
    is_int,
    is_num,
    region_has_holes,
    region_is_mask,
    register,
    register_import,
)

SUBSETS = ("train", "val", "test")


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
        area += abs(ring_signed_area(ring))
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


# --- import --------------------------------------------------------------------------------------


@register_import("coco", label_suffix=".json")
def coco_import(
    files: list[tuple[str, bytes]],
    *,
    project: Project,
    images: ProjectImages,
    report: Report,
    source: str,
    boxes: dict[int, list[dict]],
) -> dict[int, list[dict]]:
    """Regions per project image id from one or more COCO instance files (name, bytes)."""
    regions: dict[int, list[dict]] = {}
    for name, raw in files:
        part = coco_parse(raw, project=project, images=images, report=report, source=source, boxes=boxes)
        for image_id, image_regions in part.items():
            if image_id in regions:
                report.add(name, f"Image {image_id} is annotated by two COCO files.")
            regions[image_id] = image_regions
    return regions


def _coco_rle(seg: dict, at: str, height: int, width: int, report: Report) -> dict | None:
    from workers.geometry import rle_to_mask

    size, counts = seg.get("size"), seg.get("counts")
    ok = True
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        report.add(f"{at}.size", "size is [height, width], two integers.")
        ok = False
    elif size != [height, width]:
        report.add(
            f"{at}.size", f"RLE size {size} disagrees with the image ({height}x{width}, as [height, width])."
        )
        ok = False
    if not (isinstance(counts, str) or (isinstance(counts, list) and all(is_int(v) for v in counts))):
        report.add(f"{at}.counts", "counts is a compressed RLE string or a list of integers.")
        ok = False
    if not ok:
        return None
    try:
        rle_to_mask({"size": size, "counts": counts})
    except (ValueError, TypeError) as exc:
        report.add(f"{at}.counts", f"RLE does not decode: {exc}")
        return None
    if isinstance(counts, list):
        counts = coco_mask.frPyObjects({"size": size, "counts": counts}, height, width)["counts"].decode(
            "ascii"
        )
    return {"size": [height, width], "counts": counts}


def _coco_polygons(seg: list, at: str, height: int, width: int, report: Report) -> list[dict] | None:
    if not seg:
        report.add(at, "segmentation is an empty list.")
        return None
    polygons = []
    ok = True
    for k, part in enumerate(seg):
        where = f"{at}[{k}]"
        if not isinstance(part, list) or not all(is_num(v) for v in part):
            report.add(where, "A polygon is a flat list of numbers [x1, y1, x2, y2, ...].")
            ok = False
            continue
        if len(part) % 2:
            report.add(where, f"A polygon has an odd number of coordinates ({len(part)}).")
            ok = False
            continue
        if len(part) < 6:
            report.add(where, f"A polygon needs at least 3 points (6 numbers), got {len(part)}.")
            ok = False
            continue
        xs, ys = [round(float(x), 9) for x in part[0::2]], [round(float(y), 9) for y in part[1::2]]
        if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height:
            report.add(where, f"A point lies outside the image (0..{width}, 0..{height}).")
            ok = False
            continue
        polygons.append({"exterior": [[x, y] for x, y in zip(xs, ys, strict=True)], "holes": []})
    return polygons if ok else None


def _coco_flat(seg: list, height: int, width: int) -> dict:
    """A polygon list that is not valid geometry (self-intersecting), kept as the mask COCO tools draw."""
    rle = coco_mask.merge(coco_mask.frPyObjects(seg, height, width))
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def coco_parse(
    raw: bytes,
    *,
    project: Project,
    images: ProjectImages,
    report: Report,
    source: str,
    boxes: dict[int, list[dict]] | None = None,
) -> dict[int, list[dict]]:
    """Regions per project image id from a COCO instances document; problems go to `report`.
    An annotation with a `bbox` and no (or an empty) `segmentation` is a box prompt for the segmentation
    model: it goes to `boxes` ({image id: [{"label", "box": [x0, y0, x1, y1]}]}) instead."""
    try:
        doc = json_loads_bounded(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("$", f"Not valid JSON: {exc}")
        return {}
    if not isinstance(doc, dict):
        report.add("$", "A COCO file is a JSON object.")
        return {}
    lists = {}
    for key in ("images", "annotations", "categories"):
        value = doc.get(key)
        if key not in doc:
            report.add(f"$.{key}", f"Missing key '{key}'.")
        elif not isinstance(value, list):
            report.add(f"$.{key}", f"'{key}' is a list.")
        else:
            lists[key] = value
    classes = project.class_names
    categories: dict[int, str] = {}
    for i, cat in enumerate(lists.get("categories", [])):
        at = f"$.categories[{i}]"
        if not isinstance(cat, dict):
            report.add(at, "A category is an object.")
            continue
        cid, name = cat.get("id"), cat.get("name")
        if not is_int(cid):
            report.add(f"{at}.id", "Missing or not an integer." if "id" in cat else "Missing key 'id'.")
        if not isinstance(name, str):
            report.add(f"{at}.name", "Missing or not a string." if "name" in cat else "Missing key 'name'.")
        elif name not in classes:
            report.add(f"{at}.name", f"Unknown category {name!r}; the project's classes are {classes}.")
        if is_int(cid) and isinstance(name, str):
            if cid in categories:
                report.add(f"{at}.id", f"Category id {cid} appears twice.")
            elif name in classes:
                categories[cid] = name
    coco_images: dict[int, tuple[int, int, int] | None] = {}  # coco image id -> (project image id, w, h)
    for i, img in enumerate(lists.get("images", [])):
        at = f"$.images[{i}]"
        if not isinstance(img, dict):
            report.add(at, "An image is an object.")
            continue
        bad = False
        for key, check, what in (("id", is_int, "an integer"), ("file_name", lambda v: isinstance(v, str) and v, "a file name"),
                                 ("width", lambda v: is_int(v) and v > 0, "a positive integer"),
                                 ("height", lambda v: is_int(v) and v > 0, "a positive integer")):  # fmt: skip
            if key not in img:
                report.add(f"{at}.{key}", f"Missing key '{key}'.")
                bad = True
            elif not check(img[key]):
                report.add(f"{at}.{key}", f"{key} is {what}.")
                bad = True
        if bad:
            if is_int(img.get("id")):
                coco_images[img["id"]] = None
            continue
        if img["id"] in coco_images:
            report.add(f"{at}.id", f"Image id {img['id']} appears twice.")
            continue
        found = images.match(img["file_name"], f"{at}.file_name", report)
        coco_images[img["id"]] = found
        if found and (found[1], found[2]) != (img["width"], img["height"]):
            report.add(
                at,
                f"Size {img['width']}x{img['height']} disagrees with the project's image ({found[1]}x{found[2]}).",
            )
            coco_images[img["id"]] = None
    regions: dict[int, list[dict]] = {found[0]: [] for found in coco_images.values() if found}
    where_of: dict[tuple[int, int], str] = {}  # (project image id, region index) -> JSON path
    seen_ids: set[int] = set()
    for i, ann in enumerate(lists.get("annotations", [])):
        at = f"$.annotations[{i}]"
        if not isinstance(ann, dict):
            report.add(at, "An annotation is an object.")
            continue
        box_only = ann.get("segmentation") in (None, []) and "bbox" in ann and boxes is not None
        for key in ("id", "image_id", "category_id") + (() if box_only else ("segmentation",)):
            if key not in ann:
                report.add(f"{at}.{key}", f"Missing key '{key}'.")
        aid = ann.get("id")
        if "id" in ann and not is_int(aid):
            report.add(f"{at}.id", "id is an integer.")
        elif is_int(aid):
            if aid in seen_ids:
                report.add(f"{at}.id", f"Annotation id {aid} appears twice.")
            seen_ids.add(aid)
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        target = None
        if "image_id" in ann:
            if not is_int(image_id):
                report.add(f"{at}.image_id", "image_id is an integer.")
            elif image_id not in coco_images:
                report.add(f"{at}.image_id", f"No image with id {image_id} in $.images.")
            else:
                target = coco_images[image_id]
        label = None
        if "category_id" in ann:
            if not is_int(category_id):
                report.add(f"{at}.category_id", "category_id is an integer.")
            else:
                label = categories.get(category_id)
                if label is None and not any(
                    isinstance(c, dict) and c.get("id") == category_id for c in lists.get("categories", [])
                ):
                    report.add(
                        f"{at}.category_id", f"Unknown category id {category_id}: not in $.categories."
                    )
        if "iscrowd" in ann and ann["iscrowd"] not in (0, 1):
            report.add(f"{at}.iscrowd", "iscrowd is 0 or 1.")
        score = ann.get("score")
        if score is not None and not is_num(score):
            report.add(f"{at}.score", "score is a finite number.")
            score = None
        seg = ann.get("segmentation")
        if box_only:
            box = _coco_box(ann["bbox"], f"{at}.bbox", target, report)
            if box is not None and label is not None:
                boxes.setdefault(target[0], []).append({"label": label, "box": box})
            continue
        if "segmentation" not in ann:
            continue
        h, w = (target[2], target[1]) if target else (None, None)
        region: dict[str, Any] | None = None
        if isinstance(seg, dict):
            if target is None:
                continue
            rle = _coco_rle(seg, f"{at}.segmentation", h, w, report)
            if rle is not None:
                region = {"kind": "mask", "rle": rle}
        elif isinstance(seg, list):
            if target is None:
                # still check the shape of the numbers, so that every problem is listed at once
                _coco_polygons(seg, f"{at}.segmentation", 1 << 30, 1 << 30, report)
                continue
            polygons = _coco_polygons(seg, f"{at}.segmentation", h, w, report)
            if polygons is not None:
                try:
                    polygons_clean(polygons, "p", w, h)
                    region = {"kind": "polygon", "polygons": polygons}
                except DomainError:  # self-intersecting or degenerate: keep the pixels COCO tools draw
                    region = {"kind": "mask", "rle": _coco_flat(seg, h, w)}
        else:
            report.add(f"{at}.segmentation", "segmentation is a list of polygons or an RLE object.")
        if region is None or target is None or label is None or not is_int(aid):
            continue
        region.update({"id": f"coco-{aid}", "label": label, "source": source, "score": score})
        where_of[(target[0], len(regions[target[0]]))] = at
        regions[target[0]].append(region)
    if not report:
        check_regions(
            regions, images, project, report, lambda image_id, index: where_of.get((image_id, index), "$")
        )
    return regions


def _coco_box(bbox: Any, at: str, target: tuple | None, report: Report) -> list[float] | None:
    """COCO [x, y, width, height] as [x0, y0, x1, y1], inside the image and with positive area."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_num(v) for v in bbox):
        report.add(at, "bbox is [x, y, width, height] with four numbers.")
        return None
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        report.add(at, "bbox has no area.")
        return None
    if target is not None and (x < 0 or y < 0 or x + w > target[1] or y + h > target[2]):
        report.add(at, f"bbox lies outside the image ({target[1]}x{target[2]}).")
        return None
    return None if target is None else [x, y, x + w, y + h]
