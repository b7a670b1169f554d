"""CVAT for images 1.1 (XML), both directions.

Export layout: `annotations.xml` and, with images, `images/{subset}/{file_name}`. The `<meta>` holds a
`<project>` with the label schema (name, colour, type `polygon` or `mask`) and one `<task>` per subset
(`<subset>` train, val, test), as CVAT writes a project export; each `<image>` carries `id` (the
LabelHub image id), `name`, `subset`, `width`, `height`. A region is:
- a polygon region without holes: one `<polygon points="x1,y1;x2,y2;...">` per part (pixel-corner
  coordinates, written with full float precision so they read back exactly); the parts of one region
  share a `group_id` (unique in the image) when there are several;
- a region with holes (CVAT polygons cannot hold them) or a mask region: one `<mask>` with CVAT's RLE
  of its exact pixels inside `left`, `top`, `width`, `height` (row-major run lengths, starting with
  a run of 0s).
`source` is `manual` for human regions and `auto` for AI ones; `z_order` is the region's (0 if none).

Import reads the same elements back (polygons grouped by `group_id` into one region, masks into mask
regions); boxes, points, polylines, tags and tracks are refused with their place in the file.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import numpy as np

from labelhub.regions.validation import region_mask
from workers.geometry import mask_to_rle

from .base import (
    ExportFormat,
    Record,
    files_parse_merged,
    region_has_holes,
    region_is_mask,
    register,
    register_import,
)

SUBSETS = ("train", "val", "test")


def cvat_mask_rle(mask: np.ndarray) -> tuple[str, int, int, int, int] | None:
    """(rle, left, top, width, height) of a boolean mask: CVAT's run lengths over the bounding box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    top, left = int(rows[0]), int(cols[0])
    box = mask[top : int(rows[-1]) + 1, left : int(cols[-1]) + 1]
    flat = box.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return ",".join(map(str, counts)), left, top, box.shape[1], box.shape[0]


