"""Every export format decodes back to the stored regions: COCO loads in pycocotools and its RLE is
the exact mask, VOC and semantic PNGs are the exact rasterization, YOLO polygons are the stored
polygons within float tolerance, LabelHub JSON is the stored regions verbatim."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage
from pycocotools.coco import COCO

from labelhub.datasets import exports
from labelhub.datasets.formats import FORMATS
from labelhub.datasets.formats.base import voc_palette
from labelhub.datasets.formats.yolo import merged_ring
from labelhub.datasets.models import ExportStatus
from labelhub.labeling.models import Annotation, AnnotationRevision
from workers.geometry import polygons_to_mask, rle_to_mask

from .conftest import read_zip

pytestmark = pytest.mark.django_db


def run(project, user, fmt, **kwargs):
    export = exports.export_create(project=project, user=user, format=fmt, **kwargs)
    export = exports.export_run(export_id=export.id)
    assert export.status == ExportStatus.DONE, export.error
    with export.file.open("rb") as fh:
        return export, read_zip(fh.read())


def stored(image):
    annotation = Annotation.objects.get(task__image=image)
    return AnnotationRevision.objects.get(annotation=annotation, number=annotation.current_revision).regions


def truth(region, h, w):
    if region["kind"] == "mask":
        return rle_to_mask(region["rle"])
    return polygons_to_mask(region["polygons"], h, w)


def test_registry_lists_every_format():
    assert {"coco", "voc", "yolo", "masks", "labelhub"} <= set(FORMATS)


def test_coco_export_loads_in_pycocotools_and_decodes_to_the_stored_regions(org_a, dataset, tmp_path):
    export, zf = run(org_a.project, org_a.users["owner"], "coco")
    path = tmp_path / "instances.json"
    path.write_bytes(zf.read("annotations/instances_train.json"))
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    assert sorted(coco.getImgIds()) == sorted([i.id for i in dataset["accepted"]] + [dataset["empty"].id])
    for image in dataset["accepted"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image.id]))
        regions = stored(image)
        assert [a["attributes"]["labelhub_region_id"] for a in anns] == [r["id"] for r in regions]
        for ann, region in zip(anns, regions, strict=True):
            assert ann["iscrowd"] == 0
            assert coco.loadCats(ann["category_id"])[0]["name"] == region["label"]
            if region["kind"] == "mask" or any(p["holes"] for p in region["polygons"]):
                # holes and masks: RLE of exactly the stored pixels
                assert isinstance(ann["segmentation"], dict)
                assert np.array_equal(
                    coco.annToMask(ann).astype(bool), truth(region, image.height, image.width)
                )
                assert ann["area"] == truth(region, image.height, image.width).sum()
            else:
                assert ann["segmentation"] == [sum(p["exterior"], []) for p in region["polygons"]]
        mask_ann = anns[3]
        assert mask_ann["score"] == 0.75
    assert coco.getAnnIds(imgIds=[dataset["empty"].id]) == []
    assert export.annotations_count == 4 * len(dataset["accepted"])


def test_voc_pngs_are_the_exact_rasterized_regions(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "voc", include_images=True)
    palette = voc_palette()
    for image in dataset["accepted"]:
        stem = image.original_name.rsplit(".", 1)[0]
        cls_png = PILImage.open(io.BytesIO(zf.read(f"SegmentationClass/{stem}.png")))
        obj_png = PILImage.open(io.BytesIO(zf.read(f"SegmentationObject/{stem}.png")))
        assert cls_png.mode == obj_png.mode == "P"
        assert cls_png.getpalette()[:12] == palette[:12]
        cls, obj = np.asarray(cls_png), np.asarray(obj_png)
        want_cls = np.zeros((image.height, image.width), np.uint8)
        want_obj = np.zeros_like(want_cls)
        for i, region in enumerate(stored(image)):
            m = truth(region, image.height, image.width)
            want_cls[m] = ["cat", "dog"].index(region["label"]) + 1
            want_obj[m] = i + 1
        assert np.array_equal(cls, want_cls)
        assert np.array_equal(obj, want_obj)
        assert zf.read(f"JPEGImages/{image.original_name}") == image.file.open("rb").read()
    names = zf.read("ImageSets/Segmentation/train.txt").decode().split()
    assert len(names) == len(dataset["accepted"]) + 1
    assert zf.read("labelmap.txt").decode().splitlines()[1:4] == [
        "background:0,0,0::",
        "cat:128,0,0::",
        "dog:0,128,0::",
    ]


def test_semantic_masks_are_the_exact_rasterized_regions(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "masks")
    for image in dataset["accepted"]:
        stem = image.original_name.rsplit(".", 1)[0]
        png = PILImage.open(io.BytesIO(zf.read(f"masks/train/{stem}.png")))
        assert png.mode == "P"  # class indices, shown in the project colours
        want = np.zeros((image.height, image.width), np.uint8)
        for region in stored(image):
            want[truth(region, image.height, image.width)] = ["cat", "dog"].index(region["label"]) + 1
        assert np.array_equal(np.asarray(png), want)
    assert zf.read("classes.txt").decode() == "0 background\n1 cat\n2 dog\n"
    colors = [c["color"] for c in org_a.project.label_schema]
    palette = png.getpalette()[:9]
    assert palette == [0, 0, 0, *bytes.fromhex(colors[0][1:]), *bytes.fromhex(colors[1][1:])]
    assert zf.read("labelmap.txt").decode().splitlines()[2].startswith("cat:")


def test_yolo_polygons_decode_to_the_stored_polygons(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "yolo")
    assert 'names:\n  0: "cat"\n  1: "dog"' in zf.read("data.yaml").decode()
    for image in dataset["accepted"]:
        stem = image.original_name.rsplit(".", 1)[0]
        lines = zf.read(f"labels/train/{stem}.txt").decode().splitlines()
        rings = []
        for line in lines:
            values = line.split()
            coords = np.asarray([float(v) for v in values[1:]]).reshape(-1, 2) * [image.width, image.height]
            rings.append((int(values[0]), coords))
        regions = stored(image)
        # one line per region (one instance), in order, as Ultralytics' converter writes them
        assert len(rings) == len(regions)
        for (cls, coords), region in zip(rings, regions, strict=True):
            assert cls == ["cat", "dog"].index(region["label"])
            polygons = region["polygons"] if region["kind"] == "polygon" else None
            if polygons is None:  # a mask travels as its exact outline: the same pixels
                got = polygons_to_mask(
                    [{"exterior": coords.tolist(), "holes": []}], image.height, image.width
                )
                assert np.array_equal(got, truth(region, image.height, image.width))
                continue
            ring = merged_ring(polygons)
            assert np.allclose(coords, ring, atol=1e-4)  # 6 decimals of the size
            # parts bridged and holes keyholed in one ring: exactly the region's pixels
            got = polygons_to_mask([{"exterior": ring, "holes": []}], image.height, image.width)
            assert np.array_equal(got, truth(region, image.height, image.width))
    assert zf.read(f"labels/train/{dataset['empty'].original_name[:-4]}.txt") == b""


def test_labelhub_json_is_lossless(org_a, dataset):
    export, zf = run(org_a.project, org_a.users["owner"], "labelhub")
    doc = json.loads(zf.read("labelhub.json"))
    assert doc["format"] == "labelhub" and doc["project"]["label_schema"] == org_a.project.label_schema
    by_image = {item["image"]["id"]: item for item in doc["items"]}
    for image in dataset["accepted"]:
        item = by_image[image.id]
        assert item["regions"] == stored(image)
        assert item["revision"] == Annotation.objects.get(task__image=image).current_revision == 1
    assert (
        json.loads(zf.read("labelhub/manifest.json"))["images"] == len(doc["items"]) == export.progress_total
    )
