"""Semantic mask PNGs.

Layout: `masks/{subset}/{stem}.png` (8-bit grayscale), `classes.txt` (`value name`, one a line,
`0 background` first) and, with images, `images/{subset}/{file_name}`. A pixel holds 0 for
background and (index of its class in the label schema) + 1; regions are painted in order, so the
later of two overlapping regions wins. Pixels are the exact rasterization of the stored geometry.
At most 255 classes.
"""

from __future__ import annotations

from .base import ExportFormat, Record, paint, png_bytes, register


@register("masks")
class SemanticMaskFormat(ExportFormat):
    title = "Semantic mask PNGs"
    description = "masks/<subset>/<stem>.png, pixel value = class index + 1, 0 = background."

    def begin(self) -> None:
        if len(self.classes) > 255:
            raise ValueError(f"Semantic masks hold at most 255 classes; the project has {len(self.classes)}.")

    def add(self, record: Record) -> int:
        mask = paint(
            record.regions, record.height, record.width, lambda i, r: self.class_index[r["label"]] + 1
        )
        self.writestr(f"masks/{record.subset}/{record.stem}.png", png_bytes(mask))
        return len(record.regions)

    def finish(self) -> None:
        lines = ["0 background", *(f"{i + 1} {name}" for i, name in enumerate(self.classes))]
        self.writestr("classes.txt", "\n".join(lines) + "\n")