def cvat_mask_decode(
    rle: str, left: int, top: int, width: int, height: int, img_w: int, img_h: int
) -> np.ndarray:
    """The full-image boolean mask of a CVAT `<mask>`; ValueError when the runs do not fill the box."""
    counts = np.asarray([int(v) for v in rle.split(",")], dtype=np.int64)
    if (counts < 0).any() or counts.sum() != width * height:
        raise ValueError(f"the runs cover {int(counts.sum())} pixels, the box {width}x{height}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    box = np.repeat(values, counts).reshape(height, width)
    out = np.zeros((img_h, img_w), dtype=bool)
    out[top : top + height, left : left + width] = box[: max(img_h - top, 0), : max(img_w - left, 0)]
    return out


def _points(ring: list[list[float]]) -> str:
    return ";".join(f"{float(x)!r},{float(y)!r}" for x, y in ring)


@register("cvat")
class CvatFormat(ExportFormat):
    title = "CVAT for images 1.1"
    description = "annotations.xml: polygons (parts grouped), masks and regions with holes as CVAT mask RLE."

    def begin(self) -> None:
        self.body = open(self.tmpdir / "cvat-images.xml", "w", encoding="utf-8")  # noqa: SIM115
        self.subsets: set[str] = set()

    def add(self, record: Record) -> int:
        h, w = record.height, record.width
        self.subsets.add(record.subset)
        out = [
            f'  <image id="{record.image_id}" name={quoteattr(record.file_name)} subset="{record.subset}" '
            f'width="{w}" height="{h}">\n'
        ]
        group = 0
        for region in record.regions or []:
            label = quoteattr(region["label"])
            source = "auto" if region.get("source") == "ai" else "manual"
            z = int(region.get("z_order") or 0)
            if region_is_mask(region) or region_has_holes(region):
                found = cvat_mask_rle(region_mask(region, h, w))
                if found is None:
                    continue
                rle, left, top, bw, bh = found
                out.append(
                    f'    <mask label={label} source="{source}" occluded="0" rle="{rle}" left="{left}" '
                    f'top="{top}" width="{bw}" height="{bh}" z_order="{z}"></mask>\n'
                )
                continue
            polygons = region.get("polygons") or []
            attr = ""
            if len(polygons) > 1:
                group += 1
                attr = f' group_id="{group}"'
            for polygon in polygons:
                out.append(
                    f'    <polygon label={label} source="{source}" occluded="0" '
                    f'points="{_points(polygon["exterior"])}" z_order="{z}"{attr}></polygon>\n'
                )
        out.append("  </image>\n")
        self.body.write("".join(out))
        return len(record.regions or [])

    def finish(self) -> None:
        self.body.close()
        labels = []
        for name, color in zip(self.classes, self.colors, strict=False):
            labels.append(
                f"      <label>\n        <name>{_text(name)}</name>\n        <color>{color or '#000000'}</color>\n"
                "        <type>any</type>\n        <attributes>\n        </attributes>\n      </label>\n"
            )
        tasks = "".join(
            f"      <task>\n        <id>{i}</id>\n        <name>{s}</name>\n        <subset>{s}</subset>\n      </task>\n"
            for i, s in enumerate(s for s in SUBSETS if s in self.subsets)
        )
        head = (
            '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta>\n'
            f"    <project>\n      <name>{_text(self.meta.get('project', {}).get('name', ''))}</name>\n"
            f"      <labels>\n{''.join(labels)}      </labels>\n      <tasks>\n{tasks}      </tasks>\n"
            "    </project>\n  </meta>\n"
        )
        with self.zf.open("annotations.xml", "w", force_zip64=True) as out:
            out.write(head.encode())
            with open(self.body.name, "rb") as src:
                while data := src.read(1 << 20):
                    out.write(data)
            out.write(b"</annotations>\n")


def _text(value: str) -> str:
    from xml.sax.saxutils import escape

    return escape(str(value))


# --- import --------------------------------------------------------------------------------------


def cvat_parse(raw: bytes, *, project, images, report, source: str, repairs) -> dict[int, list[dict]]:
    """Regions per project image id from a CVAT for images 1.1 XML document; problems go to `report`
    with the element's place (`image[3](a.png).polygon[1]`)."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    from labelhub.core.errors import DomainError

    from ..repair import polygons_read

    try:
        root = ElementTree.fromstring(raw)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        report.add("$", f"Not a readable XML file: {exc}")
        return {}
    if root.tag != "annotations":
        report.add("$", f"The root element is <{root.tag}>; a CVAT file's is <annotations>.")
        return {}
    classes = project.class_names
    regions: dict[int, list[dict]] = {}
    for i, image in enumerate(root.iter("image")):
        name = image.get("name") or ""
        at = f"image[{i}]({name})"
        found = images.match(name, f"{at}.name", report)
        if found is None:
            continue
        image_id, w, h = found
        try:
            if (int(image.get("width", w)), int(image.get("height", h))) != (w, h):
                report.add(
                    at,
                    f"Size {image.get('width')}x{image.get('height')} disagrees with the project's image ({w}x{h}).",
                )
                continue
        except ValueError:
            report.add(at, "width and height are integers.")
            continue
        if image_id in regions:
            report.add(at, "A second <image> for the same image.")
            continue
        out: list[dict] = []
        groups: dict[tuple[str, str], dict] = {}
        for k, el in enumerate(image):
            where = f"{at}.{el.tag}[{k}]"
            label = el.get("label")
            if el.tag not in ("polygon", "mask"):
                report.add(where, f"<{el.tag}> is not imported: LabelHub regions are polygons and masks.")
                continue
            if label not in classes:
                report.add(f"{where}.label", f"Unknown class {label!r}; the project's classes are {classes}.")
                continue
            try:
                z = int(el.get("z_order") or 0)
            except ValueError:
                report.add(f"{where}.z_order", "z_order is an integer.")
                continue
            if el.tag == "mask":
                try:
                    left, top = int(el.get("left")), int(el.get("top"))
                    bw, bh = int(el.get("width")), int(el.get("height"))
                    mask = cvat_mask_decode(el.get("rle") or "", left, top, bw, bh, w, h)
                except (TypeError, ValueError) as exc:
                    report.add(f"{where}.rle", f"The mask does not decode: {exc}")
                    continue
                region = {"id": f"cvat-{i}-{k}", "label": label, "kind": "mask", "rle": mask_to_rle(mask),
                          "source": source, "score": None}  # fmt: skip
                if z:
                    region["z_order"] = z
                out.append(region)
                continue
            try:
                pts = [[float(v) for v in p.split(",")] for p in (el.get("points") or "").split(";") if p]
                if any(len(p) != 2 for p in pts):
                    raise ValueError
            except ValueError:
                report.add(f"{where}.points", "points is 'x1,y1;x2,y2;...'.")
                continue
            group = el.get("group_id") or "0"
            key = (group, label)
            if group != "0" and key in groups:
                groups[key]["polygons"].append({"exterior": pts, "holes": []})
                groups[key]["where"].append(where)
                continue
            region = {"id": f"cvat-{i}-{k}", "label": label, "kind": "polygon",
                      "polygons": [{"exterior": pts, "holes": []}], "source": source, "score": None,
                      "where": [where]}  # fmt: skip
            if z:
                region["z_order"] = z
            if group != "0":
                groups[key] = region
            out.append(region)
        for region in out:
            where = region.pop("where", None)
            if where is None:
                continue
            try:
                region["polygons"] = polygons_read(
                    region["polygons"], at=where[0] + ".points", region_id=region["id"], width=w, height=h,
                    repairs=repairs,
                )  # fmt: skip
            except DomainError as exc:
                report.add(exc.field or where[0], exc.message)
        regions[image_id] = out
    return regions


@register_import("cvat", label_suffix=".xml", repairable=True)
def cvat_import(files, *, project, images, report, source: str, boxes, repairs) -> dict[int, list[dict]]:  # noqa: ARG001 - no box prompts in CVAT polygons
    """Regions per project image id from CVAT for images 1.1 XML files (name, bytes)."""
    return files_parse_merged(
        files, cvat_parse, "CVAT", report, project=project, images=images, source=source, repairs=repairs
    )
