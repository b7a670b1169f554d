"""The export API: managers create (202, run on the cpu queue), members read progress and download with
HTTP range requests, other organizations get 404."""

from __future__ import annotations

import hashlib

import pytest

from labelhub.datasets.tasks import run_export

from .conftest import read_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(org_a, dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients["manager"].post(
            f"/api/v1/projects/{org_a.project.id}/exports/",
            {"format": "coco", "split": {"train": 0.6, "val": 0.4, "seed": 1}, "include_images": True},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["progress"] == {"done": 0, "total": 6}
    return body


def test_export_runs_on_the_cpu_queue_and_reports_progress(org_a, export):
    assert run_export.name == "labelhub.datasets.run_export"
    from labelhub.celery import app

    assert app.amqp.router.route({}, run_export.name)["queue"].name == "cpu"
    body = org_a.clients["annotator"].get(f"/api/v1/exports/{export['id']}/").json()
    assert body["status"] == "done" and body["progress"] == {"done": 6, "total": 6}
    assert (
        body["annotations_count"] == 20
        and body["download_url"] == f"/api/v1/exports/{export['id']}/download/"
    )
    listed = org_a.clients["reviewer"].get("/api/v1/exports/", {"project": org_a.project.id}).json()
    assert [e["id"] for e in listed["results"]] == [export["id"]]


def test_download_whole_file_and_ranges(org_a, export):
    client = org_a.clients["annotator"]
    url = f"/api/v1/exports/{export['id']}/download/"
    full = client.get(url)
    assert (
        full.status_code == 200
        and full["Accept-Ranges"] == "bytes"
        and full["Content-Type"] == "application/zip"
    )
    data = b"".join(full.streaming_content)
    size = len(data)
    assert int(full["Content-Length"]) == size
    assert hashlib.sha256(data).hexdigest() == client.get(f"/api/v1/exports/{export['id']}/").json()["sha256"]
    names = read_zip(data).namelist()
    assert "annotations/instances_train.json" in names and any(n.startswith("images/val/") for n in names)

    part = client.get(url, HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-99/{size}"
    assert b"".join(part.streaming_content) == data[10:100] and part["Content-Length"] == "90"
    tail = client.get(url, HTTP_RANGE="bytes=-16")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-16:]
    rest = client.get(url, HTTP_RANGE=f"bytes={size - 5}-")
    assert (
        rest["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}"
        and b"".join(rest.streaming_content) == data[-5:]
    )
    past = client.get(url, HTTP_RANGE=f"bytes={size}-{size + 10}")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{size}"
    clipped = client.get(url, HTTP_RANGE=f"bytes=0-{size * 2}")
    assert clipped.status_code == 206 and b"".join(clipped.streaming_content) == data
    stale = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"not-the-etag"')
    assert stale.status_code == 200
    resumed = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=full["ETag"])
    assert resumed.status_code == 206
    assert client.get(url, HTTP_ACCEPT="application/zip").status_code == 200


def test_permissions_and_isolation(org_a, org_b, export):
    for role in ("annotator", "reviewer"):
        denied = org_a.clients[role].post(
            f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
        )
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "role_forbidden"
    outsider = org_b.clients["owner"]
    assert outsider.get(f"/api/v1/exports/{export['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/exports/{export['id']}/download/").status_code == 404
    assert (
        outsider.post(
            f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
        ).status_code
        == 404
    )
    assert outsider.get("/api/v1/exports/").json()["results"] == []


def test_bad_requests_name_the_field(org_a, dataset):
    client = org_a.clients["owner"]
    url = f"/api/v1/projects/{org_a.project.id}/exports/"
    bad = client.post(url, {"format": "coco", "filters": {"classes": ["cat", 3]}}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "filters.classes"
    bad = client.post(url, {"format": "coco", "split": {"train": "most"}}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "split.train"
    bad = client.post(url, {"format": "tfrecord"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "format"


def test_download_of_an_unfinished_export_is_a_conflict(org_a, dataset):
    created = org_a.clients["owner"].post(
        f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "voc"}, format="json"
    )
    assert created.status_code == 202  # the on-commit enqueue never fires inside this test's transaction
    response = org_a.clients["owner"].get(f"/api/v1/exports/{created.json()['id']}/download/")
    assert response.status_code == 409 and response.json()["error"]["code"] == "export_not_ready"


def test_formats_endpoint(org_a):
    formats = org_a.clients["annotator"].get("/api/v1/exports/formats/").json()
    assert {f["name"]: f["importable"] for f in formats} == {
        "coco": True, "labelhub": False, "masks": False, "voc": False, "yolo": True,
        "coco_panoptic": False, "cvat": True, "label_studio": True,
    }  # fmt: skip
