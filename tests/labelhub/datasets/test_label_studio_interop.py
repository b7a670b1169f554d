"""Label Studio interop: the export's labelling config has unique control names matching its results,
and Label Studio's own COCO export (file_name `../media/upload/<project>/<8 hex>-<name>`) imports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from labelhub.labeling.models import AnnotationRevision

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
    doc["images"][0]["file_name"] = "../media/upload/1/nothex00-" + images[0].original_name
    again = imported(org_a.clients["manager"], org_a.project.id, "r.json", json.dumps(doc).encode(), "coco")
    assert again["status"] == "failed" and "No image named" in json.dumps(again["problems"])
