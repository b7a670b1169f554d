"""The format registry, both directions. Exports: what every export format shares (the record it is
given per image, a JSON-array spool on disk so that no format holds a whole dataset in memory, region
geometry). Imports: the problem report, matching file names to the project's images and the final
validation of the regions a format parser built. A format module registers its writer with
`@register(name)` and its parser with `@register_import(name, ...)`."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from labelhub.core.errors import DomainError
from labelhub.images.models import Image
from labelhub.projects.models import Project
from labelhub.regions.validation import regions_clean
from workers.geometry import mask_to_polygons, rle_to_mask
from workers.geometry.area import ring_signed_area
from workers.geometry.raster import rasterize_flat

FORMATS: dict[str, type[ExportFormat]] = {}

# Stated in every export's manifest (and in the formats' own metadata where they have a place for it).
COORDINATES = (
    "pixels, origin at the top-left corner of the image, x = column, y = row, measured on pixel corners: "
    "pixel (row r, column c) covers [c, c+1] x [r, r+1]; a pixel belongs to a polygon when its centre "
    "(c + 0.5, r + 0.5) lies inside it (non-zero winding); masks are exact per pixel"
)


def register(name: str) -> Callable[[type[ExportFormat]], type[ExportFormat]]:
    """Class decorator: make a format available under `name` (the API's `format` value)."""

    def wrap(cls: type[ExportFormat]) -> type[ExportFormat]:
        if name in FORMATS:
            raise ValueError(f"export format {name!r} registered twice")
        cls.name = name
        FORMATS[name] = cls
        return cls

    return wrap


@dataclass
class Record:
    """One image of an export with the regions of its snapshot revision (already filtered by class)."""

    image_id: int
    task_id: int
    revision_number: int
    file_name: str  # unique within the export
    width: int
    height: int
    subset: str  # train | val | test
    regions: list[dict] | None = field(default_factory=list)  # None when only regions_json is given
    regions_json: str | None = None  # the regions as stored, JSON text (formats with raw_regions)
    sha256: str = ""
    stage: str = ""  # the stage the snapshot revision was saved in
    original_name: str = ""

    @property
    def stem(self) -> str:
        return Path(self.file_name).stem


class ExportFormat:
    """Writes one dataset archive. `add` is called once per image in image-id order; `finish` once.

    A format never keeps an archive entry open between calls (image files are written in between):
    what it must assemble at the end it spools to files under `tmpdir`.
    """

    name: str = ""
    title: str = ""
    description: str = ""
    # True: the format copies regions verbatim and is given `record.regions_json` (text) instead of
    # `record.regions` when no class filter applies, so the hot loop never decodes/encodes them.
    raw_regions: bool = False
    # Where the image file of a record goes in the archive.
    image_dir: str = "images/{subset}"

    def __init__(
        self, *, zf: zipfile.ZipFile, classes: list[str], colors: list[str], tmpdir: Path, meta: dict
    ):
        self.zf = zf
        self.classes = classes
        self.colors = colors
        self.class_index = {name: i for i, name in enumerate(classes)}
        self.tmpdir = tmpdir
        self.meta = meta

    def begin(self) -> None:
        pass

    def add(self, record: Record) -> int:
        """Write what belongs to one image; return the number of regions written."""
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def image_path(self, record: Record) -> str:
        return f"{self.image_dir.format(subset=record.subset)}/{record.file_name}"

    def writestr(self, name: str, data: bytes | str) -> None:
        self.zf.writestr(name, data)

    def spool(self, name: str) -> JsonArraySpool:
        return JsonArraySpool(self.tmpdir / name)


class JsonArraySpool:
    """Items of a JSON array appended one by one to a file on disk, copied into the archive later."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.count = 0

    def append_raw(self, text: str) -> None:
        """Append an item that is already JSON text."""
        if self.count:
            self.fh.write(",")
        self.fh.write(text)
        self.count += 1

    def append(self, item: Any) -> None:
        if self.count:
            self.fh.write(",")
        self.fh.write(json.dumps(item, separators=(",", ":")))
        self.count += 1

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()

    def copy_into(self, out: IO[bytes], chunk: int = 1 << 20) -> None:
        self.close()
        with open(self.path, "rb") as src:
            while data := src.read(chunk):
                out.write(data)
        os.unlink(self.path)


def temp_dir(base: str | None = None) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="labelhub-export-", dir=base or None)


# --- geometry ------------------------------------------------------------------------------------


def region_is_mask(region: dict) -> bool:
    return region.get("kind") == "mask" and bool(region.get("rle"))


def region_has_holes(region: dict) -> bool:
    return any(p.get("holes") for p in region.get("polygons") or [])


def region_polygons(region: dict, height: int, width: int) -> list[dict]:
    """The region as polygons: as stored for a polygon region, traced exactly from the mask otherwise."""
    if region_is_mask(region):
        return mask_to_polygons(rle_to_mask(region["rle"]))
    return region.get("polygons") or []


def _oriented_rings(polygons: list[dict]) -> list[np.ndarray]:
    """Stored (already validated) polygons as rings for `rasterize_flat`: exteriors counter-clockwise
    (positive area), holes clockwise, as :func:`workers.geometry.raster.parse_polygons` orients them."""
    rings = []
    for polygon in polygons:
        ext = np.asarray(polygon["exterior"], dtype=np.float64)
        rings.append(ext if ring_signed_area(ext) >= 0 else ext[::-1])
        for hole in polygon.get("holes") or []:
            h = np.asarray(hole, dtype=np.float64)
            rings.append(h if ring_signed_area(h) <= 0 else h[::-1])
    return rings


def region_window(region: dict, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """(y0, x0, window): the region's pixels inside its bounding box, clipped to the image. Same
    pixels as :func:`region_mask` (pixel-centre rule, non-zero winding), rasterized only where the
    polygon is."""
    if region_is_mask(region):
        return 0, 0, rle_to_mask(region["rle"])
    rings = _oriented_rings(region.get("polygons") or [])
    if not rings:
        return 0, 0, np.zeros((0, 0), dtype=bool)
    points = np.concatenate(rings)
    x0 = max(int(np.floor(points[:, 0].min())), 0)
    y0 = max(int(np.floor(points[:, 1].min())), 0)
    x1 = min(int(np.ceil(points[:, 0].max())), width)
    y1 = min(int(np.ceil(points[:, 1].max())), height)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, np.zeros((0, 0), dtype=bool)
    offsets = np.zeros(len(rings) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rings], out=offsets[1:])
    return y0, x0, rasterize_flat(points, offsets, x0, y0, y1 - y0, x1 - x0)


def paint_layers(
    regions: list[dict], height: int, width: int, *value_of: Callable[[int, dict], int | None]
) -> list[np.ndarray]:
    """uint8 label images, one per `value_of`: each region painted in order (a later region covers an
    earlier one) with the value that function gives it (None: not painted). Each region is rasterized
    once, in its bounding box."""
    layers = [np.zeros((height, width), dtype=np.uint8) for _ in value_of]
    for i, region in enumerate(regions):
        y0, x0, window = region_window(region, height, width)
        if window.size == 0:
            continue
        h, w = window.shape
        for layer, fn in zip(layers, value_of, strict=True):
            value = fn(i, region)
            if value is not None:
                layer[y0 : y0 + h, x0 : x0 + w][window] = value
    return layers


def paint_order(regions: list[dict]) -> list[dict]:
    """Regions in the order they are painted: by `z_order` (absent = 0), then as stored; a later
    region covers an earlier one."""
    if not any(r.get("z_order") for r in regions):
        return regions
    return sorted(regions, key=lambda r: r.get("z_order") or 0)


def paint(
    regions: list[dict], height: int, width: int, value_of: Callable[[int, dict], int | None]
) -> np.ndarray:
    """A uint8 label image: each region painted in order (a later region covers an earlier one)."""
    return paint_layers(regions, height, width, value_of)[0]


def png_bytes(array: np.ndarray, palette: list[int] | None = None) -> bytes:
    """A PNG of a uint8 label image: palette mode ("P") when a palette is given, grayscale ("L") otherwise."""
    import io

    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))  # mode "L"
    if palette is not None:
        img.putpalette(palette)  # "L" becomes "P" with the same indices
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # fast deflate: the archive is deflated again anyway
    return buf.getvalue()


def voc_palette() -> list[int]:
    """Pascal VOC's 256-colour palette (index 0 black, 1 maroon, ..., 255 = (224, 224, 192) void)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


# --- imports -------------------------------------------------------------------------------------

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


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# Label Studio prefixes a file's name with 8 hex digits: `<8 hex>-<name>` for an uploaded file, and
# `<8 hex>__<name>` (an MD5 of its URL) for a file its exports name from a task's image URL.
LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}(?:-|__)")


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
        if not found and not stem and LS_UPLOAD_PREFIX.match(key):
            # Label Studio's exports name an uploaded file `../media/upload/<project>/<8 hex>-<name>` (its
            # JSON in data.image, its COCO export in file_name), and its COCO export names an image it has
            # by URL `images/<8 hex>__<name>`: the original name follows the prefix.
            found = table.get(LS_UPLOAD_PREFIX.sub("", key)) or []
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


