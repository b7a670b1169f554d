"""Semantic mask PNGs.

Layout: `masks/{subset}/{stem}.png` (8-bit grayscale), `classes.txt` (`value name`, one a line,
`0 background` first) and, with images, `images/{subset}/{file_name}`. A pixel holds 0 for
background and (index of its class in the label schema) + 1; regions are painted in order, so the
later of two overlapping regions wins. Pixels are the exact rasterization of the stored geometry.
At most 255 classes.
"""

from __future__ import annotations

from workers.geometry.label_png import encode_label_png

from .base import ExportFormat, Record, register
from .voc import class_image, top_regions


@register("masks")
class SemanticMaskFormat(ExportFormat):
    title = "Semantic mask PNGs"
    description = "masks/<subset>/<stem>.png, pixel value = class index + 1, 0 = background."

    def begin(self) -> None:
        if len(self.classes) > 255:
            raise ValueError(f"Semantic masks hold at most 255 classes; the project has {len(self.classes)}.")

    def render(self, path: str, regions: list[dict], h: int, w: int) -> list[tuple[str, bytes]]:
        mask = class_image(top_regions(regions, h, w), regions, self.class_index)
        return [(path, encode_label_png(mask))]

    def add(self, record: Record) -> int:
        regions = record.regions or []
        path = f"masks/{record.subset}/{record.stem}.png"
        for name, data in self.render(path, regions, record.height, record.width):
            self.writestr(name, data)
        return len(regions)

    def finish(self) -> None:
        lines = ["0 background", *(f"{i + 1} {name}" for i, name in enumerate(self.classes))]
        self.writestr("classes.txt", "\n".join(lines) + "\n")
