"""Label Studio interop: the export's labelling config has unique control names matching its results,
and Label Studio's own COCO export (file_name `../media/upload/<project>/<8 hex>-<name>` for uploaded
files, `images/<8 hex>__<name>` for images it has by URL) imports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from labelhub.labeling.models import Annotation, AnnotationRevision

from .test_imports import coco_doc, imported
from .test_interchange import run

pytestmark = pytest.mark.django_db


def test_the_label_studio_export_carries_a_config_its_results_use(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "label_studio")
    config = ET.fromstring(zf.read("label_config.xml"))
    controls = {c.get("name"): c.tag.lower() for c in config if c.get("toName") == "image"}
    names = [c.get("name") for c in config]
    assert len(names) == len(set(names))  # Label Studio refuses a config with non-unique names
    assert controls["polygon"] == "polygonlabels" and controls["brush"] == "brushlabels"
    labels = {c.get("name"): {v.get("value") for v in c} for c in config if c.get("toName")}
    results = [
        r for task in json.loads(zf.read("label_studio.json")) for r in task["annotations"][0]["result"]
    ]
    assert {r["type"] for r in results} == {"polygonlabels", "brushlabels"}
    for result in results:
        assert controls[result["from_name"]] == result["type"] and result["to_name"] == "image"
        assert result["value"][result["type"]][0] in labels[result["from_name"]]


def test_label_studio_s_coco_export_imports(org_a):
    from .test_imports import make_images

    images = make_images(org_a.project, org_a.users["owner"], 2, prefix="ls")
    doc = coco_doc(images)
    for k, entry in enumerate(doc["images"]):  # how Label Studio's COCO export names uploaded files
        entry["file_name"] = f"../media/upload/1/461b770{k}-{images[k].original_name}"
    body = imported(
        org_a.clients["manager"], org_a.project.id, "result.json", json.dumps(doc).encode(), "coco"
    )
    assert body["status"] == "done", body
    assert body["result"]["images_matched"] == 2 and body["result"]["regions"] == 4
    assert sum(len(r.regions) for r in AnnotationRevision.objects.all()) == 4
    # an image Label Studio has by URL (a task imported from LabelHub's export): `images/<md5[:8]>__<name>`
    Annotation.objects.filter(task__image__in=images).update(current_revision=0)
    AnnotationRevision.objects.all().delete()
    for k, entry in enumerate(doc["images"]):
        entry["file_name"] = f"images/6d40a5b{k}__{images[k].original_name}"
    body = imported(org_a.clients["manager"], org_a.project.id, "r.json", json.dumps(doc).encode(), "coco")
    assert body["status"] == "done" and body["result"]["images_matched"] == 2, body
    doc["images"][0]["file_name"] = "../media/upload/1/nothex00-" + images[0].original_name
    again = imported(org_a.clients["manager"], org_a.project.id, "r.json", json.dumps(doc).encode(), "coco")
    assert again["status"] == "failed" and "No image named" in json.dumps(again["problems"])


def test_coco_polygons_computed_from_percent_come_back_exactly(org_a):
    """Label Studio's COCO export computes pixels as `x% / 100 * width`: 50 px of a 120 px wide image
    travels as 41.666...% and comes back as 49.99999999999999. Read to 1e-9 px, the vertices are exact,
    so the polygon covers the same pixels (a pixel centre lying on its edge stays on the same side)."""
    from labelhub.regions.validation import region_mask

    from .conftest import make_images

    (image,) = make_images(org_a.project, org_a.users["owner"], 1, width=120, height=90, prefix="pc")
    ring = [(50.0, 50.0), (85.5, 52.5), (70.0, 78.0)]  # the edge from (50, 50) passes (52.5, 53.5)
    flat = [v for x, y in ring for v in ((x * 100 / 120) / 100 * 120, (y * 100 / 90) / 100 * 90)]
    assert flat[0] == 49.99999999999999  # the noise this is about
    doc = {
        "images": [
            {"id": 1, "file_name": "images/0f9952b8__" + image.original_name, "width": 120, "height": 90}
        ],
        "categories": [{"id": 0, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "segmentation": [flat]}],
    }
    body = imported(org_a.clients["manager"], org_a.project.id, "r.json", json.dumps(doc).encode(), "coco")
    assert body["status"] == "done", body
    (region,) = AnnotationRevision.objects.get().regions
    assert region["polygons"][0]["exterior"] == [list(p) for p in ring]
    want = {"kind": "polygon", "polygons": [{"exterior": [list(p) for p in ring], "holes": []}]}
    assert (region_mask(region, 90, 120) == region_mask(want, 90, 120)).all()
