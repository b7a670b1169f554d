"""Pascal VOC segmentation.

Layout: `SegmentationClass/{stem}.png` and `SegmentationObject/{stem}.png` (palette PNGs with VOC's
colour map), `ImageSets/Segmentation/{train,val,test}.txt` and the same lists in `ImageSets/Main/`
(stems, one a line: Datumaro's and other `voc` readers start from Main), `labelmap.txt`
(`name:r,g,b::`, background first) and, with images, `JPEGImages/{file_name}`.
Conventions: in SegmentationClass a pixel holds 0 for background and (index of its class in the
label schema) + 1; in SegmentationObject it holds 0 for background and the 1-based position of its
region in the annotation. Regions are painted in order, so where regions overlap the later one wins.
Pixels are the exact rasterization of the stored geometry (pixel centre inside the polygon, or the
mask's RLE). No 255 "void" border is drawn. VOC allows at most 254 classes and 254 objects per image:
a project with more classes is refused; regions after the 254th are left out of SegmentationObject.
"""

from __future__ import annotations

import cv2
import numpy as np

from workers.geometry import rle_to_mask
from workers.geometry.label_png import encode_label_png
from workers.geometry.raster import label_regions

from .base import ExportFormat, Record, paint_order, region_is_mask, register, voc_palette

MAX_INDEX = 254


def top_regions(regions: list[dict], height: int, width: int) -> np.ndarray:
    """Painter's order in one pass: pixel = 1-based position of the last region covering it, 0 for
    none (uint8 up to 255 regions, uint16 above). Polygon regions are rasterized together
    (:func:`workers.geometry.raster.label_regions`, the exact pixel-centre rule of
    :func:`workers.geometry.polygons_to_mask`), mask regions are their RLE."""
    top = label_regions(
        [None if region_is_mask(r) else (r.get("polygons") or []) for r in regions], height, width
    )
    for i, region in enumerate(regions):
        if region_is_mask(region):
            m = rle_to_mask(region["rle"])[:height, :width]
            view = top[: m.shape[0], : m.shape[1]]
            # a later polygon region (higher number) still covers this one
            np.maximum(view, m * top.dtype.type(i + 1), out=view)
    return top


def class_image(top: np.ndarray, regions: list[dict], class_index: dict[str, int]) -> np.ndarray:
    """uint8 class image of a :func:`top_regions` image: class index + 1 of the region, 0 = none."""
    lut = np.zeros(max(len(regions) + 1, 256), dtype=np.uint8)
    lut[1 : len(regions) + 1] = [class_index[r["label"]] + 1 for r in regions]
    if top.dtype == np.uint8:
        return cv2.LUT(top, lut)  # same as lut[top], several times faster
    return lut[top]


@register("voc")
class VocFormat(ExportFormat):
    title = "Pascal VOC segmentation"
    description = "SegmentationClass and SegmentationObject palette PNGs, ImageSets/Segmentation lists."
    image_dir = "JPEGImages"

    def image_path(self, record: Record) -> str:
        return f"JPEGImages/{record.file_name}"

    def begin(self) -> None:
        if len(self.classes) > MAX_INDEX:
            raise ValueError(
                f"Pascal VOC holds at most {MAX_INDEX} classes; the project has {len(self.classes)}."
            )
        self.palette = voc_palette()
        self.palette_bytes = bytes(self.palette)
        self.lists = {
            s: open(self.tmpdir / f"voc-{s}.txt", "w", encoding="utf-8") for s in ("train", "val", "test")
        }  # noqa: SIM115

    def render(self, stem: str, regions: list[dict], h: int, w: int) -> list[tuple[str, bytes]]:
        regions = paint_order(regions)
        top = top_regions(regions, h, w)
        cls = class_image(top, regions, self.class_index)
        # regions after the MAX_INDEX-th are left out of SegmentationObject
        obj = top if len(regions) <= MAX_INDEX else top_regions(regions[:MAX_INDEX], h, w)
        return [
            (f"SegmentationClass/{stem}.png", encode_label_png(cls, self.palette_bytes)),
            (f"SegmentationObject/{stem}.png", encode_label_png(obj, self.palette_bytes)),
        ]

    def add(self, record: Record) -> int:
        regions = record.regions or []
        for name, data in self.render(record.stem, regions, record.height, record.width):
            self.writestr(name, data)
        self.lists[record.subset].write(record.stem + "\n")
        return len(regions)

    def finish(self) -> None:
        p = self.palette
        lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
        for i, name in enumerate(self.classes):
            r, g, b = p[3 * (i + 1) : 3 * (i + 2)]
            lines.append(f"{name}:{r},{g},{b}::")
        self.writestr("labelmap.txt", "\n".join(lines) + "\n")
        for subset, fh in self.lists.items():
            fh.close()
            self.zf.write(fh.name, f"ImageSets/Segmentation/{subset}.txt")
            self.zf.write(fh.name, f"ImageSets/Main/{subset}.txt")
