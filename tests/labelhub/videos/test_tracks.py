"""Video tasks through the one annotation write path: track shapes validated against the task's frames,
a person's edit of a propagated shape making it a keyframe, comments pinned to a frame, propagation
requests and cancel, the video dataset formats round-tripping, polygon interpolation and J&F."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.labeling.models import Task
from labelhub.tracking import services as tracking
from labelhub.tracking.models import PropagationJob
from tests.helpers import square
from tests.labelhub.labeling.builders import next_task
from tests.labelhub.videos.test_ingest import CARPHONE, upload_video
from workers.geometry import mask_to_rle, rle_to_mask
from workers.video.interpolate import interpolate_polygons, track_fill
from workers.video.metrics import contour_f, frame_scores

pytestmark = pytest.mark.django_db
H, W = 144, 176


def box_mask(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def video_task(org_a, settings):
    settings.LABELHUB_VIDEO_TASK_FRAMES = 70
    settings.LABELHUB_VIDEO_TASK_OVERLAP = 5
    response = upload_video(
        org_a.clients[Role.MANAGER], org_a.project.id, "carphone.mp4", CARPHONE.read_bytes()
    )
    assert response.status_code == 201
    claimed = next_task(org_a.clients[Role.ANNOTATOR], org_a.project.id, "annotate").json()
    return response.json(), claimed


def put(client, task_id, revision, regions):
    return client.put(
        f"/api/v1/tasks/{task_id}/annotation/", {"revision": revision, "regions": regions}, format="json"
    )


def shape(track, frame, mask=None, **extra):
    return {
        "id": f"{track}-{frame}",
        "label": "cat",
        "kind": "mask",
        "rle": mask_to_rle(box_mask(30, 90, 40, 120) if mask is None else mask),
        "frame": frame,
        "track": track,
        **extra,
    }


def test_track_shapes_are_validated_against_the_task(org_a, video_task):
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    cases = [
        ([shape("t", 70)], "regions[0].frame"),  # task 1 is frames 0..69
        ([{**shape("t", 3), "track": ""}], "regions[0].track"),
        ([shape("t", 3), {**shape("t", 3), "id": "other"}], "regions[1].frame"),
        ([shape("t", 3, source="ai", keyframe=False)], "regions[0].model"),  # propagated: names its model
    ]
    for regions, field in cases:
        response = put(client, task["id"], 0, regions)
        assert response.status_code == 400, regions
        assert response.json()["error"]["field"] == field
    dog = {k: v for k, v in shape("t", 4).items() if k != "rle"}
    two = [shape("t", 3), {**dog, "label": "dog", "kind": "polygon", "polygons": [square(0, 0, 10, 10)]}]
    response = put(client, task["id"], 0, two)
    assert response.status_code == 400 and response.json()["error"]["code"] == "track_class_changed"
    assert Task.objects.get(pk=task["id"]).annotation.current_revision == 0


def test_edit_of_a_propagated_shape_makes_it_a_keyframe_and_comments_pin_frames(org_a, video_task):
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    model = {"name": "flow-dis-similarity", "version": "1"}
    from labelhub.labeling.annotations import Writer, annotation_write

    annotation_write(
        task=Task.objects.get(pk=task["id"]),
        author=None,
        base_revision=0,
        regions=[
            shape("t", 5),
            shape("t", 6, source="ai", keyframe=False, model=model),
            shape("t", 7, source="ai", keyframe=False, model=model),
        ],
        writer=Writer.PROPAGATION,
    )
    current = client.get(f"/api/v1/tasks/{task['id']}/annotation/").json()
    assert [r["keyframe"] for r in current["regions"]] == [True, False, False]
    regions = current["regions"]
    regions[1] = {**regions[1], "rle": mask_to_rle(box_mask(30, 80, 40, 120))}
    saved = put(client, task["id"], current["revision"], regions).json()["regions"]
    assert saved[1]["keyframe"] is True and saved[1]["source"] == "human" and "model" not in saved[1]
    assert saved[2]["keyframe"] is False and saved[2]["model"] == model  # untouched: stays propagated
    url = f"/api/v1/tasks/{task['id']}/comments/"
    assert (
        client.post(url, {"text": "here", "x": 5, "y": 5}, format="json").json()["error"]["field"] == "frame"
    )
    assert (
        client.post(url, {"text": "x", "frame": 6, "region_id": "t-7"}, format="json").json()["error"][
            "field"
        ]
        == "region_id"
    )
    made = client.post(url, {"text": "chin", "frame": 6, "region_id": "t-6", "x": 50, "y": 60}, format="json")
    assert made.status_code == 201 and made.json()["frame"] == 6


def test_propagation_request_rules_and_cancel_of_a_queued_job(org_a, video_task, settings):
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    assert put(client, task["id"], 0, [shape("t", 10), shape("t", 15)]).status_code == 200
    url = f"/api/v1/tasks/{task['id']}/propagate/"
    body = {"track": "t", "frame": 10, "direction": "forward", "frames": 50, "backend": "flow"}
    nothing = client.post(url, {**body, "frame": 11}, format="json").json()["error"]
    assert (nothing["field"], nothing["code"]) == ("frame", "no_seed_shape")
    settings.LABELHUB_SAM2_RANDOM_SEED = ""
    settings.LABELHUB_SAM2_CHECKPOINT = ""
    assert (
        client.post(url, {**body, "backend": "sam2"}, format="json").json()["error"]["code"]
        == "model_unavailable"
    )
    # another labeler without the lease may not
    other = org_a.clients[Role.REVIEWER]
    assert other.post(url, body, format="json").status_code == 409
    from labelhub.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # queued on the broker, no worker listens here
    try:
        job = client.post(url, body, format="json").json()
    finally:
        app.conf.task_always_eager = eager
    assert job["frames_total"] == 4  # 11..14: stops before the keyframe on 15
    cancelled = client.post(f"/api/v1/propagations/{job['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    ran = tracking.propagation_run(job["id"])  # the message delivered late: nothing runs
    assert ran.status == "cancelled" and ran.frames_done == 0
    assert Task.objects.get(pk=task["id"]).annotation.current_revision == 1


def test_flow_propagation_in_process_writes_streamed_chunks(
    org_a, video_task, settings, django_capture_on_commit_callbacks
):
    settings.LABELHUB_VIDEO_PROPAGATE_CHUNK = 3
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    assert put(client, task["id"], 0, [shape("t", 20)]).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        job = client.post(
            f"/api/v1/tasks/{task['id']}/propagate/",
            {"track": "t", "frame": 20, "direction": "backward", "frames": 7, "backend": "flow"},
            format="json",
        ).json()
    job = PropagationJob.objects.get(pk=job["id"])  # eager: ran in-process
    assert (job.status, job.frames_done, job.last_frame) == ("done", 7, 13)
    revision = Task.objects.get(pk=task["id"]).annotation.current_revision
    assert revision == 1 + 3  # chunks of 3, 3, 1
    frames = sorted(
        r["frame"] for r in client.get(f"/api/v1/tasks/{task['id']}/annotation/").json()["regions"]
    )
    assert frames == list(range(13, 21))


def test_prompt_seed_requests_are_validated(org_a, video_task):
    """Points (with their labels) or a box instead of the track's shape: malformed or out of the frame
    (176x144) is a 400 naming the field, and no job is made."""
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    assert put(client, task["id"], 0, [shape("t", 10)]).status_code == 200
    url = f"/api/v1/tasks/{task['id']}/propagate/"
    body = {"track": "n", "frame": 20, "direction": "forward", "frames": 5, "backend": "flow", "label": "dog"}
    cases = [
        ({"points": [[200, 10]], "point_labels": [1]}, "points", "invalid_prompt"),  # x beyond 176
        ({"points": [[10, -1]], "point_labels": [1]}, "points", "invalid_prompt"),
        ({"points": [[10, 10, 3]], "point_labels": [1]}, "points", "invalid_prompt"),
        ({"points": "10,10", "point_labels": [1]}, "points", "invalid_prompt"),
        ({"points": [[10, 10]]}, "point_labels", "invalid_prompt"),  # labels are required with points
        ({"points": [[10, 10]], "point_labels": [1, 0]}, "point_labels", "invalid_prompt"),
        ({"points": [[10, 10]], "point_labels": [2]}, "point_labels", "invalid_prompt"),
        ({"point_labels": [1]}, "point_labels", "invalid_prompt"),
        ({"box": [10, 10, 200, 50]}, "box", "invalid_prompt"),  # past the right edge
        ({"box": [30, 30, 10, 50]}, "box", "invalid_prompt"),  # x1 < x0
        ({"box": [1, 2, 3]}, "box", "invalid_prompt"),
        ({"box": [0, 0, "a", 4]}, "box", "invalid_prompt"),
        ({"box": [10, 10, 60, 60], "frame": 70}, "frame", "invalid_frame"),  # task 1 is frames 0..69
        ({"box": [10, 10, 60, 60], "label": "horse"}, "label", "unknown_class"),
        ({"box": [10, 10, 60, 60], "label": None}, "label", "null"),
        ({"box": [10, 10, 60, 60], "track": "t", "frame": 10}, "frame", "keyframe_exists"),
        (
            {"box": [10, 10, 60, 60], "track": "t", "frame": 12, "label": "dog"},
            "label",
            "track_class_changed",
        ),
        ({"frame": 10, "track": "t"}, "label", "invalid"),  # a label only with a prompt
    ]
    for change, field, code in cases:
        response = client.post(url, {**body, **change}, format="json")
        assert response.status_code == 400, (change, response.content)
        error = response.json()["error"]
        assert (error["field"], error["code"]) == (field, code), (change, error)
    without_label = client.post(url, {**body, "box": [10, 10, 60, 60], "label": ""}, format="json")
    assert without_label.json()["error"]["field"] == "label"
    assert not PropagationJob.objects.exists()
    # a new track needs its class; an existing one takes its own
    body.pop("label")
    response = client.post(url, {**body, "box": [10, 10, 60, 60]}, format="json").json()["error"]
    assert (response["field"], response["code"]) == ("label", "required")
    from labelhub.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # queued, not run: only the request is checked here
    try:
        job = client.post(
            url,
            {**body, "track": "t", "frame": 12, "points": [[50, 60], [0, 0]], "point_labels": [1, 0]},
            format="json",
        )
    finally:
        app.conf.task_always_eager = eager
    assert job.status_code == 202, job.content
    made = job.json()
    assert made["seed_prompt"] == {"points": [[50.0, 60.0], [0.0, 0.0]], "point_labels": [1, 0], "box": None}
    assert made["frames_total"] == 5 and PropagationJob.objects.get(pk=made["id"]).label == "cat"


def test_flow_propagation_seeded_by_a_box_through_the_interactive_segmenter(
    org_a, video_task, settings, django_capture_on_commit_callbacks
):
    """The fallback seeded by a box: the project's interactive segmenter (here the classical one, as a
    click without a SAM checkpoint) gives the seed mask on the frame, written there as a keyframe naming
    that model, then the flow carries it."""
    settings.LABELHUB_SAM_CHECKPOINT = ""
    settings.LABELHUB_SAM_RANDOM_SEED = ""
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/tasks/{task['id']}/propagate/",
            {
                "track": "p",
                "frame": 40,
                "direction": "forward",
                "frames": 4,
                "backend": "flow",
                "label": "cat",
                "box": [60, 30, 120, 100],
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    job = PropagationJob.objects.get(pk=response.json()["id"])
    assert (job.status, job.frames_done, job.last_frame) == ("done", 4, 44), job.error
    regions = {r["frame"]: r for r in client.get(f"/api/v1/tasks/{task['id']}/annotation/").json()["regions"]}
    assert sorted(regions) == [40, 41, 42, 43, 44]
    seed = regions[40]
    assert seed["keyframe"] is True and seed["source"] == "ai" and seed["label"] == "cat"
    from labelhub.predictions.backends import segmentation_backend

    assert seed["model"]["name"] == segmentation_backend().model_name
    mask = rle_to_mask(seed["rle"])
    assert mask.any() and not mask[:, :55].any() and not mask[105:].any()  # inside the box (GrabCut)
    assert job.seed_rle == seed["rle"]
    assert all(regions[f]["model"]["name"] == "flow-dis-similarity" for f in (41, 42, 43, 44))
    assert all(not regions[f]["keyframe"] for f in (41, 42, 43, 44))


def test_video_formats_round_trip(org_a, video_task):
    video, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    model = {"name": "sam2.1", "version": "hiera_t random-seed-0"}
    regions = [
        shape("a", 2),
        shape("a", 3, mask=box_mask(31, 91, 41, 121), source="ai", keyframe=False, model=model),
        {**shape("a", 4, mask=np.zeros((H, W), bool)), "outside": True},
        {
            **shape("b", 2, mask=box_mask(0, 10, 0, 10)),
            "occluded": True,
            "label": "dog",
            "kind": "polygon",
            "rle": None,
            "polygons": [square(0, 0, 10, 10)],
        },
    ]
    regions[3].pop("rle")
    assert put(client, task["id"], 0, regions).status_code == 200
    manager = org_a.clients[Role.MANAGER]
    # A video task in the task list: the row is the task's own representation (no image, its frames).
    rows = manager.get(f"/api/v1/tasks/?project={task['project']}").json()["results"]
    assert rows and all(row == manager.get(f"/api/v1/tasks/{row['id']}/").json() for row in rows)
    assert rows[0]["image_width"] is None and rows[0]["frame_stop"] > rows[0]["frame_start"]
    stored = manager.get(f"/api/v1/tasks/{task['id']}/annotation/").json()["regions"]
    for name in ("cvat_video", "youtube_vis"):
        exported = manager.get(f"/api/v1/videos/{video['id']}/export/?format_name={name}")
        assert exported.status_code == 200, exported.content
        # wipe, then read back
        current = manager.get(f"/api/v1/tasks/{task['id']}/annotation/").json()
        assert put(manager, task["id"], current["revision"], []).status_code == 200
        from django.core.files.uploadedfile import SimpleUploadedFile

        imported = manager.post(
            f"/api/v1/videos/{video['id']}/import/",
            {"format": name, "file": SimpleUploadedFile(f"x.{name}", exported.content)},
            format="multipart",
        )
        assert imported.status_code == 200, imported.content
        back = manager.get(f"/api/v1/tasks/{task['id']}/annotation/").json()["regions"]
        expected = stored if name == "cvat_video" else [_as_mask(r) for r in stored]
        assert sorted(back, key=lambda r: (r["track"], r["frame"])) == sorted(
            expected, key=lambda r: (r["track"], r["frame"])
        ), name
    davis = zipfile.ZipFile(
        io.BytesIO(manager.get(f"/api/v1/videos/{video['id']}/export/?format_name=davis").content)
    )
    png = np.asarray(PILImage.open(io.BytesIO(davis.read("Annotations/carphone/00002.png"))))
    assert png.shape == (H, W) and set(np.unique(png)) == {0, 1, 2}
    assert json.loads(davis.read("Annotations/carphone/objects.json"))["1"] == {"track": "a", "label": "cat"}
    assert len([n for n in davis.namelist() if n.endswith(".png")]) == 120
    mots = manager.get(f"/api/v1/videos/{video['id']}/export/?format_name=mots").content.decode().split("\n")
    first = mots[0].split(" ")
    assert first[:5] == ["2", "1001", "1", "144", "176"]
    assert rle_to_mask({"size": [H, W], "counts": first[5]}).sum() == 60 * 80


def _as_mask(r: dict) -> dict:
    """YouTube-VIS holds masks: a polygon shape comes back as its pixels."""
    if r["kind"] == "mask":
        return r
    from labelhub.regions.validation import region_mask

    out = {k: v for k, v in r.items() if k != "polygons"}
    return {**out, "kind": "mask", "rle": mask_to_rle(region_mask(r, H, W))}


def test_interpolation_between_polygon_keyframes():
    a = [square(0, 0, 10, 10)]
    b = [square(20, 0, 30, 10)]
    mid = interpolate_polygons(a, b, 0.5)
    xs = [p[0] for p in mid[0]["exterior"]]
    assert min(xs) == pytest.approx(10) and max(xs) == pytest.approx(20)
    filled = track_fill(
        [
            {
                "id": "k0",
                "track": "t",
                "frame": 0,
                "label": "cat",
                "kind": "polygon",
                "polygons": a,
                "keyframe": True,
            },
            {
                "id": "k4",
                "track": "t",
                "frame": 4,
                "label": "cat",
                "kind": "polygon",
                "polygons": b,
                "keyframe": True,
            },
        ]
    )
    assert [s["frame"] for s in filled] == [0, 1, 2, 3, 4]
    assert filled[2]["model"]["name"] == "interpolation" and not filled[2]["keyframe"]


def test_j_and_f():
    truth = box_mask(20, 60, 20, 60)
    assert frame_scores(truth, truth)["jf"] == 1.0
    shifted = box_mask(21, 61, 20, 60)
    scores = frame_scores(shifted, truth)
    assert scores["j"] == pytest.approx(39 * 40 / (41 * 40))
    assert scores["f"] == 1.0  # one pixel is within DAVIS's tolerance (0.008 of the diagonal: 2 px here)
    assert contour_f(box_mask(20, 60, 80, 120), truth) == 0.0
    assert frame_scores(np.zeros((H, W), bool), np.zeros((H, W), bool))["jf"] == 1.0


def test_video_metrics_compare_propagated_with_kept(org_a, video_task):
    _, task = video_task
    client = org_a.clients[Role.ANNOTATOR]
    from labelhub.labeling.annotations import Writer, annotation_write

    model = {"name": "flow-dis-similarity", "version": "1"}
    annotation_write(
        task=Task.objects.get(pk=task["id"]),
        author=None,
        base_revision=0,
        regions=[
            shape("t", 5),
            shape("t", 6, mask=box_mask(30, 90, 40, 120), source="ai", keyframe=False, model=model),
            shape("t", 7, mask=box_mask(30, 90, 40, 120), source="ai", keyframe=False, model=model),
        ],
        writer=Writer.PROPAGATION,
    )
    current = client.get(f"/api/v1/tasks/{task['id']}/annotation/").json()
    regions = current["regions"]
    regions[2] = {**regions[2], "rle": mask_to_rle(box_mask(30, 90, 40, 100))}  # frame 7 corrected
    assert put(client, task["id"], current["revision"], regions).status_code == 200
    metrics = client.get(f"/api/v1/tasks/{task['id']}/video-metrics/").json()
    by_frame = {f["frame"]: f for f in metrics["frames"]}
    assert set(by_frame) == {6, 7}
    assert by_frame[6]["jf"] == 1.0 and not by_frame[6]["corrected"]
    assert by_frame[7]["iou"] == pytest.approx(60 * 60 / (60 * 80)) and by_frame[7]["corrected"]
    assert metrics["overall"]["frames"] == 2 and metrics["overall"]["corrected"] == 1
    assert metrics["tracks"]["t"]["iou"] == pytest.approx((1 + 0.75) / 2)


def test_another_organization_sees_none_of_it(org_a, org_b, video_task):
    video, task = video_task
    assert put(org_a.clients[Role.ANNOTATOR], task["id"], 0, [shape("t", 3)]).status_code == 200
    outsider = org_b.clients[Role.OWNER]
    body = {"track": "t", "frame": 3, "direction": "forward", "frames": 2, "backend": "flow"}
    assert outsider.post(f"/api/v1/tasks/{task['id']}/propagate/", body, format="json").status_code == 404
    assert outsider.get(f"/api/v1/videos/{video['id']}/export/?format_name=mots").status_code == 404
    assert outsider.get(f"/api/v1/tasks/{task['id']}/video-metrics/").status_code == 404
    assert outsider.get(f"/api/v1/videos/{video['id']}/").status_code == 404
    assert outsider.get("/api/v1/videos/").json()["results"] == []
    assert outsider.get("/api/v1/propagations/").json()["results"] == []
