"""YOLO segmentation (Ultralytics layout), both directions: the export writer and the import parser.

Layout: `labels/{subset}/{stem}.txt` (one per image, empty when the image has no region), `data.yaml`
(`names` in label-schema order, the image folders of the subsets held; see `data_yaml`) and, with images,
`images/{subset}/{file_name}`. A line is `class x1 y1 x2 y2 ...`: class = index in the label schema
(0-based), coordinates divided by the image width/height (0..1, 6 decimals), pixel-corner convention
as stored, ring open. One line per region (one instance), as Ultralytics' COCO converter writes a
multi-part object (`merge_multi_segment`): the parts are joined into one ring by zero-width bridges
between their closest vertices, walked out and back. A hole is bridged the same way and walked in the
opposite direction (the usual "keyhole"), so the ring covers the region's pixels under both the
even-odd and the non-zero fill rule. Mask regions are traced exactly into polygons first.

Import: `.txt` label files matched to images by stem (`classes.txt` is not a label file); a
self-touching ring (the keyhole) or a self-intersecting one keeps its pixels, traced exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePosixPath

import numpy as np

from labelhub.core.errors import DomainError
from labelhub.projects.models import Project
from labelhub.regions.validation import polygons_clean
from workers.geometry import mask_to_polygons, polygons_to_mask
from workers.geometry.area import ring_signed_area

from .base import ExportFormat, ProjectImages, Record, Report, region_polygons, register, register_import


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
    if ring_signed_area(ring) < 0:
        ring = ring[::-1]
    for hole in polygon.get("holes") or []:
        h = np.asarray(hole, dtype=np.float64)
        if ring_signed_area(h) > 0:
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

    def begin(self) -> None:
        self.subsets: set[str] = set()

    def add(self, record: Record) -> int:
        self.subsets.add(record.subset)
        lines = []
        for region in record.regions:
            cls = self.class_index[region["label"]]
            polygons = region_polygons(region, record.height, record.width)
            if polygons:
                lines.append(yolo_line(cls, merged_ring(polygons), record.width, record.height))
        self.writestr(f"labels/{record.subset}/{record.stem}.txt", "".join(line + "\n" for line in lines))
        return len(record.regions)

    def finish(self) -> None:
        self.writestr("data.yaml", data_yaml(self.classes, self.subsets))


def data_yaml(classes: list[str], subsets: set[str]) -> str:
    """Ultralytics' dataset file for the subsets the archive holds. No `path`: Ultralytics'
    `check_det_dataset` then resolves the folders against the yaml's own folder (`path: .` would be the
    caller's working directory). `train` and `val` are required there: an archive without a val subset
    names its train folder for both, as Ultralytics' single-folder datasets do; `test` only when held."""
    held = [s for s in ("train", "val", "test") if s in subsets] or ["train"]
    folders = {s: f"images/{s}" for s in held}
    folders.setdefault("val", folders.get("train", f"images/{held[0]}"))
    folders.setdefault("train", folders["val"])
    lines = [f"{key}: {folders[key]}" for key in ("train", "val", "test") if key in folders]
    names = "\n".join(f"  {i}: {json.dumps(name)}" for i, name in enumerate(classes))
    return "\n".join(lines) + f"\nnc: {len(classes)}\nnames:\n{names}\n"


# --- import --------------------------------------------------------------------------------------


def _yolo_region(
    cls: int, ring: list[list[float]], width: int, height: int, label: str, rid: str, source: str
) -> dict | None:
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


@register_import("yolo", label_suffix=".txt", ignore_names=("classes.txt",))
def yolo_import(
    files: list[tuple[str, bytes]],
    *,
    project: Project,
    images: ProjectImages,
    report: Report,
    source: str,
    boxes: dict[int, list[dict]],  # noqa: ARG001 - YOLO has no box-only annotations
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
