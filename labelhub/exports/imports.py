"""Imports into a project: COCO instance files and YOLO segmentation labels (as annotations or as
predictions) and zips of images. Every problem of a file is reported at once, with its location
(a JSON path for COCO, `file:line` for YOLO, the entry name for zips); an import is all or nothing.
"""

from __future__ import annotations

import io
import math
import stat
import tempfile
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings
from django.db import transaction

from labelhub.core.errors import DomainError
from labelhub.core.parsers import json_loads_bounded
from labelhub.images.models import Image
from labelhub.images.services import IMPORT_SUFFIXES, IncomingFile, images_add
from labelhub.labeling.models import Annotation
from labelhub.labeling.regions import polygons_clean, regions_clean
from labelhub.labeling.services import annotation_save
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects.models import Project

IMPORT_FORMATS = ("coco", "yolo", "images")
IMPORT_TARGETS = ("annotations", "predictions")
MAX_PROBLEMS = 1000  # a report lists every problem up to this many, then says how many more


@dataclass
class Report:
    problems: list[dict] = field(default_factory=list)
    more: int = 0

    def add(self, path: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"path": path, "message": message})
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self, what: str) -> None:
        if not self.problems:
            return
        count = len(self.problems) + self.more
        details: dict[str, Any] = {"problems": self.problems}
        if self.more:
            details["more_problems"] = self.more
        raise DomainError(
            f"The {what} was refused ({count} problem{'s' if count != 1 else ''}); nothing was imported.",
            field="file",
            code="invalid_import",
            details=details,
        )


@dataclass
class ImportResult:
    format: str
    target: str
    images_created: int = 0
    images_matched: int = 0
    regions: int = 0
    revisions: list[int] = field(default_factory=list)  # ids of the AnnotationRevisions written
    predictions: list[int] = field(default_factory=list)  # ids of the Predictions written
    box_prompts: int = 0  # COCO boxes without segmentation, queued for the segmentation model


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# --- zips ----------------------------------------------------------------------------------------


def zip_members(zf: zipfile.ZipFile, report: Report) -> list[zipfile.ZipInfo]:
    """The regular files of a zip; absolute paths, `..` components, drive letters, links and
    oversized archives are problems (zip slip, zip bombs)."""
    members = []
    total = 0
    for info in zf.infolist():
        name = info.filename
        where = f"zip:{name}"
        parts = name.replace("\\", "/").split("/")
        mode = info.external_attr >> 16
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            report.add(where, "An absolute path in a zip is refused.")
            continue
        if ".." in parts:
            report.add(where, "A path with '..' in a zip is refused (it would escape the target).")
            continue
        if stat.S_ISLNK(mode):
            report.add(where, "A symbolic link in a zip is refused.")
            continue
        if "\x00" in name:
            report.add(where, "A NUL byte in a zip entry name is refused.")
            continue
        if info.is_dir() or (stat.S_IFMT(mode) and not stat.S_ISREG(mode)):  # no type bits: a plain file
            continue
        if parts[0] == "__MACOSX" or PurePosixPath(name).name.startswith("._"):
            continue
        if (
            PurePosixPath(name).suffix.lower() in IMPORT_SUFFIXES
            and info.file_size > settings.LABELHUB_MAX_UPLOAD_BYTES
        ):
            report.add(
                where,
                f"The entry declares {info.file_size} bytes; one image may have {settings.LABELHUB_MAX_UPLOAD_BYTES}.",
            )
            continue
        total += info.file_size
        members.append(info)
    if total > settings.LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES:
        report.add(
            "zip",
            f"The zip expands to {total} bytes; the limit is {settings.LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES}.",
        )
    return members


