"""Model services against a real Label Studio ML backend: the `label-studio-ml` package from PyPI serving
tests/lsml/backend_model.py in its own process, fetching LabelHub's signed image URLs over HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.models import ModelService, Prediction
from tests.helpers import disc_image_bytes, upload
from workers.geometry import polygons_iou, polygons_to_mask, rle_to_mask

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SIZES = [(96, 80), (64, 48), (50, 70)]


def register(org, backend, **extra) -> dict:
    body = {"name": "shapes", "url": backend.url, "uses": ["prelabel", "interactive", "training"], **extra}
    response = org.clients[Role.MANAGER].post(
        f"/api/v1/projects/{org.project.id}/model-services/", body, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def upload_images(org, sizes=SIZES) -> list[Image]:
    files = [(f"i{k}.png", disc_image_bytes(w, h, seed=k)) for k, (w, h) in enumerate(sizes)]
    assert upload(org.clients[Role.MANAGER], org.project.id, *files).status_code == 201
    return list(Image.objects.filter(project=org.project).order_by("id"))


def test_prelabels_land_as_regions_with_the_backends_exact_geometry(org_a, backend, settings):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    manager = org_a.clients[Role.MANAGER]
    service = register(org_a, backend)
    checked = manager.post(f"/api/v1/projects/{org_a.project.id}/model-services/{service['id']}/check/")
    assert checked.status_code == 200
    assert checked.json()["healthy"] is True and checked.json()["model_version"] == "INITIAL"
    assert "credential" not in checked.json()
    patched = manager.patch(
        f"/api/v1/projects/{org_a.project.id}/", {"prelabel": "model_service"}, format="json"
    )
    assert patched.status_code == 200
    images = upload_images(org_a)  # pre-labelled on upload (tasks run in-process here)

    sent = backend.records("predict.jsonl")
    assert len(sent) == 1 and sent[0]["tasks"] == [i.id for i in images]  # one batch, one call
    returned = dict(zip(sent[0]["tasks"], sent[0]["predictions"], strict=True))
    for image in images:
        w, h = image.width, image.height
        prediction = Prediction.objects.get(image=image)
        assert prediction.status == "ok" and prediction.service_id == service["id"]
        assert prediction.model_name == "service:shapes" and prediction.model_version == "INITIAL"
        results = {r["type"]: r for r in returned[image.id]["result"]}
        polygon, box, mask = prediction.regions
        # polygons: percent -> pixels, exactly
        expected = [[x * w / 100, y * h / 100] for x, y in results["polygonlabels"]["value"]["points"]]
        assert polygon["kind"] == "polygon" and polygon["polygons"][0]["exterior"] == expected
        assert polygons_iou(polygon["polygons"], [{"exterior": expected, "holes": []}], h, w) == 1.0
        assert polygon["score"] == 0.8 and polygon["prediction_id"] == prediction.id
        # rectangles as regions: the 4 corners
        v = results["rectanglelabels"]["value"]
        x0, y0 = v["x"] * w / 100, v["y"] * h / 100
        x1, y1 = (v["x"] + v["width"]) * w / 100, (v["y"] + v["height"]) * h / 100
        corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        assert np.allclose(box["polygons"][0]["exterior"], corners, atol=1e-9)
        assert polygons_iou(box["polygons"], [{"exterior": corners, "holes": []}], h, w) == 1.0
        # brush masks: Label Studio's RLE -> the exact pixels (COCO RLE in LabelHub)
        pixels = rle_to_mask(mask["rle"]).astype(bool)
        want = np.zeros(h * w, dtype=bool)
        want[sent[0]["masks"][results["brushlabels"]["id"]]] = True
        assert mask["kind"] == "mask" and np.array_equal(pixels.ravel(), want)
        assert {r["label"] for r in prediction.regions} == {"cat"}
        # the task starts from these regions, their source visible through prediction_id
        task = manager.get(f"/api/v1/tasks/?image={image.id}").json()["results"][0]
        annotation = manager.get(f"/api/v1/tasks/{task['id']}/annotation/").json()
        assert [r["prediction_id"] for r in annotation["regions"]] == [prediction.id] * 3
    shown = manager.get(f"/api/v1/predictions/?image={images[0].id}").json()["results"][0]
    assert shown["model_name"] == "service:shapes" and shown["model_version"] == "INITIAL"


def test_an_interactive_click_goes_as_label_studio_context(org_a, backend):
    service = register(org_a, backend)
    (image,) = upload_images(org_a, [(96, 80)])
    annotator = org_a.clients[Role.ANNOTATOR]
    answer = annotator.post(
        f"/api/v1/images/{image.id}/segment/",
        {"points": [[40, 30]], "point_labels": [1], "service": service["id"], "label": "cat"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    (sent,) = backend.records("predict.jsonl")
    (click,) = sent["context"]["result"]
    assert click["type"] == "keypointlabels" and click["is_positive"] is True
    assert click["value"]["x"] == 40 * 100 / 96 and click["value"]["y"] == 30 * 100 / 80
    assert click["value"]["keypointlabels"] == ["cat"] and click["from_name"] == "keypoint"
    want = np.zeros(96 * 80, dtype=bool)
    want[next(iter(sent["masks"].values()))] = True
    want = want.reshape(80, 96)
    assert np.array_equal(rle_to_mask(body["rle"]).astype(bool), want)
    # the mask's polygons under the project's bound, as segment/ makes them
    drawn = polygons_to_mask(body["polygons"], 80, 96)
    iou = (drawn & want).sum() / (drawn | want).sum()
    assert iou >= org_a.project.polygon_min_iou
    assert body["model_name"] == "service:shapes" and body["checkpoint_sha256"] == "INITIAL"


def test_a_service_not_used_for_clicks_or_of_another_project_is_refused(org_a, org_b, backend):
    service = register(org_a, backend, uses=["prelabel"])
    (image,) = upload_images(org_a, [(40, 30)])
    click = {"points": [[10, 10]], "point_labels": [1], "service": service["id"]}
    annotator = org_a.clients[Role.ANNOTATOR]
    refused = annotator.post(f"/api/v1/images/{image.id}/segment/", click, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "service"
    other = register(org_b, backend)
    missing = annotator.post(
        f"/api/v1/images/{image.id}/segment/", {**click, "service": other["id"]}, format="json"
    )
    assert missing.status_code == 404
    assert backend.records("predict.jsonl") == []
    looked = org_b.clients[Role.MANAGER].get(f"/api/v1/projects/{org_a.project.id}/model-services/")
    assert looked.status_code == 404


def test_registration_checks_the_url_fields_and_roles(org_a, settings):
    settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = False
    url = f"/api/v1/projects/{org_a.project.id}/model-services/"
    manager = org_a.clients[Role.MANAGER]
    for body, field in (
        ({"name": "x", "url": "http://127.0.0.1:9090"}, "url"),
        ({"name": "x", "url": "ftp://example.com"}, "url"),
        ({"name": "x", "url": "http://93.184.215.14", "uses": ["dance"]}, "uses"),
        (
            {"name": "x", "url": "http://93.184.215.14", "auth": "basic", "credential": "nocolon"},
            "credential",
        ),
        ({"name": "x", "url": "http://93.184.215.14", "timeout_seconds": 0}, "timeout_seconds"),
    ):
        response = manager.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["error"]["field"].split(".")[0] == field, (body, response.content)
    assert (
        org_a.clients[Role.ANNOTATOR]
        .post(url, {"name": "x", "url": "http://93.184.215.14"}, format="json")
        .status_code
        == 403
    )
    assert not ModelService.objects.exists()


def test_accepted_tasks_reach_the_backend_as_training_events(org_a, backend):
    from tests.labelhub.learning.conftest import accept_through_api, disc_region

    project = org_a.project
    project.pipeline = [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
    ]
    project.save()
    service = register(org_a, backend, uses=["training"])
    upload_images(org_a, [(96, 80), (96, 80)])
    region = disc_region()
    assert accept_through_api(org_a, [region]) == 2  # each acceptance: ANNOTATION_CREATED
    manager = org_a.clients[Role.MANAGER]
    started = manager.post(f"/api/v1/projects/{project.id}/model-services/{service['id']}/train/")
    assert started.status_code == 202 and started.json() == {"accepted_tasks": 2}
    events = backend.wait_for("events.jsonl", 3)
    assert sorted(e["event"] for e in events) == [
        "ANNOTATION_CREATED",
        "ANNOTATION_CREATED",
        "START_TRAINING",
    ]
    (training,) = [e["data"] for e in events if e["event"] == "START_TRAINING"]
    assert '<PolygonLabels name="polygon" toName="image">' in training["project"]["label_config"]
    assert len(training["tasks"]) == 2
    for task in training["tasks"]:
        (result,) = task["annotations"][0]["result"]
        assert result["type"] == "polygonlabels" and result["value"]["polygonlabels"] == ["cat"]
        ring = region["polygons"][0]["exterior"]
        assert result["value"]["points"] == [[x * 100 / 96, y * 100 / 80] for x, y in ring]
        assert task["data"]["image"].startswith(backend_public_url(org_a))
    created = [e["data"] for e in events if e["event"] == "ANNOTATION_CREATED"]
    assert {e["task"]["id"] for e in created} == {t["id"] for t in training["tasks"]}


def backend_public_url(org) -> str:
    from django.conf import settings

    return f"{settings.LABELHUB_PUBLIC_URL}/api/v1/model-services/images/"
