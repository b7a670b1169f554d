"""Label Studio JSON (tasks with annotations), both directions.

Export layout: `label_studio.json`, a list of tasks, and, with images, `images/{subset}/{file_name}`.
A task is `{"id": image id, "data": {"image": "images/<subset>/<file_name>"}, "annotations": [{"result":
[...]}], "meta": {"subset", "labelhub_task_id", "revision"}}`; results use `from_name` "polygon" or
"brush" and `to_name` "image": the labelling config written beside them, `label_config.xml`
(workers.lsml.label_config: `<Image name="image" value="$image"/>`, `<PolygonLabels name="polygon"
toName="image">` and `<BrushLabels name="brush" toName="image">` with every class (no keypoint
control: with one, Label Studio's COCO export files every class as a keypoint); control names are unique, as
Label Studio requires: a config naming two controls "label" is refused with "Label config contains
non-unique names"). Paste it as the Label Studio project's labelling config before importing the tasks. A region is:
- a polygon region without holes: one `polygonlabels` result per part, points in percent of the image
  width and height (Label Studio's convention; read back rounded to 1e-9 pixel, so they return
  exactly); the first part has the region's id, part k > 0 the id `<id>~<k>`, which the import
  groups back into one region;
- a region with holes or a mask region: one `brushlabels` result in Label Studio's own brush RLE
  (`format: "rle"`: the thi.ng rle-pack bit stream of the RGBA image flattened, alpha 255 inside; see
  :func:`brush_encode`) of its exact pixels.
AI regions carry their `score`.
"""

from __future__ import annotations

from labelhub.core.parsers import json_loads_bounded
from labelhub.regions.validation import region_mask
from workers.geometry.brush import brush_decode, brush_encode

from .base import (
    ExportFormat,
    Record,
    files_parse_merged,
    region_has_holes,
    region_is_mask,
    register,
    register_import,
)

# --- export --------------------------------------------------------------------------------------


@register("label_studio")
class LabelStudioFormat(ExportFormat):
    title = "Label Studio JSON"
    description = "label_studio.json: tasks with polygonlabels (percent) and brushlabels (brush RLE) results."

    def begin(self) -> None:
        self.tasks = self.spool("label-studio-tasks.json")

    def add(self, record: Record) -> int:
        h, w = record.height, record.width
        results = []
        for region in record.regions or []:
            base = {"to_name": "image", "original_width": w, "original_height": h,
                    "image_rotation": 0, "origin": "prediction" if region.get("source") == "ai" else "manual"}  # fmt: skip
            if region.get("score") is not None:
                base["score"] = region["score"]
            rid = str(region.get("id") or "")
            if region_is_mask(region) or region_has_holes(region):
                rle = brush_encode(region_mask(region, h, w))
                results.append({**base, "id": rid, "from_name": "brush", "type": "brushlabels",
                                "value": {"format": "rle", "rle": rle, "brushlabels": [region["label"]]}})  # fmt: skip
                continue
            for k, polygon in enumerate(region.get("polygons") or []):
                points = [[x * 100.0 / w, y * 100.0 / h] for x, y in polygon["exterior"]]
                results.append({**base, "id": rid if k == 0 else f"{rid}~{k}", "from_name": "polygon", "type": "polygonlabels",
                                "value": {"points": points, "closed": True, "polygonlabels": [region["label"]]}})  # fmt: skip
        self.tasks.append(
            {
                "id": record.image_id,
                "data": {"image": self.image_path(record)},
                "annotations": [{"id": record.revision_number, "result": results, "was_cancelled": False}],
                "meta": {"subset": record.subset, "labelhub_task_id": record.task_id, "revision": record.revision_number},
            }
        )  # fmt: skip
        return len(record.regions or [])

    def finish(self) -> None:
        from workers.lsml import label_config

        classes = [
            {"name": n, "color": c, "kinds": ["polygon", "mask"]}
            for n, c in zip(self.classes, self.colors, strict=True)
        ]
        self.zf.writestr("label_config.xml", label_config(classes, prompts=False))
        with self.zf.open("label_studio.json", "w", force_zip64=True) as out:
            out.write(b"[")
            self.tasks.copy_into(out)
            out.write(b"]")


# --- import --------------------------------------------------------------------------------------


def _image_name(task: dict) -> str:
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    ref = data.get("image") or task.get("file_upload") or ""
    if not isinstance(ref, str):
        return ""
    ref = ref.split("?d=")[-1]
    return ref.replace("\\", "/").rsplit("/", 1)[-1]