def zip_entry_copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: BinaryIO, *, limit: int) -> None:
    """Copy one entry to `dst`, refusing it (400 naming the entry) as soon as it passes `limit` bytes or
    the size its header declares, or when its data is corrupt or its CRC does not match: checked while
    extracting, so a lying header never fills the disk."""
    where = f"zip:{info.filename}"
    written = 0
    try:
        with zf.open(info) as src:
            while data := src.read(1 << 20):
                written += len(data)
                if written > min(limit, info.file_size):
                    problem = (
                        f"The entry is larger than the {limit} bytes allowed for one file."
                        if written > limit
                        else f"The entry holds more than the {info.file_size} bytes its header declares."
                    )
                    _refuse_entry(where, problem)
                dst.write(data)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        _refuse_entry(where, f"The entry is corrupt: {exc}")


def zip_entry_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    buf = io.BytesIO()
    zip_entry_copy(zf, info, buf, limit=limit)
    return buf.getvalue()


def _refuse_entry(where: str, message: str) -> None:
    report = Report()
    report.add(where, message)
    report.raise_if_any(f"zip entry '{where[4:]}'")


def open_zip(fh: BinaryIO, report: Report) -> zipfile.ZipFile | None:
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        report.add("$", f"Not a readable zip file: {exc}")
        return None


def _add_zip_images(
    *, project: Project, zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], tmp: Path, user
) -> list[Image]:
    files = []
    for index, info in enumerate(members):
        suffix = PurePosixPath(info.filename).suffix.lower()
        if suffix not in IMPORT_SUFFIXES:
            continue
        target = tmp / f"{index}{suffix}"  # our own name: nothing in the zip decides where it is written
        with open(target, "wb") as dst:
            zip_entry_copy(zf, info, dst, limit=settings.LABELHUB_MAX_UPLOAD_BYTES)
        files.append(IncomingFile(name=PurePosixPath(info.filename).name, path=target))
    if not files:
        return []
    result = images_add(
        project=project,
        files=files,
        user=user,
        field="file",
        max_files=settings.LABELHUB_MAX_IMPORT_FILES,
        presegment=settings.LABELHUB_PRESEGMENT_ON_UPLOAD,
    )
    return result.created


def _delete_files(images: list[Image]) -> None:
    for image in images:
        for f in (image.file, image.thumbnail):
            if f.name:
                f.storage.delete(f.name)


# --- matching images -----------------------------------------------------------------------------


class ProjectImages:
    """The project's images by original name (and by stem, for YOLO)."""

    def __init__(self, project: Project) -> None:
        self.by_name: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        self.by_stem: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for image_id, name, width, height in Image.objects.filter(project=project).values_list(
            "id", "original_name", "width", "height"
        ):
            self.by_name[name].append((image_id, width, height))
            self.by_stem[PurePosixPath(name).stem].append((image_id, width, height))

    def match(
        self, file_name: str, path: str, report: Report, *, stem: bool = False
    ) -> tuple[int, int, int] | None:
        table = self.by_stem if stem else self.by_name
        key = PurePosixPath(file_name.replace("\\", "/")).name
        if stem:
            key = PurePosixPath(key).stem
        found = table.get(file_name) or table.get(key) or []
        if not found:
            report.add(
                path,
                f"No image named {file_name!r} in the project (images are matched by original file name).",
            )
            return None
        if len(found) > 1:
            report.add(
                path, f"{len(found)} images of the project are named {file_name!r}; the match is ambiguous."
            )
            return None
        return found[0]


# --- COCO ----------------------------------------------------------------------------------------


def _coco_rle(seg: dict, at: str, height: int, width: int, report: Report) -> dict | None:
    from pycocotools import mask as coco_mask

    from workers.geometry import rle_to_mask

    size, counts = seg.get("size"), seg.get("counts")
    ok = True
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        report.add(f"{at}.size", "size is [height, width], two integers.")
        ok = False
    elif size != [height, width]:
        report.add(
            f"{at}.size", f"RLE size {size} disagrees with the image ({height}x{width}, as [height, width])."
        )
        ok = False
    if not (isinstance(counts, str) or (isinstance(counts, list) and all(_is_int(v) for v in counts))):
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
        if not isinstance(part, list) or not all(_is_num(v) for v in part):
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
        xs, ys = part[0::2], part[1::2]
        if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height:
            report.add(where, f"A point lies outside the image (0..{width}, 0..{height}).")
            ok = False
            continue
        polygons.append(
            {"exterior": [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)], "holes": []}
        )
    return polygons if ok else None


