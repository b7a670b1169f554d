"""Pascal VOC segmentation.

Layout: `SegmentationClass/{stem}.png` and `SegmentationObject/{stem}.png` (palette PNGs with VOC's
colour map), `ImageSets/Segmentation/{train,val,test}.txt` (stems, one a line), `labelmap.txt`
(`name:r,g,b::`, background first) and, with images, `JPEGImages/{file_name}`.
Conventions: in SegmentationClass a pixel holds 0 for background and (index of its class in the
label schema) + 1; in SegmentationObject it holds 0 for background and the 1-based position of its
region in the annotation. Regions are painted in order, so where regions overlap the later one wins.
Pixels are the exact rasterization of the stored geometry (pixel centre inside the polygon, or the
mask's RLE). No 255 "void" border is drawn. VOC allows at most 254 classes and 254 objects per image:
a project with more classes is refused; regions after the 254th are left out of SegmentationObject.
"""

from __future__ import annotations

from .base import ExportFormat, Record, paint_layers, png_bytes, register, voc_palette

MAX_INDEX = 254


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
        self.lists = {
            s: open(self.tmpdir / f"voc-{s}.txt", "w", encoding="utf-8") for s in ("train", "val", "test")
        }  # noqa: SIM115

    def add(self, record: Record) -> int:
        h, w = record.height, record.width
        cls, obj = paint_layers(
            record.regions,
            h,
            w,
            lambda i, r: self.class_index[r["label"]] + 1,
            lambda i, r: i + 1 if i < MAX_INDEX else None,
        )
        self.writestr(f"SegmentationClass/{record.stem}.png", png_bytes(cls, self.palette))
        self.writestr(f"SegmentationObject/{record.stem}.png", png_bytes(obj, self.palette))
        self.lists[record.subset].write(record.stem + "\n")
        return len(record.regions)

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
