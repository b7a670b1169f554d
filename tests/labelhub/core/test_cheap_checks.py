"""Cheap refusals first: nesting, sizes, counts and zip integrity are checked before any expensive work,
and answer 4xx naming the field (never a 500)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.core.parsers import JSONTooDeep, json_depth_scan, json_loads_bounded
from labelhub.images.decoding import image_inspect
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from labelhub.regions import validation as regions_module
from tests.helpers import image_bytes, upload
from tests.labelhub.datasets.test_imports import post

NESTED = b"[" * 3000 + b"]" * 3000


@pytest.fixture
def task(org_a):
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(64, 48))).status_code == 201
    )
    return Image.objects.get().task


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method,url",
    [("put", "/api/v1/tasks/{task}/annotation/"), ("patch", "/api/v1/projects/{project}/")],
)
def test_a_body_nested_3000_levels_answers_400(org_a, task, method, url):
    client = org_a.clients[Role.OWNER]
    target = url.format(task=task.id, project=org_a.project.id)
    response = getattr(client, method)(target, NESTED, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["error"]["code"] == "too_deep"
    wrapped = b'{"revision": 0, "regions": ' + NESTED + b"}"
    assert getattr(client, method)(target, wrapped, content_type="application/json").status_code == 400


def _refused_at_request(response, settings) -> list[dict]:
    """A 400 from the POST itself (the file's cheap checks): nothing stored, no job, no file."""
    from labelhub.datasets.models import Import

    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "invalid_import" and error["field"] == "file"
    assert Import.objects.count() == 0 and Image.objects.count() == 0
    media = settings.MEDIA_ROOT
    assert not any(p.is_file() for p in media.rglob("*")) if media.exists() else True
    return error["details"]["problems"]


@pytest.mark.django_db
def test_a_nested_coco_file_answers_400_before_any_job(org_a, settings):
    response = post(
        org_a.clients[Role.OWNER], org_a.project.id, "c.json", b'{"images": ' + NESTED + b"}", "coco"
    )
    (problem,) = _refused_at_request(response, settings)
    assert problem["path"] == "$" and "deeper than 64 levels" in problem["message"]
    # a string full of brackets is not nesting: the file passes the check and reaches the job
    flat = b'{"images": [], "categories": [{"id": 1, "name": "' + b"[" * 3000 + b'"}], "annotations": []}'
    assert post(org_a.clients[Role.OWNER], org_a.project.id, "c.json", flat, "coco").status_code == 202


@pytest.mark.django_db
def test_a_nested_json_inside_a_zip_answers_400_naming_the_entry(org_a, settings):
    data = _stored_zip({"img/a.png": image_bytes(8, 8), "tasks/export.json": b"[" + NESTED + b"]"})
    response = post(org_a.clients[Role.OWNER], org_a.project.id, "ls.zip", data, "label_studio")
    (problem,) = _refused_at_request(response, settings)
    assert problem["path"] == "zip:tasks/export.json"
    assert "tasks/export.json" in response.json()["error"]["message"]


def test_the_depth_scan_skips_strings_and_escapes():
    json_depth_scan(b'["[[[[", {"a\\"": "[[[[\\""}]', max_depth=2)
    with pytest.raises(JSONTooDeep):
        json_depth_scan(b'{"a\\\\": [[1]]}', max_depth=2)  # the key ends with an escaped backslash
    with pytest.raises(JSONTooDeep):
        json_depth_scan(NESTED, max_depth=2999)
    json_depth_scan(NESTED, max_depth=3000)


def test_depth_limit_is_exact():
    assert json_loads_bounded("[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(JSONTooDeep):
        json_loads_bounded("[[[1]]]", max_depth=2)
    with pytest.raises(JSONTooDeep):
        json_loads_bounded('{"a": {"b": []}}', max_depth=2)


@pytest.mark.django_db
def test_a_million_vertices_are_refused_by_the_cap_before_any_geometry(org_a, task, monkeypatch):
    calls = {"polygons_clean": 0, "Polygon": 0}
    real_clean, real_polygon = regions_module.polygons_clean, regions_module.Polygon

    def counting_clean(*args, **kwargs):
        calls["polygons_clean"] += 1
        return real_clean(*args, **kwargs)

    def counting_polygon(*args, **kwargs):
        calls["Polygon"] += 1
        return real_polygon(*args, **kwargs)

    monkeypatch.setattr(regions_module, "polygons_clean", counting_clean)
    monkeypatch.setattr(regions_module, "Polygon", counting_polygon)
    client = org_a.clients[Role.OWNER]
    ring = [[1, 1], [2, 1], [2, 2]] * 333_334  # 1,000,002 vertices
    body = {"revision": 0, "regions": [{"label": "cat", "kind": "polygon", "polygons": [{"exterior": ring}]}]}
    response = client.put(f"/api/v1/tasks/{task.id}/annotation/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_vertices"
    assert calls == {"polygons_clean": 0, "Polygon": 0}
    # the wrappers are live: a small polygon goes through both
    small = {
        "revision": 0,
        "regions": [{"label": "cat", "kind": "polygon", "polygons": [{"exterior": ring[:3]}]}],
    }
    assert client.put(f"/api/v1/tasks/{task.id}/annotation/", small, format="json").status_code == 200
    assert calls == {"polygons_clean": 1, "Polygon": 1}
    assert AnnotationRevision.objects.count() == 1


@pytest.mark.django_db
def test_segment_refuses_too_many_points_before_the_model(org_a, task, monkeypatch):
    from labelhub.predictions import interactive

    def no_model(*args, **kwargs):
        raise AssertionError("the model was reached")

    monkeypatch.setattr(interactive, "embeddings_ensure", no_model)
    points = [[1, 1]] * 100_000
    response = org_a.clients[Role.ANNOTATOR].post(
        f"/api/v1/images/{task.image_id}/segment/",
        {"points": points, "point_labels": [1] * len(points)},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "too_many_points",
        "message": response.json()["error"]["message"],
        "field": "points",
    }


def _stored_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.django_db
def test_a_zip_entry_with_a_bad_crc_answers_400_naming_it(org_a, settings):
    png = image_bytes(40, 30, seed=5)
    data = bytearray(_stored_zip({"good.png": image_bytes(40, 30, seed=4), "bad.png": png}))
    at = data.rfind(png) + len(png) // 2
    data[at] ^= 0xFF  # the stored bytes no longer match the CRC in the headers
    response = post(org_a.clients[Role.OWNER], org_a.project.id, "d.zip", bytes(data), "images")
    (problem,) = _refused_at_request(response, settings)
    assert problem["path"] == "zip:bad.png" and "CRC" in problem["message"]
    assert "bad.png" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_zip_entry_larger_than_its_declared_size_answers_400_naming_it(org_a, settings):
    big = b"x" * 5000
    data = bytearray(_stored_zip({"notes/readme.txt": b"hi", "big.txt": big}))
    # the central directory (what zipfile trusts) declares 100 bytes for big.txt; the data has 5000
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(b"big.txt"))
    data[entry + 24 : entry + 28] = (100).to_bytes(4, "little")
    response = post(org_a.clients[Role.OWNER], org_a.project.id, "d.zip", bytes(data), "images")
    (problem,) = _refused_at_request(response, settings)
    assert problem["path"] == "zip:big.txt"  # zipfile reads 100 bytes, whose CRC is not the header's
    assert "CRC" in problem["message"] or "100 bytes its header declares" in problem["message"]


@pytest.mark.django_db
def test_zip_entries_over_the_per_file_limit_are_refused_before_extraction(org_a, settings, monkeypatch):
    from labelhub.datasets import imports

    settings.LABELHUB_MAX_UPLOAD_BYTES = 10_000
    extracted = []
    monkeypatch.setattr(imports, "zip_entry_copy", lambda *a, **k: extracted.append(a))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ("a.png", "b.png", "c.png"):
            zf.writestr(name, b"\0" * 3_000_000)  # 3 MB each, a few KB compressed
    response = post(org_a.clients[Role.OWNER], org_a.project.id, "d.zip", buf.getvalue(), "images")
    problems = _refused_at_request(response, settings)
    assert [p["path"] for p in problems] == ["zip:a.png", "zip:b.png", "zip:c.png"]
    assert extracted == []


@pytest.mark.django_db
def test_the_jobs_own_zip_checks_still_refuse_a_bad_crc(org_a):
    """The job does not trust the request's check (a file stored by another path, or a later change)."""
    from labelhub.core.errors import DomainError
    from labelhub.datasets import imports

    png = image_bytes(40, 30, seed=5)
    data = bytearray(_stored_zip({"bad.png": png}))
    data[data.rfind(png) + len(png) // 2] ^= 0xFF
    with pytest.raises(DomainError) as refused:
        imports.import_file(
            project=org_a.project, fh=io.BytesIO(bytes(data)), file_name="d.zip", fmt="images"
        )
    assert refused.value.details["problems"][0]["path"] == "zip:bad.png"
    assert Image.objects.count() == 0


@pytest.mark.django_db
def test_an_upload_is_refused_from_its_declared_length_before_it_is_read(org_a, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.LABELHUB_IMPORT_MAX_BYTES = 1000
    client = org_a.clients[Role.OWNER]
    response = client.post(
        f"/api/v1/projects/{org_a.project.id}/imports/",
        {"file": SimpleUploadedFile("c.json", b"{}"), "format": "coco"},
        format="multipart",
        CONTENT_LENGTH=str(1_170_000_000),  # declared 1.17 GB; the body is never read
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.django_db
def test_an_upload_is_stopped_while_streaming_at_the_per_file_limit(org_a, settings):
    settings.LABELHUB_MAX_UPLOAD_BYTES = 5000
    big = image_bytes(200, 200, seed=1)
    response = upload(
        org_a.clients[Role.OWNER], org_a.project.id, ("ok.png", image_bytes(8, 8)), ("big.png", big)
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "files[1]" and error["code"] == "file_too_large"
    assert "over the limit" in error["message"]  # the streaming handler's refusal, not the view's
    assert Image.objects.count() == 0


def _bilevel_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("1", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_pixel_limit_is_honoured_above_pillows_own_89_5_megapixels():
    data = _bilevel_png(9500, 9500)  # 90.25 MP: over Pillow's default bomb check
    decoded = image_inspect(data, max_pixels=100_000_000, max_bytes=10**9)
    assert (decoded.width, decoded.height) == (9500, 9500)
    from labelhub.core.errors import DomainError

    with pytest.raises(DomainError) as refused:
        image_inspect(data, max_pixels=90_000_000, max_bytes=10**9)
    assert refused.value.code == "image_too_large"
