"""The worker path end to end with Segment Anything's real architecture (vit_b built through
segment_anything's builder, seeded random weights): image in, prediction with RLE and polygons stored,
an interactive prompt answered from the cached embedding without running the encoder again.
Random weights make the masks meaningless: these tests check plumbing and provenance, never quality."""

from __future__ import annotations

import pytest
import segment_anything  # noqa: F401 - pinned in requirements.txt: imported, never skipped
from django.core.cache import cache

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.embeddings import process_lru
from labelhub.predictions.models import ImageEmbedding, Prediction
from labelhub.predictions.services import segmentation_backend
from tests.helpers import disc_image_bytes, upload
from workers.geometry import polygons_to_mask, rle_to_mask


@pytest.fixture
def sam_settings(settings):
    settings.LABELHUB_SAM_RANDOM_SEED = "0"
    settings.LABELHUB_SAM_MODEL = "vit_b"
    settings.LABELHUB_SAM_DEVICE = "cpu"
    cache.clear()
    process_lru.clear()
    yield settings
    process_lru.clear()


@pytest.mark.django_db
def test_sam_worker_path_end_to_end(org_a, sam_settings, django_capture_on_commit_callbacks):
    backend = segmentation_backend()
    assert backend.model_name == "sam-vit_b" and backend.checkpoint_sha256 == "random-seed-0"
    manager, annotator = org_a.clients[Role.MANAGER], org_a.clients[Role.ANNOTATOR]
    assert upload(manager, org_a.project.id, ("disc.png", disc_image_bytes(96, 80))).status_code == 201
    image = Image.objects.get()

    encoded_before = backend.images_encoded
    with django_capture_on_commit_callbacks(execute=True):
        queued = manager.post(
            f"/api/v1/images/{image.id}/presegment/",
            {"boxes": [{"label": "cat", "box": [10, 10, 86, 70]}]},
            format="json",
        )
    assert queued.status_code == 202
    assert backend.images_encoded == encoded_before + 1  # the worker embedded the image once

    prediction = Prediction.objects.get(image=image, kind="boxes")
    assert prediction.status == "ok", prediction.error
    assert (prediction.model_name, prediction.checkpoint_sha256) == ("sam-vit_b", "random-seed-0")
    for region in prediction.regions:  # a random decoder may draw anything, but what it drew is stored whole
        mask = rle_to_mask(region["rle"])
        assert mask.shape == (80, 96)
        drawn = polygons_to_mask(region["polygons"], 80, 96)
        assert (drawn & mask).sum() / (drawn | mask).sum() >= org_a.project.polygon_min_iou
        assert region["source"] == "ai" and region["prediction_id"] == prediction.id
    stored = ImageEmbedding.objects.get(image=image)
    assert (stored.model_name, stored.checkpoint_sha256) == ("sam-vit_b", "random-seed-0")
    assert 2 * 256 * 64 * 64 <= stored.nbytes < 2 * 256 * 64 * 64 + 4096  # fp16 features

    # Interactive clicks: answered from the cached embedding; the encoder does not run again,
    # not even after this process forgets it (Redis), nor after Redis does (storage).
    calls = backend.encoder_calls
    first = annotator.post(
        f"/api/v1/images/{image.id}/segment/", {"points": [[48, 40]], "point_labels": [1]}, format="json"
    )
    assert first.status_code == 200, first.json()
    assert first.json()["embedding"] == "process"
    assert first.json()["model_name"] == "sam-vit_b"
    assert rle_to_mask(first.json()["rle"]).shape == (80, 96)
    process_lru.clear()
    second = annotator.post(
        f"/api/v1/images/{image.id}/segment/",
        {
            "points": [[48, 40], [2, 2]],
            "point_labels": [1, 0],
            "mask_input_id": first.json()["mask_input_id"],
        },
        format="json",
    )
    assert second.status_code == 200 and second.json()["embedding"] == "redis"
    process_lru.clear()
    cache.clear()
    third = annotator.post(f"/api/v1/images/{image.id}/segment/", {"box": [20, 10, 70, 60]}, format="json")
    assert third.status_code == 200 and third.json()["embedding"] == "storage"
    assert backend.encoder_calls == calls


@pytest.mark.django_db
@pytest.mark.parametrize("decoder", ["torch", "onnx"])
def test_a_single_click_offers_sams_three_candidates_best_first(org_a, sam_settings, decoder, tmp_path):
    sam_settings.LABELHUB_SAM_DECODER = decoder
    sam_settings.LABELHUB_SAM_ONNX_DIR = str(tmp_path / "onnx")
    sam_settings.LABELHUB_PRESEGMENT_ON_UPLOAD = False
    annotator = org_a.clients[Role.ANNOTATOR]
    assert (
        upload(org_a.clients[Role.MANAGER], org_a.project.id, ("d.png", disc_image_bytes(96, 80))).status_code
        == 201
    )
    url = f"/api/v1/images/{Image.objects.get().id}/segment/"
    click = {"points": [[48, 40]], "point_labels": [1]}
    answers = [annotator.post(url, {**click, "candidate": k}, format="json") for k in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.json() for a in answers]
    bodies = [a.json() for a in answers]
    assert [(b["candidates"], b["candidate"]) for b in bodies] == [(3, 0), (3, 1), (3, 2)]
    scores = [b["score"] for b in bodies]
    assert scores == sorted(scores, reverse=True)  # best first, by SAM's predicted IoU
    assert annotator.post(url, click, format="json").json()["rle"] == bodies[0]["rle"]  # 0 is the default
    assert len({b["rle"]["counts"] for b in bodies}) == 3  # three different masks
    assert len({b["mask_input_id"] for b in bodies}) == 3  # each refines as itself

    # one candidate only: two clicks, a box, a previous mask; and never a fourth
    for body in (
        {"points": [[48, 40], [5, 5]], "point_labels": [1, 0]},
        {"box": [10, 10, 80, 70]},
        {**click, "mask_input_id": bodies[1]["mask_input_id"]},
    ):
        one = annotator.post(url, body, format="json").json()
        assert (one["candidates"], one["candidate"]) == (1, 0), one
        refused = annotator.post(url, {**body, "candidate": 1}, format="json")
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "candidate", refused.json()
    for bad in (3, -1, "two", True):
        refused = annotator.post(url, {**click, "candidate": bad}, format="json")
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "candidate", (
            bad,
            refused.json(),
        )
