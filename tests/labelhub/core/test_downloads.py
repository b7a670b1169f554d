"""Images and exports on S3 (a real moto server): 302 to a presigned URL that S3 serves with ranges, the
proxy mode forwarding Range to S3, and presigned URLs signed for a public endpoint."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.helpers import image_bytes, upload

from .conftest import s3_client

pytestmark = pytest.mark.django_db


def fetch(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def stored_image(org_a, s3_storage, moto_endpoint):
    data = image_bytes(80, 60, seed=7)
    response = upload(org_a.clients["manager"], org_a.project.id, ("cat.png", data))
    assert response.status_code == 201, response.json()
    image = response.json()["created"][0]
    keys = [o["Key"] for o in s3_client(moto_endpoint).list_objects_v2(Bucket=s3_storage)["Contents"]]
    assert any(k.endswith(f"{image['sha256']}.png") for k in keys)  # the bytes went to S3, not MEDIA_ROOT
    return image, data


@pytest.fixture
def export_id(org_a, stored_image, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients["manager"].post(
            f"/api/v1/projects/{org_a.project.id}/exports/",
            {"format": "coco", "include_images": True, "filters": {"include_unaccepted": True}},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = org_a.clients["manager"].get(f"/api/v1/exports/{response.json()['id']}/").json()
    assert body["status"] == "done", body
    return body["id"], body["sha256"], body["size_bytes"]


def test_image_file_redirects_to_a_presigned_url_that_serves_ranges(org_a, stored_image, moto_endpoint):
    image, data = stored_image
    response = org_a.clients["annotator"].get(f"/api/v1/images/{image['id']}/file/")
    assert response.status_code == 302 and response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    assert location.startswith(moto_endpoint + "/") and "X-Amz-Signature=" in location
    assert "X-Amz-Expires=300" in location
    status, headers, body = fetch(location)
    assert status == 200 and body == data
    assert (
        headers["Content-Type"] == "image/png"
        and headers["Content-Disposition"] == f'inline; filename="{image["sha256"]}.png"'
    )
    status, headers, body = fetch(location, {"Range": "bytes=10-41"})
    assert status == 206 and body == data[10:42]
    assert headers["Content-Range"] == f"bytes 10-41/{len(data)}"
    # Other organizations still get 404 before any URL is made.
    assert org_a.clients["annotator"].get("/api/v1/images/999999/file/").status_code == 404


def test_export_download_redirect_serves_a_presigned_range(org_a, export_id):
    pk, sha256, size = export_id
    response = org_a.clients["manager"].get(f"/api/v1/exports/{pk}/download/", HTTP_RANGE="bytes=0-1023")
    assert response.status_code == 302
    status, headers, whole = fetch(response["Location"])
    assert status == 200 and len(whole) == size and whole[:2] == b"PK"
    assert (
        headers["Content-Type"] == "application/zip"
        and f"export{pk}-coco.zip" in headers["Content-Disposition"]
    )
    status, headers, part = fetch(response["Location"], {"Range": "bytes=100-1123"})
    assert status == 206 and part == whole[100:1124] and headers["Content-Range"] == f"bytes 100-1123/{size}"
    assert hashlib.sha256(whole).hexdigest() == sha256


def test_proxy_mode_forwards_the_range_to_s3(org_a, export_id, settings):
    settings.LABELHUB_S3_DOWNLOAD = "proxy"
    pk, sha256, size = export_id
    client, url = org_a.clients["manager"], f"/api/v1/exports/{pk}/download/"
    full = client.get(url)
    assert full.status_code == 200 and full["ETag"] == f'"{sha256}"' and full["Accept-Ranges"] == "bytes"
    data = b"".join(full.streaming_content)
    assert len(data) == size == int(full["Content-Length"])
    part = client.get(url, HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-99/{size}"
    assert b"".join(part.streaming_content) == data[10:100] and part["Content-Length"] == "90"
    tail = client.get(url, HTTP_RANGE="bytes=-16")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-16:]
    past = client.get(url, HTTP_RANGE=f"bytes={size}-{size + 10}")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{size}"
    stale = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"not-the-etag"')
    assert stale.status_code == 200 and len(b"".join(stale.streaming_content)) == size
    for ignored in (
        "bytes=0-1,5-6",
        "lines=1-2",
        "bytes=x-",
        "bytes=10-5",
    ):  # not one byte range: the whole file
        whole = client.get(url, HTTP_RANGE=ignored)
        assert whole.status_code == 200 and len(b"".join(whole.streaming_content)) == size, ignored
    resumed = client.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=full["ETag"])
    assert resumed.status_code == 206 and b"".join(resumed.streaming_content) == data[:10]


def test_proxy_mode_serves_image_ranges(org_a, stored_image, settings):
    settings.LABELHUB_S3_DOWNLOAD = "proxy"
    image, data = stored_image
    response = org_a.clients["annotator"].get(f"/api/v1/images/{image['id']}/file/", HTTP_RANGE="bytes=0-7")
    assert response.status_code == 206 and b"".join(response.streaming_content) == data[:8]
    whole = org_a.clients["annotator"].get(f"/api/v1/images/{image['id']}/file/")
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == data


def test_presigned_urls_are_signed_for_the_public_endpoint(org_a, stored_image, settings, moto_endpoint):
    # The API reaches S3 as 127.0.0.1; clients reach the same server by another name.
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    settings.LABELHUB_S3_PUBLIC_ENDPOINT_URL = public
    image, data = stored_image
    location = org_a.clients["annotator"].get(f"/api/v1/images/{image['id']}/file/")["Location"]
    assert urllib.parse.urlsplit(location).netloc == urllib.parse.urlsplit(public).netloc
    status, _, body = fetch(location, {"Range": "bytes=0-3"})
    assert status == 206 and body == data[:4]


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = "import json; from labelhub import settings as s; print(json.dumps(s.STORAGES['default']))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABELHUB_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_labelhub_storage_s3_configures_django_storages(tmp_path):
    result = _settings_in_a_fresh_process(
        LABELHUB_VAR_DIR=str(tmp_path),
        LABELHUB_STORAGE="s3",
        LABELHUB_S3_BUCKET="b",
        LABELHUB_S3_ENDPOINT_URL="http://minio:9000",
    )
    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert (
        storage["OPTIONS"]["bucket_name"] == "b" and storage["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    )


def test_an_unknown_download_mode_is_refused_at_start(tmp_path):
    result = _settings_in_a_fresh_process(LABELHUB_VAR_DIR=str(tmp_path), LABELHUB_S3_DOWNLOAD="stream")
    assert result.returncode != 0 and "LABELHUB_S3_DOWNLOAD" in result.stderr