def label_studio_parse(raw: bytes, *, project, images, report, source: str, repairs) -> dict[int, list[dict]]:
    """Regions per project image id from a Label Studio JSON export (a list of tasks, or one task).
    Each task's last annotation that was not cancelled is read (its predictions when it has none);
    problems go to `report` with their JSON path."""
    from labelhub.core.errors import DomainError

    from ..repair import polygons_read

    try:
        doc = json_loads_bounded(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        report.add("$", f"Not valid JSON: {exc}")
        return {}
    tasks = [doc] if isinstance(doc, dict) else doc
    if not isinstance(tasks, list):
        report.add("$", "A Label Studio export is a list of tasks.")
        return {}
    classes = project.class_names
    regions: dict[int, list[dict]] = {}
    for i, task in enumerate(tasks):
        at = f"$[{i}]"
        if not isinstance(task, dict):
            report.add(at, "A task is an object.")
            continue
        name = _image_name(task)
        if not name:
            report.add(f"{at}.data.image", "Missing the image reference (data.image).")
            continue
        found = images.match(name, f"{at}.data.image", report)
        kept = [
            (k, a)
            for k, a in enumerate(task.get("annotations") or [])
            if isinstance(a, dict) and not a.get("was_cancelled")
        ]
        key = "annotations"
        if not kept:
            kept = [(k, a) for k, a in enumerate(task.get("predictions") or []) if isinstance(a, dict)]
            key = "predictions"
        if found is None or not kept:
            continue
        image_id, w, h = found
        if image_id in regions:
            report.add(at, "A second task for the same image.")
            continue
        k, annotation = kept[-1]
        results = annotation.get("result")
        if not isinstance(results, list):
            report.add(f"{at}.{key}[{k}].result", "result is a list.")
            continue
        out: list[dict] = []
        parts: dict[str, dict] = {}
        for j, result in enumerate(results):
            where = f"{at}.{key}[{k}].result[{j}]"
            if not isinstance(result, dict):
                report.add(where, "A result is an object.")
                continue
            kind = result.get("type")
            if kind in ("choices", "textarea", "rating", "relation"):
                continue  # no geometry
            if kind not in ("polygonlabels", "brushlabels"):
                report.add(
                    f"{where}.type",
                    f"{kind!r} is not imported: LabelHub regions are polygons and brush masks.",
                )
                continue
            value = result.get("value") if isinstance(result.get("value"), dict) else {}
            labels = value.get(kind)
            if not isinstance(labels, list) or len(labels) != 1:
                report.add(f"{where}.value.{kind}", "One class name per region.")
                continue
            label = labels[0]
            if label not in classes:
                report.add(
                    f"{where}.value.{kind}[0]",
                    f"Unknown class {label!r}; the project's classes are {classes}.",
                )
                continue
            ow, oh = result.get("original_width", w), result.get("original_height", h)
            if (ow, oh) != (w, h):
                report.add(where, f"original size {ow}x{oh} disagrees with the project's image ({w}x{h}).")
                continue
            rid = str(result.get("id") or f"ls-{i}-{j}")
            score = result.get("score") if isinstance(result.get("score"), int | float) else None
            if kind == "brushlabels":
                if value.get("format") != "rle":
                    report.add(f"{where}.value.format", "Only brush masks in Label Studio's RLE are read.")
                    continue
                try:
                    mask = brush_decode(value.get("rle"), h, w)
                except ValueError as exc:
                    report.add(f"{where}.value.rle", f"The brush RLE does not decode: {exc}")
                    continue
                from workers.geometry import mask_to_rle

                out.append({"id": rid[:64], "label": label, "kind": "mask", "rle": mask_to_rle(mask),
                            "source": source, "score": score})  # fmt: skip
                continue
            points = value.get("points")
            if not isinstance(points, list) or not all(
                isinstance(p, list)
                and len(p) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
                for p in points
            ):
                report.add(f"{where}.value.points", "points is a list of [x, y] in percent of the image.")
                continue
            ring = [[round(x * w / 100.0, 9), round(y * h / 100.0, 9)] for x, y in points]
            owner = rid.split("~", 1)[0]
            if owner in parts and parts[owner]["label"] == label:
                parts[owner]["polygons"].append({"exterior": ring, "holes": []})
                continue
            region = {"id": owner[:64], "label": label, "kind": "polygon", "polygons": [{"exterior": ring, "holes": []}],
                      "source": source, "score": score, "where": f"{where}.value.points"}  # fmt: skip
            parts[owner] = region
            out.append(region)
        for region in out:
            where = region.pop("where", None)
            if where is None:
                continue
            try:
                region["polygons"] = polygons_read(region["polygons"], at=where, region_id=region["id"],
                                                   width=w, height=h, repairs=repairs)  # fmt: skip
            except DomainError as exc:
                report.add(exc.field or where, exc.message)
        regions[image_id] = out
    return regions


@register_import("label_studio", label_suffix=".json", repairable=True)
def label_studio_import(
    files, *, project, images, report, source: str, boxes, repairs
) -> dict[int, list[dict]]:  # noqa: ARG001
    """Regions per project image id from Label Studio JSON exports (name, bytes)."""
    return files_parse_merged(files, label_studio_parse, "Label Studio", report, project=project, images=images, source=source,
                  repairs=repairs)  # fmt: skip
