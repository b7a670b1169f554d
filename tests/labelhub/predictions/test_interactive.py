"""Interactive segmentation and pre-segmentation through the worker path, with the classical backend
(no checkpoint configured). The same flows with SAM's real architecture are in test_sam_path.py."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.embeddings import process_lru
from labelhub.predictions.models import Prediction
from labelhub.predictions.services import presegment_sweep, segmentation_backend
from tests.helpers import disc_image_bytes, upload
from workers.geometry import polygons_to_mask, rle_to_mask


@pytest.fixture(autouse=True)
def _clean_caches():
    cache.clear()
    process_lru.clear()
    yield
    process_lru.clear()


@pytest.fixture
def image(org_a):
    assert (
        upload(
            org_a.clients[Role.OWNER], org_a.project.id, ("disc.png", disc_image_bytes(96, 80))
        ).status_code
        == 201
    )
    return Image.objects.get()


def segment(client, image, body):
    return client.post(f"/api/v1/images/{image.id}/segment/", body, format="json")


@pytest.mark.django_db
def test_click_answers_rle_and_polygons_from_the_cached_embedding(org_a, image):
    client = org_a.clients[Role.ANNOTATOR]
    first = segment(client, image, {"points": [[48, 40]], "point_labels": [1]})
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["model_name"] == "classical-grabcut" and body["checkpoint_sha256"] == "none"
    assert body["embedding"] == "computed"
    mask = rle_to_mask(body["rle"])
    assert mask.shape == (80, 96) and mask[40, 48]
    assert body["area"] == int(mask.sum())
    # The polygons meet the project's bound against the mask they came from.
    from workers.geometry import polygons_iou  # noqa: F401  (documented helper, used below through rasterizing)

    drawn = polygons_to_mask(body["polygons"], 80, 96)
    iou = (drawn & mask).sum() / (drawn | mask).sum()
    assert iou >= org_a.project.polygon_min_iou

    second = segment(
        client,
        image,
        {"points": [[48, 40], [5, 5]], "point_labels": [1, 0], "mask_input_id": body["mask_input_id"]},
    )
    assert second.status_code == 200, second.json()
    assert second.json()["embedding"] == "process"  # not recomputed
    process_lru.clear()
    third = segment(client, image, {"box": [20, 10, 80, 70]})
    assert third.json()["embedding"] == "redis"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "prompt"),
        ({"points": [[500, 5]], "point_labels": [1]}, "points"),
        ({"points": [[5, 5]]}, "point_labels"),
        ({"points": [[5, 5]], "point_labels": [3]}, "point_labels"),
        ({"box": [10, 10, 10, 40]}, "box"),
        ({"box": [10, 10, 20]}, "box"),
        ({"points": "here", "point_labels": [1]}, "points"),
        ({"box": [1, 2, 3, 4], "mask_input_id": "expired"}, "mask_input_id"),
        ({"points": [[5, 5]], "point_labels": [1], "scribble": []}, "scribble"),
        ({"points": [[5, 5]], "point_labels": [1], "mask_rle": {"size": [8, 8], "counts": [64]}}, "mask_rle.size"),
        ({"points": [[5, 5]], "point_labels": [1], "mask_rle": {"size": [80, 96], "counts": [7680]}}, "mask_rle"),
        ({"points": [[5, 5]], "point_labels": [1], "mask_rle": {"size": [80, 96], "counts": "%%"}}, "mask_rle.counts"),
    ],
)
def test_bad_prompts_are_refused(org_a, image, body, field):
    response = segment(org_a.clients[Role.ANNOTATOR], image, body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["field"] == field, response.json()


@pytest.mark.django_db
def test_other_organization_cannot_segment(org_b, image):
    response = segment(org_b.clients[Role.OWNER], image, {"points": [[5, 5]], "point_labels": [1]})
    assert response.status_code == 404


@pytest.mark.django_db
def test_upload_presegments_through_the_worker_path(org_a, settings, django_capture_on_commit_callbacks):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    settings.LABELHUB_CLASSICAL_EVERYTHING = True  # the classical backend's flood is off by default
    client = org_a.clients[Role.MANAGER]
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = upload(
            client,
            org_a.project.id,
            ("disc.png", disc_image_bytes(96, 80, seed=1)),
            ("b.png", disc_image_bytes(64, 64, seed=2)),
        )
    # on commit: the "images.added" event, then the one task it queues (one batch for both images)
    assert [c.__qualname__.split(".")[0] for c in queued] == ["publish", "enqueue_on_commit"]
    assert response.status_code == 201
    predictions = Prediction.objects.filter(status="ok").order_by("image_id")
    assert predictions.count() == 2
    for prediction in predictions:
        assert prediction.model_name == segmentation_backend().model_name
        for region in prediction.regions:
            mask = rle_to_mask(region["rle"])
            assert mask.shape == (prediction.image.height, prediction.image.width)
            drawn = polygons_to_mask(region["polygons"], *mask.shape)
            assert (drawn & mask).sum() / (drawn | mask).sum() >= 0.98
    listed = client.get(f"/api/v1/predictions/?project={org_a.project.id}").json()
    assert listed["count"] == 2
    # Queued again: idempotent, still one prediction per image.
    image_id = predictions[0].image_id
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/images/{image_id}/presegment/", {}, format="json").status_code == 202
    assert Prediction.objects.filter(image_id=image_id).count() == 1


@pytest.mark.django_db
def test_box_prompts_from_an_import_make_labelled_regions(org_a, image, django_capture_on_commit_callbacks):
    client = org_a.clients[Role.MANAGER]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/images/{image.id}/presegment/",
            {"boxes": [{"label": "dog", "box": [15, 8, 82, 72]}]},
            format="json",
        )
    assert response.status_code == 202
    prediction = Prediction.objects.get(image=image, kind="boxes")
    assert prediction.status == "ok" and [r["label"] for r in prediction.regions] == ["dog"]
    bad = client.post(
        f"/api/v1/images/{image.id}/presegment/",
        {"boxes": [{"label": "eel", "box": [1, 1, 5, 5]}]},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "boxes[0].label"
    assert (
        org_a.clients[Role.ANNOTATOR]
        .post(f"/api/v1/images/{image.id}/presegment/", {}, format="json")
        .status_code
        == 403
    )


@pytest.mark.django_db
def test_corrupt_stored_image_is_a_recorded_failure_that_the_sweep_retries(
    org_a, image, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from labelhub.predictions.services import image_presegment

    with open(image.file.path, "wb") as fh:
        fh.write(b"broken")
    prediction = image_presegment(image_id=image.id)
    assert prediction.status == "failed" and prediction.attempts == 1 and "Error" in prediction.error
    # Repaired file; the periodic sweep queues the failed image again and it succeeds.
    with open(image.file.path, "wb") as fh:
        fh.write(disc_image_bytes(96, 80))
    Prediction.objects.filter(id=prediction.id).update(
        updated_at=timezone.now() - timezone.timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert presegment_sweep() == [image.id]
    prediction.refresh_from_db()
    assert prediction.status == "ok" and prediction.attempts == 2
    assert Prediction.objects.filter(image=image).count() == 1


@pytest.mark.django_db
def test_pending_prediction_left_by_a_killed_worker_is_retried(
    org_a, image, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    backend = segmentation_backend()
    Prediction.objects.create(
        image=image, model_name=backend.model_name, checkpoint_sha256=backend.checkpoint_sha256, attempts=1
    )
    Prediction.objects.update(updated_at=timezone.now() - timezone.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert presegment_sweep() == [image.id]
    assert list(Prediction.objects.values_list("status", "attempts")) == [("ok", 2)]


@pytest.mark.django_db
def test_an_image_whose_message_was_lost_gets_its_prediction_from_the_sweep(
    org_a, image, settings, django_capture_on_commit_callbacks
):
    """No prediction row at all (the upload's message never reached a worker): the sweep finds the
    image itself, once it is older than LABELHUB_PRESEGMENT_STALE_SECONDS."""
    from django.utils import timezone

    from labelhub.images.models import Image

    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    settings.LABELHUB_CLASSICAL_EVERYTHING = True
    assert not Prediction.objects.filter(image=image).exists()
    assert presegment_sweep() == []  # too young: its message may still be on its way
    Image.objects.filter(pk=image.pk).update(created_at=timezone.now() - timezone.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert presegment_sweep() == [image.id]
    assert list(Prediction.objects.filter(image=image).values_list("status", flat=True)) == ["ok"]
    assert presegment_sweep() == []


@pytest.mark.django_db
def test_project_embeddings_are_precomputed(org_a, image, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients[Role.MANAGER].post(f"/api/v1/projects/{org_a.project.id}/embeddings/")
    assert response.status_code == 202 and response.json() == {"queued": 1}
    process_lru.clear()
    again = segment(org_a.clients[Role.ANNOTATOR], image, {"points": [[48, 40]], "point_labels": [1]})
    assert again.json()["embedding"] == "redis"


@pytest.mark.parametrize(
    "mode,checkpoint,eager,backend,expected",
    [
        ("auto", "", False, "redis://x", "api"),  # classical: decode where the click arrives
        ("auto", "/ckpt.pth", False, "redis://x", "worker"),  # SAM with GPU workers reachable
        ("auto", "/ckpt.pth", True, "redis://x", "api"),  # embedded: no workers
        ("auto", "/ckpt.pth", False, None, "api"),  # no result backend: no answer could come back
        ("worker", "", False, "redis://x", "worker"),
        ("worker", "", True, "redis://x", "api"),
        ("api", "/ckpt.pth", False, "redis://x", "api"),
    ],
)
def test_decoder_location(settings, mode, checkpoint, eager, backend, expected):
    from labelhub.predictions.interactive import decoder_location

    settings.LABELHUB_INTERACTIVE_DECODER = mode
    settings.LABELHUB_SAM_CHECKPOINT = checkpoint
    settings.CELERY_TASK_ALWAYS_EAGER = eager
    settings.CELERY_RESULT_BACKEND = backend
    assert decoder_location() == expected


@pytest.mark.django_db
@pytest.mark.parametrize("simplifier", ["douglas_peucker", "visvalingam_whyatt", "slope", "ratio", "bounded"])
def test_every_project_simplifier_answers_within_the_project_bound(org_a, image, simplifier):
    """A project's default simplifier has no tolerance of its own: its tolerance is tuned to the
    project's bound (here IoU >= 0.95 and 2 px), whatever the method."""
    project = org_a.project
    project.polygon_simplifier = simplifier
    project.polygon_min_iou = 0.95
    project.polygon_max_distance = 2.0
    project.save()
    answer = segment(org_a.clients[Role.ANNOTATOR], image, {"points": [[48, 40]], "point_labels": [1]})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    mask = rle_to_mask(body["rle"])
    drawn = polygons_to_mask(body["polygons"], 80, 96)
    assert body["polygons"] and (drawn & mask).sum() / (drawn | mask).sum() >= 0.95


@pytest.mark.django_db
def test_click_answers_503_when_the_interactive_queue_cannot_be_reached(org_a, image, settings, broker_down):
    """LABELHUB_INTERACTIVE_DECODER=worker with the broker down (a real Redis port nobody listens on):
    the click waits for a worker's answer, so the failed publish is a clear, retryable 503, not a 500."""
    settings.LABELHUB_INTERACTIVE_DECODER = "worker"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_RESULT_BACKEND = settings.CELERY_RESULT_BACKEND or "redis://127.0.0.1:6379/13"
    answer = segment(org_a.clients[Role.ANNOTATOR], image, {"points": [[48, 40]], "point_labels": [1]})
    assert answer.status_code == 503, answer.content
    assert answer.json()["error"]["code"] == "queue_unavailable"
    assert "cannot be reached" in answer.json()["error"]["message"]


def polygonize(client, image, body):
    return client.post(f"/api/v1/images/{image.id}/polygonize/", body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize("simplifier", ["bounded", "douglas_peucker"])
def test_polygonize_gives_the_polygons_segment_gives_for_the_same_mask(org_a, image, simplifier):
    """A mask decoded elsewhere (the browser's SAM decoder) becomes the same polygons the server's own
    decode returns for that mask: one simplifier and one bound, whoever decoded."""
    org_a.project.polygon_simplifier = simplifier
    org_a.project.save()
    client = org_a.clients[Role.ANNOTATOR]
    answer = segment(client, image, {"points": [[48, 40]], "point_labels": [1]}).json()
    assert answer["polygons"]
    out = polygonize(client, image, {"rle": answer["rle"]})
    assert out.status_code == 200, out.json()
    body = out.json()
    assert body["polygons"] == answer["polygons"]
    assert body["area"] == answer["area"] and body["simplifier"] == simplifier
    assert body["vertices"] == sum(len(p["exterior"]) + sum(map(len, p["holes"])) for p in body["polygons"])
    mask = rle_to_mask(answer["rle"]).astype(bool)
    drawn = polygons_to_mask(body["polygons"], 80, 96)
    assert (drawn & mask).sum() / (drawn | mask).sum() >= org_a.project.polygon_min_iou

    # uncompressed counts (a list, as other tools write them) name the same mask
    from workers.geometry import mask_to_rle

    counts = []
    flat = mask.T.reshape(-1)  # column-major, starting with a run of zeros
    value, run = False, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    assert mask_to_rle(mask)["counts"] == answer["rle"]["counts"]
    again = polygonize(client, image, {"rle": {"size": [80, 96], "counts": counts}})
    assert again.status_code == 200, again.json()
    assert again.json()["polygons"] == answer["polygons"]

    empty = polygonize(client, image, {"rle": {"size": [80, 96], "counts": [80 * 96]}})
    assert empty.status_code == 200 and empty.json()["polygons"] == [] and empty.json()["area"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "rle"),
        ({"rle": "abc"}, "rle"),
        ({"rle": {"size": [80, 96]}}, "rle"),
        ({"rle": {"size": [96, 80], "counts": [7680]}}, "rle.size"),
        ({"rle": {"size": [80, 96], "counts": [10, 20]}}, "rle.counts"),
        ({"rle": {"size": [80, 96], "counts": [7680]}, "polygons": []}, "polygons"),
    ],
)
def test_polygonize_refuses_a_bad_mask_naming_the_field(org_a, image, body, field):
    response = polygonize(org_a.clients[Role.ANNOTATOR], image, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field, response.json()


@pytest.mark.django_db
def test_other_organization_cannot_polygonize(org_b, image):
    response = polygonize(org_b.clients[Role.OWNER], image, {"rle": {"size": [80, 96], "counts": [7680]}})
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_classical_backend_has_one_candidate(org_a, image):
    client = org_a.clients[Role.ANNOTATOR]
    body = segment(client, image, {"points": [[48, 40]], "point_labels": [1]}).json()
    assert (body["candidates"], body["candidate"]) == (1, 0)
    refused = segment(client, image, {"points": [[48, 40]], "point_labels": [1], "candidate": 1})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "candidate", refused.json()


@pytest.mark.django_db
def test_a_click_refines_a_region_sent_as_mask_rle(org_a, image):
    """The app's correction of an existing region: its shape goes with the first click as `mask_rle`
    (the classical backend's previous mask): a negative click inside never grows it and removes the
    part around the click; a positive click keeps all of it."""
    import numpy as np

    from workers.geometry import mask_to_rle

    client = org_a.clients[Role.ANNOTATOR]
    region = np.zeros((80, 96), dtype=bool)
    region[10:70, 10:86] = True  # a sloppy region: the disc and much background around it
    minus = segment(client, image, {"points": [[14, 14]], "point_labels": [0], "mask_rle": mask_to_rle(region)})
    assert minus.status_code == 200, minus.json()
    got = rle_to_mask(minus.json()["rle"])
    assert not (got & ~region).any() and not got[14, 14] and got.sum() < region.sum()
    plus = segment(client, image, {"points": [[48, 40]], "point_labels": [1], "mask_rle": mask_to_rle(region)})
    assert plus.status_code == 200, plus.json()
    assert (rle_to_mask(plus.json()["rle"]) >= region).all()
