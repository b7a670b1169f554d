"""Semantic mask PNGs.

Layout: `masks/{subset}/{stem}.png` (8-bit palette PNGs: the index is the class, the palette shows
each class in its project colour), `classes.txt` (`value name`, one a line, `0 background` first),
`labelmap.txt` (`name:r,g,b::`, the same colours) and, with images, `images/{subset}/{file_name}`.
A pixel holds 0 for background and (index of its class in the label schema) + 1; regions are painted
by `z_order` then in order, so the later of two overlapping regions wins. Pixels are the exact rasterization of the stored geometry.
At most 255 classes.
"""

from __future__ import annotations

from workers.geometry.label_png import encode_label_png

from .base import ExportFormat, Record, paint_order, register, voc_palette
from .voc import class_image, top_regions


@register("masks")
class SemanticMaskFormat(ExportFormat):
    title = "Semantic mask PNGs"
    description = "masks/<subset>/<stem>.png, pixel value = class index + 1, 0 = background."

    def begin(self) -> None:
        if len(self.classes) > 255:
            raise ValueError(f"Semantic masks hold at most 255 classes; the project has {len(self.classes)}.")
        self.palette = class_palette(self.colors)

    def render(self, path: str, regions: list[dict], h: int, w: int) -> list[tuple[str, bytes]]:
        regions = paint_order(regions)
        mask = class_image(top_regions(regions, h, w), regions, self.class_index)
        return [(path, encode_label_png(mask, self.palette))]

    def add(self, record: Record) -> int:
        regions = record.regions or []
        path = f"masks/{record.subset}/{record.stem}.png"
        for name, data in self.render(path, regions, record.height, record.width):
            self.writestr(name, data)
        return len(regions)

    def finish(self) -> None:
        lines = ["0 background", *(f"{i + 1} {name}" for i, name in enumerate(self.classes))]
        self.writestr("classes.txt", "\n".join(lines) + "\n")
        p = self.palette
        labelmap = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
        labelmap += [
            f"{name}:{p[3 * i + 3]},{p[3 * i + 4]},{p[3 * i + 5]}::" for i, name in enumerate(self.classes)
        ]
        self.writestr("labelmap.txt", "\n".join(labelmap) + "\n")


def class_palette(colors: list[str]) -> bytes:
    """A 256-colour palette: 0 black, class k at k + 1 in its project colour (#rrggbb; VOC's colour
    when none is set), the rest VOC's."""
    palette = bytearray(voc_palette())
    for i, color in enumerate(colors[:255]):
        if color:
            palette[3 * (i + 1) : 3 * (i + 2)] = bytes.fromhex(color[1:7])
    return bytes(palette)
