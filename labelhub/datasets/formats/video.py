"""Video dataset formats: a video's tracks (the union of its tasks' current revisions) written as

- `cvat_video`: CVAT for video 1.1 XML, `<track id label source>` holding one `<polygon>` or `<mask>`
  per frame with `frame`, `keyframe`, `outside`, `occluded`, `z_order` (masks in CVAT's run lengths over
  their box); LabelHub's track id, shape id and the model of a propagated shape as `<attribute>`s;
- `youtube_vis`: YouTube-VIS JSON, one annotation per track with a COCO RLE (or null) per frame, plus a
  `labelhub` key per annotation with what the format has no place for (track id, keyframes, models);
- `davis`: DAVIS-style palette PNGs, one per frame, pixel value = the object's index (1..N, 0
  background, later tracks over earlier ones), with `objects.json` naming each index's track and class;
- `mots`: MOTS text, one line per object per frame: `frame obj_id class_id height width rle`
  (obj_id = class_id * 1000 + the object's index);
- `mots_png`: the same objects as MOTS PNGs (a zip: `instances/<frame:06d>.png`, 16-bit, pixel value
  obj_id, 0 background, one per frame; `instances/labels.txt` lists the classes, class_id 1 the first),
  the layout Datumaro's `mots` reader loads.

`cvat_video` and `youtube_vis` read back (`video_import_parse`) to the same shapes: exact round trips.
Frame numbers are LabelHub's everywhere (0-based, decode order). Polygon shapes between keyframes are
interpolated (workers.video.interpolate) in the per-frame formats (YouTube-VIS, DAVIS, MOTS); CVAT
interpolates for itself, so only the stored shapes are written there.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image as PILImage

from labelhub.core.errors import DomainError
from labelhub.regions.validation import region_mask
from workers.geometry import mask_to_rle, rle_to_mask
from workers.video.interpolate import track_fill

from .cvat import cvat_mask_decode, cvat_mask_rle

VIDEO_FORMATS: dict[str, Callable] = {}
VIDEO_IMPORT_FORMATS: dict[str, Callable] = {}
MEDIA_TYPES = {
    "cvat_video": "application/xml",
    "youtube_vis": "application/json",
    "davis": "application/zip",
    "mots": "text/plain",
    "mots_png": "application/zip",
}


def video_register(name: str):
    def wrap(fn):
        VIDEO_FORMATS[name] = fn
        return fn

    return wrap


def video_register_import(name: str):
    def wrap(fn):
        VIDEO_IMPORT_FORMATS[name] = fn
        return fn

    return wrap


def tracks_of(shapes: list[dict]) -> dict[str, list[dict]]:
    tracks: dict[str, list[dict]] = {}
    for s in sorted(shapes, key=lambda s: (s["track"], s["frame"])):
        tracks.setdefault(s["track"], []).append(s)
    return tracks


def _points(ring) -> str:
    return ";".join(f"{float(x)!r},{float(y)!r}" for x, y in ring)


def _parse_points(text: str) -> list[list[float]]:
    return [[float(v) for v in p.split(",")] for p in text.split(";")]


@video_register("cvat_video")
def cvat_video(meta: dict, shapes: list[dict], classes: list[dict]) -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "  <version>1.1</version>", "  <meta>"]
    out.append("    <task>")
    out.append(
        f"      <name>{_esc(meta['name'])}</name><size>{meta['frame_count']}</size><mode>interpolation</mode>"
    )
    out.append(f"      <start_frame>0</start_frame><stop_frame>{meta['frame_count'] - 1}</stop_frame>")
    out.append("      <labels>")
    for c in classes:
        out.append(
            f"        <label><name>{_esc(c['name'])}</name><color>{_esc(c.get('color', ''))}</color></label>"
        )
    out.append("      </labels>")
    out.append(
        f"      <original_size><width>{meta['width']}</width><height>{meta['height']}</height></original_size>"
    )
    out.append("    </task>")
    out.append("  </meta>")
    for index, (track, items) in enumerate(tracks_of(shapes).items()):
        source = "manual" if all(s.get("source") == "human" for s in items) else "auto"
        out.append(f'  <track id="{index}" label={quoteattr(items[0]["label"])} source="{source}">')
        for s in items:
            common = (
                f'frame="{s["frame"]}" keyframe="{int(bool(s.get("keyframe")))}" outside="{int(bool(s.get("outside")))}" '
                f'occluded="{int(bool(s.get("occluded")))}" z_order="{int(s.get("z_order") or 0)}"'
            )
            attrs = [
                ("labelhub_track", track),
                ("labelhub_id", s["id"]),
                ("labelhub_source", s.get("source", "human")),
            ]
            if s.get("model"):
                attrs += [
                    ("labelhub_model", s["model"]["name"]),
                    ("labelhub_model_version", s["model"]["version"]),
                ]
            body = "".join(f"<attribute name={quoteattr(k)}>{_esc(v)}</attribute>" for k, v in attrs)
            if (
                s.get("kind") == "mask"
                or not s.get("polygons")
                or len(s["polygons"]) != 1
                or s["polygons"][0]["holes"]
            ):
                mask = region_mask(s, meta["height"], meta["width"])
                box = cvat_mask_rle(mask)
                if box is None:
                    out.append(
                        f'    <mask {common} rle="0" left="0" top="0" width="0" height="0">{body}</mask>'
                    )
                    continue
                rle, left, top, w, h = box
                out.append(
                    f'    <mask {common} rle="{rle}" left="{left}" top="{top}" width="{w}" height="{h}">{body}</mask>'
                )
            else:
                out.append(
                    f'    <polygon {common} points="{_points(s["polygons"][0]["exterior"])}">{body}</polygon>'
                )
        out.append("  </track>")
    out.append("</annotations>")
    return "\n".join(out).encode()


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@video_register_import("cvat_video")
def cvat_video_parse(data: bytes, meta: dict) -> list[dict]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DomainError(
            f"annotations.xml does not parse: {exc}", field="file", code="invalid_file"
        ) from exc
    shapes = []
    h, w = meta["height"], meta["width"]
    for t_index, track in enumerate(root.iter("track")):
        for element in track:
            where = f"track[{t_index}].{element.tag}[frame={element.get('frame')}]"
            attrs = {a.get("name"): a.text or "" for a in element.iter("attribute")}
            track_id = attrs.get("labelhub_track") or f"cvat-{track.get('id')}"
            try:
                frame = int(element.get("frame"))
                shape: dict = {
                    "id": attrs.get("labelhub_id") or f"{track_id}-{frame}",
                    "label": track.get("label"),
                    "frame": frame,
                    "track": track_id,
                    "keyframe": element.get("keyframe") == "1",
                    "outside": element.get("outside") == "1",
                    "occluded": element.get("occluded") == "1",
                    "source": attrs.get("labelhub_source")
                    or ("human" if track.get("source") == "manual" else "ai"),
                }
                if element.tag == "polygon":
                    shape["kind"] = "polygon"
                    shape["polygons"] = [{"exterior": _parse_points(element.get("points")), "holes": []}]
                elif element.tag == "mask":
                    bw, bh = int(element.get("width")), int(element.get("height"))
                    mask = (
                        np.zeros((h, w), bool)
                        if bw == 0
                        else cvat_mask_decode(
                            element.get("rle"),
                            int(element.get("left")),
                            int(element.get("top")),
                            bw,
                            bh,
                            w,
                            h,
                        )
                    )
                    shape["kind"] = "mask"
                    shape["rle"] = mask_to_rle(mask)
                else:
                    raise DomainError(
                        f"{element.tag} shapes are not read; polygons and masks are.", field=where
                    )
            except (TypeError, ValueError) as exc:
                raise DomainError(f"{where}: {exc}", field="file", code="invalid_file") from exc
            if attrs.get("labelhub_model"):
                shape["model"] = {
                    "name": attrs["labelhub_model"],
                    "version": attrs.get("labelhub_model_version", ""),
                }
            if element.get("z_order") not in (None, "0"):
                shape["z_order"] = int(element.get("z_order"))
            shapes.append(shape)
    return shapes


def _per_frame(meta: dict, shapes: list[dict]) -> dict[str, list[dict]]:
    return {track: track_fill(items) for track, items in tracks_of(shapes).items()}


@video_register("youtube_vis")
def youtube_vis(meta: dict, shapes: list[dict], classes: list[dict]) -> bytes:
    names = [c["name"] for c in classes]
    n, h, w = meta["frame_count"], meta["height"], meta["width"]
    doc = {
        "info": {
            "description": f"LabelHub export of {meta['name']}",
            "frame_numbers": "0-based, decode order",
        },
        "videos": [
            {
                "id": 1,
                "width": w,
                "height": h,
                "length": n,
                "file_names": [f"{meta['stem']}/{i:06d}.jpg" for i in range(n)],
            }
        ],
        "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(names)],
        "annotations": [],
    }
    for index, (track, items) in enumerate(_per_frame(meta, shapes).items()):
        segs: list = [None] * n
        areas: list = [None] * n
        boxes: list = [None] * n
        for s in items:
            if s.get("outside"):
                continue
            mask = region_mask(s, h, w)
            segs[s["frame"]] = mask_to_rle(mask)
            areas[s["frame"]] = int(mask.sum())
            ys, xs = np.nonzero(mask)
            boxes[s["frame"]] = (
                [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)] if len(xs) else None
            )
        doc["annotations"].append(
            {
                "id": index + 1,
                "video_id": 1,
                "category_id": names.index(items[0]["label"]) + 1,
                "iscrowd": 0,
                "segmentations": segs,
                "areas": areas,
                "bboxes": boxes,
                "labelhub": {
                    "track": track,
                    "shapes": {
                        str(s["frame"]): {
                            "id": s["id"],
                            "keyframe": bool(s.get("keyframe")),
                            "outside": bool(s.get("outside")),
                            "occluded": bool(s.get("occluded")),
                            "source": s.get("source", "human"),
                            **({"model": s["model"]} if s.get("model") else {}),
                        }
                        for s in items
                    },
                },
            }
        )
    return json.dumps(doc).encode()


@video_register_import("youtube_vis")
def youtube_vis_parse(data: bytes, meta: dict) -> list[dict]:
    try:
        doc = json.loads(data)
        categories = {c["id"]: c["name"] for c in doc["categories"]}
        annotations = doc["annotations"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DomainError(f"Not a YouTube-VIS file: {exc}", field="file", code="invalid_file") from exc
    shapes = []
    for a_index, ann in enumerate(annotations):
        extra = ann.get("labelhub") or {}
        track = extra.get("track") or f"ytvis-{ann.get('id', a_index)}"
        known = extra.get("shapes") or {}
        for frame, seg in enumerate(ann.get("segmentations") or []):
            info = known.get(str(frame))
            if seg is None and not (info and info.get("outside")):
                continue
            mask = (
                np.zeros((meta["height"], meta["width"]), bool)
                if seg is None
                else rle_to_mask(seg).astype(bool)
            )
            shape = {
                "id": (info or {}).get("id", f"{track}-{frame}"),
                "label": categories.get(ann.get("category_id")),
                "kind": "mask",
                "rle": mask_to_rle(mask),
                "frame": frame,
                "track": track,
                "keyframe": (info or {}).get("keyframe", True),
                "outside": (info or {}).get("outside", False),
                "occluded": (info or {}).get("occluded", False),
                "source": (info or {}).get("source", "human"),
            }
            if info and info.get("model"):
                shape["model"] = info["model"]
            shapes.append(shape)
    return shapes


DAVIS_PALETTE = [
    0,
    0,
    0,
    128,
    0,
    0,
    0,
    128,
    0,
    128,
    128,
    0,
    0,
    0,
    128,
    128,
    0,
    128,
    0,
    128,
    128,
    128,
    128,
    128,
]


@video_register("davis")
def davis(meta: dict, shapes: list[dict], classes: list[dict]) -> bytes:
    import zipfile

    tracks = _per_frame(meta, shapes)
    if len(tracks) > 255:
        raise DomainError("DAVIS PNGs hold at most 255 objects.", field="format")
    n, h, w = meta["frame_count"], meta["height"], meta["width"]
    frames: dict[int, np.ndarray] = {}
    for index, items in enumerate(tracks.values(), start=1):
        for s in items:
            if s.get("outside"):
                continue
            canvas = frames.setdefault(s["frame"], np.zeros((h, w), np.uint8))
            canvas[region_mask(s, h, w)] = index
    palette = DAVIS_PALETTE + [(i * 53) % 256 for i in range(768 - len(DAVIS_PALETTE))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for frame in range(n):
            img = PILImage.fromarray(frames.get(frame, np.zeros((h, w), np.uint8)), mode="P")
            img.putpalette(palette)
            png = io.BytesIO()
            img.save(png, "PNG")
            archive.writestr(f"Annotations/{meta['stem']}/{frame:05d}.png", png.getvalue())
        objects = {
            str(i): {"track": t, "label": items[0]["label"]} for i, (t, items) in enumerate(tracks.items(), 1)
        }
        archive.writestr(f"Annotations/{meta['stem']}/objects.json", json.dumps(objects))
    return buf.getvalue()


@video_register("mots")
def mots(meta: dict, shapes: list[dict], classes: list[dict]) -> bytes:
    names = [c["name"] for c in classes]
    h, w = meta["height"], meta["width"]
    lines = []
    for index, items in enumerate(_per_frame(meta, shapes).values(), start=1):
        class_id = names.index(items[0]["label"]) + 1
        for s in items:
            mask = region_mask(s, h, w)
            if s.get("outside") or not mask.any():
                continue
            lines.append(
                (
                    s["frame"],
                    f"{s['frame']} {class_id * 1000 + index} {class_id} {h} {w} {mask_to_rle(mask)['counts']}",
                )
            )
    return ("\n".join(line for _, line in sorted(lines, key=lambda x: x[0])) + "\n").encode()


@video_register("mots_png")
def mots_png(meta: dict, shapes: list[dict], classes: list[dict]) -> bytes:
    import zipfile

    names = [c["name"] for c in classes]
    n, h, w = meta["frame_count"], meta["height"], meta["width"]
    tracks = _per_frame(meta, shapes)
    if len(tracks) >= 1000:
        raise DomainError(
            "MOTS PNGs hold at most 999 objects (obj_id = class_id * 1000 + index).", field="format"
        )
    frames: dict[int, np.ndarray] = {}
    for index, items in enumerate(tracks.values(), start=1):
        obj_id = (names.index(items[0]["label"]) + 1) * 1000 + index
        for s in items:
            if s.get("outside"):
                continue
            canvas = frames.setdefault(s["frame"], np.zeros((h, w), np.uint16))
            canvas[region_mask(s, h, w)] = obj_id
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for frame in range(n):
            png = io.BytesIO()
            PILImage.fromarray(frames.get(frame, np.zeros((h, w), np.uint16))).save(png, "PNG")
            archive.writestr(f"instances/{frame:06d}.png", png.getvalue())
        archive.writestr("instances/labels.txt", "\n".join(names) + "\n")
    return buf.getvalue()