def _coco_flat(seg: list, height: int, width: int) -> dict:
    """A polygon list that is not valid geometry (self-intersecting), kept as the mask COCO tools draw."""
    from pycocotools import mask as coco_mask

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
        if not _is_int(cid):
            report.add(f"{at}.id", "Missing or not an integer." if "id" in cat else "Missing key 'id'.")
        if not isinstance(name, str):
            report.add(f"{at}.name", "Missing or not a string." if "name" in cat else "Missing key 'name'.")
        elif name not in classes:
            report.add(f"{at}.name", f"Unknown category {name!r}; the project's classes are {classes}.")
        if _is_int(cid) and isinstance(name, str):
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
        for key, check, what in (("id", _is_int, "an integer"), ("file_name", lambda v: isinstance(v, str) and v, "a file name"),
                                 ("width", lambda v: _is_int(v) and v > 0, "a positive integer"),
                                 ("height", lambda v: _is_int(v) and v > 0, "a positive integer")):  # fmt: skip
            if key not in img:
                report.add(f"{at}.{key}", f"Missing key '{key}'.")
                bad = True
            elif not check(img[key]):
                report.add(f"{at}.{key}", f"{key} is {what}.")
                bad = True
        if bad:
            if _is_int(img.get("id")):
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
        if "id" in ann and not _is_int(aid):
            report.add(f"{at}.id", "id is an integer.")
        elif _is_int(aid):
            if aid in seen_ids:
                report.add(f"{at}.id", f"Annotation id {aid} appears twice.")
            seen_ids.add(aid)
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        target = None
        if "image_id" in ann:
            if not _is_int(image_id):
                report.add(f"{at}.image_id", "image_id is an integer.")
            elif image_id not in coco_images:
                report.add(f"{at}.image_id", f"No image with id {image_id} in $.images.")
            else:
                target = coco_images[image_id]
        label = None
        if "category_id" in ann:
            if not _is_int(category_id):
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
        if score is not None and not _is_num(score):
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
        if region is None or target is None or label is None or not _is_int(aid):
            continue
        region.update({"id": f"coco-{aid}", "label": label, "source": source, "score": score})
        where_of[(target[0], len(regions[target[0]]))] = at
        regions[target[0]].append(region)
    if not report:
        _check_regions(
            regions, images, project, report, lambda image_id, index: where_of.get((image_id, index), "$")
        )
    return regions


def _coco_box(bbox: Any, at: str, target: tuple | None, report: Report) -> list[float] | None:
    """COCO [x, y, width, height] as [x0, y0, x1, y1], inside the image and with positive area."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_num(v) for v in bbox):
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


def _check_regions(
    regions: dict[int, list[dict]], images: ProjectImages, project: Project, report: Report, where
) -> None:
    """LabelHub's own validation of the built regions; a problem names the place in the file."""
    sizes = {image_id: (w, h) for found in images.by_name.values() for image_id, w, h in found}
    for image_id, image_regions in regions.items():
        w, h = sizes[image_id]
        for index, region in enumerate(image_regions):
            try:
                regions_clean([region], width=w, height=h, class_names=project.class_names)
            except DomainError as exc:
                report.add(where(image_id, index), exc.message)


# --- YOLO ----------------------------------------------------------------------------------------