def check_regions(
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


# A parser: (label files as (name, bytes), project, images, report, source, boxes) -> regions per image id.
Parser = Callable[..., dict[int, list[dict]]]


@dataclass(frozen=True)
class ImportFormat:
    """The import direction of a format: which files of an upload are its label files, and their parser."""

    name: str
    label_suffix: str  # label files in a zip end with this (".json", ".txt")
    parse: Parser
    ignore_names: tuple[str, ...] = ()  # label-suffixed files that are not labels (YOLO's classes.txt)
    repairable: bool = False  # the parser takes `repairs` (the import's `repair` option, see repair.py)

    def is_label_file(self, name: str) -> bool:
        path = PurePosixPath(name)
        return path.suffix.lower() == self.label_suffix and path.name not in self.ignore_names


IMPORT_FORMATS: dict[str, ImportFormat] = {}


def register_import(
    name: str, *, label_suffix: str, ignore_names: tuple[str, ...] = (), repairable: bool = False
) -> Callable[[Parser], Parser]:
    """Function decorator: make `fn` the parser of import format `name` (the API's `format` value)."""

    def wrap(fn: Parser) -> Parser:
        if name in IMPORT_FORMATS:
            raise ValueError(f"import format {name!r} registered twice")
        IMPORT_FORMATS[name] = ImportFormat(name, label_suffix, fn, ignore_names, repairable)
        return fn

    return wrap


def files_parse_merged(files, parse, what: str, report, **kwargs) -> dict[int, list[dict]]:
    """Regions per project image id from several dataset files (name, bytes), each read by `parse`; an
    image annotated by two files is a problem, and the merged regions are checked against the project
    once every file parsed cleanly."""
    regions: dict[int, list[dict]] = {}
    for name, raw in files:
        for image_id, image_regions in parse(raw, report=report, **kwargs).items():
            if image_id in regions:
                report.add(name, f"Image {image_id} is annotated by two {what} files.")
            regions[image_id] = image_regions
    if not report:
        check_regions(
            regions, kwargs["images"], kwargs["project"], report, lambda i, k: f"image {i}: region {k}"
        )
    return regions