def _yolo_region(
    cls: int, ring: list[list[float]], width: int, height: int, label: str, rid: str, source: str
) -> dict | None:
    from workers.geometry import mask_to_polygons, polygons_to_mask

    polygon = {"exterior": ring, "holes": []}
    try:
        polygons = polygons_clean([polygon], "p", width, height)
    except DomainError:
        # A self-touching ring (the "keyhole" that carries holes) or a self-intersecting one: keep its
        # pixels, traced exactly into valid polygons with holes.
        try:
            mask = polygons_to_mask([polygon], height, width)
        except ValueError:
            return None
        polygons = mask_to_polygons(mask)
        if not polygons:
            return None
    return {
        "id": rid,
        "label": label,
        "kind": "polygon",
        "polygons": polygons,
        "source": source,
        "score": None,
    }


def yolo_parse(
    files: list[tuple[str, bytes]], *, project: Project, images: ProjectImages, report: Report, source: str
) -> dict[int, list[dict]]:
    """Regions per project image id from YOLO segmentation label files (name, bytes)."""
    classes = project.class_names
    regions: dict[int, list[dict]] = {}
    for name, data in files:
        found = images.match(PurePosixPath(name).name, name, report, stem=True)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            report.add(name, "Not UTF-8 text.")
            continue
        if found is None:
            continue
        image_id, w, h = found
        if image_id in regions:
            report.add(name, "A second label file for the same image.")
            continue
        out: list[dict] = []
        for n, line in enumerate(text.splitlines(), start=1):
            at = f"{name}:{n}"
            tokens = line.split()
            if not tokens:
                continue
            try:
                cls = int(tokens[0])
            except ValueError:
                report.add(at, f"The class index {tokens[0]!r} is not an integer.")
                continue
            if not 0 <= cls < len(classes):
                report.add(
                    at,
                    f"Class index {cls} is outside the project's classes 0..{len(classes) - 1} ({classes}).",
                )
                continue
            try:
                coords = [float(t) for t in tokens[1:]]
            except ValueError:
                report.add(at, "A coordinate is not a number.")
                continue
            if len(coords) % 2:
                report.add(at, f"A polygon has an odd number of coordinates ({len(coords)}).")
                continue
            if len(coords) < 6:
                report.add(at, f"A polygon needs at least 3 points (6 numbers), got {len(coords)}.")
                continue
            if not all(math.isfinite(c) and -1e-9 <= c <= 1 + 1e-9 for c in coords):
                report.add(at, "Coordinates are normalized: between 0 and 1.")
                continue
            ring = [
                [min(max(x, 0.0), 1.0) * w, min(max(y, 0.0), 1.0) * h]
                for x, y in zip(coords[0::2], coords[1::2], strict=True)
            ]
            region = _yolo_region(cls, ring, w, h, classes[cls], f"yolo-{n}", source)
            if region is None:
                report.add(at, "The polygon covers no pixel.")
                continue
            out.append(region)
        regions[image_id] = out
    return regions


# --- the import ----------------------------------------------------------------------------------


def _write(
    *,
    project: Project,
    regions: dict[int, list[dict]],
    target: str,
    fmt: str,
    user,
    model_name: str,
    result: ImportResult,
) -> None:
    tasks = {
        a.task.image_id: a.task
        for a in Annotation.objects.filter(task__image_id__in=list(regions)).select_related(
            "task__image", "task__project"
        )
    }
    for image_id in sorted(regions):
        image_regions = regions[image_id]
        result.regions += len(image_regions)
        if target == "annotations":
            task = tasks[image_id]
            revision = annotation_save(
                task=task,
                author=user,
                base_revision=task.annotation.current_revision,
                regions=image_regions,
                stage=task.stage,
            )
            result.revisions.append(revision.id)
        else:
            scores = [r["score"] for r in image_regions if r.get("score") is not None]
            task = tasks[image_id]
            cleaned = regions_clean(
                image_regions,
                width=task.image.width,
                height=task.image.height,
                class_names=project.class_names,
            )
            prediction = Prediction.objects.create(
                image_id=image_id,
                model_name=model_name or f"import-{fmt}",
                checkpoint_sha256="none",
                kind="import",
                status=PredictionStatus.OK,
                score=float(np.mean(scores)) if scores else None,
                regions=cleaned,
                attempts=1,
            )
            result.predictions.append(prediction.id)
    result.images_matched = len(regions)


def _queue_box_prompts(image_id: int, boxes: list[dict]) -> None:
    from labelhub.predictions.tasks import presegment_boxes

    transaction.on_commit(lambda: presegment_boxes.delay(image_id, boxes))


def import_file(
    *,
    project: Project,
    fh: BinaryIO,
    file_name: str,
    fmt: str,
    target: str = "annotations",
    user=None,
    model_name: str = "",
) -> ImportResult:
    """Import one uploaded file (a COCO .json, a zip of COCO json + images, a zip of YOLO .txt labels +
    images, a single YOLO .txt, or a zip of images). All or nothing: any problem refuses the whole file."""
    if fmt not in IMPORT_FORMATS:
        raise DomainError(f"format is one of {list(IMPORT_FORMATS)}.", field="format")
    if target not in IMPORT_TARGETS:
        raise DomainError(f"as is one of {list(IMPORT_TARGETS)}.", field="as")
    source = "human" if target == "annotations" else "ai"
    result = ImportResult(format=fmt, target=target)
    report = Report()
    head = fh.read(4)
    fh.seek(0)
    is_zip = head.startswith(b"PK")
    created: list[Image] = []
    try:
        with tempfile.TemporaryDirectory(prefix="labelhub-import-") as tmp, transaction.atomic():
            label_files: list[tuple[str, bytes]] = []
            if is_zip:
                zf = open_zip(fh, report)
                members = zip_members(zf, report) if zf else []
                report.raise_if_any("zip")
                created = _add_zip_images(project=project, zf=zf, members=members, tmp=Path(tmp), user=user)
                result.images_created = len(created)
                wanted = ".json" if fmt == "coco" else ".txt"
                for info in members:
                    path = PurePosixPath(info.filename)
                    if path.suffix.lower() == wanted and not (fmt == "yolo" and path.name == "classes.txt"):
                        label_files.append(
                            (
                                info.filename,
                                zip_entry_read(zf, info, limit=settings.LABELHUB_IMPORT_MAX_BYTES),
                            )
                        )
                if fmt == "images":
                    if not created and not members:
                        report.add("zip", "The zip holds no image files.")
                    report.raise_if_any("zip")
                    return result
                if not label_files:
                    report.add("zip", f"The zip holds no {wanted} label file.")
            elif fmt == "images":
                report.add("$", "An images import is a zip of image files.")
            else:
                label_files.append((file_name or "file", fh.read()))
            report.raise_if_any("file")
            images = ProjectImages(project)
            regions: dict[int, list[dict]] = {}
            boxes: dict[int, list[dict]] = {}
            if fmt == "coco":
                for name, raw in label_files:
                    part = coco_parse(
                        raw, project=project, images=images, report=report, source=source, boxes=boxes
                    )
                    for image_id, image_regions in part.items():
                        if image_id in regions:
                            report.add(name, f"Image {image_id} is annotated by two COCO files.")
                        regions[image_id] = image_regions
            else:
                regions = yolo_parse(
                    label_files, project=project, images=images, report=report, source=source
                )
            report.raise_if_any("file")
            result.box_prompts = sum(map(len, boxes.values()))
            for image_id, image_boxes in boxes.items():
                _queue_box_prompts(image_id, image_boxes)
            _write(
                project=project,
                regions=regions,
                target=target,
                fmt=fmt,
                user=user,
                model_name=model_name,
                result=result,
            )
    except BaseException:
        _delete_files(created)  # the rows rolled back; remove the image files this import stored
        raise
    return result
