"""Every bad input answers 400 with {"error": {"code", "message", "field"}} and saves nothing."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from tests.helpers import image_bytes, square, upload


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_refused(response, field_prefix: str, code: str | None = None):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    assert error["field"] and error["field"].startswith(field_prefix), error
    assert error["message"]
    if code:
        assert error["code"] == code, error


def bomb_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("1", (width, height)).save(buf, format="PNG")  # tiny file, huge pixel count
    return buf.getvalue()


BAD_UPLOADS = [
    ("text", ("notes.png", b"this is not an image at all"), "not_an_image"),
    ("empty", ("empty.jpg", b""), "not_an_image"),
    ("truncated", ("cut.png", image_bytes(80, 60, seed=3)[:-200]), "corrupt_image"),
    ("corrupt", ("bad.png", image_bytes(80, 60, seed=3)[:60] + b"\x00" * 400), "corrupt_image"),
    ("bomb", ("bomb.png", bomb_png(20_000, 20_000)), "image_too_large"),
    (
        "unsupported",
        ("anim.gif", (lambda b: (PILImage.new("RGB", (8, 8)).save(b, "GIF"), b.getvalue())[1])(io.BytesIO())),
        "unsupported_format",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case,bad,code", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_bad_upload_is_refused_and_nothing_is_saved(org_a, settings, case, bad, code):
    settings.LABELHUB_MAX_IMAGE_PIXELS = 50_000_000
    client = org_a.clients[Role.MANAGER]
    good = ("good.png", image_bytes(seed=1))
    response = upload(client, org_a.project.id, good, bad)  # the good file goes back too: all or nothing
    assert_refused(response, "files[1]", code)
    assert Image.objects.count() == 0
    assert stored_files(settings) == []


@pytest.mark.django_db
def test_file_over_size_limit_is_refused(org_a, settings):
    settings.LABELHUB_MAX_UPLOAD_BYTES = 1000
    response = upload(org_a.clients[Role.OWNER], org_a.project.id, ("big.png", image_bytes(100, 100)))
    assert_refused(response, "files[0]", "file_too_large")
    assert Image.objects.count() == 0


@pytest.mark.django_db
def test_pixel_limit_is_configurable(org_a, settings):
    settings.LABELHUB_MAX_IMAGE_PIXELS = 64 * 48 - 1
    response = upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(64, 48)))
    assert_refused(response, "files[0]", "image_too_large")


@pytest.mark.django_db
def test_upload_without_files_names_the_field(org_a):
    response = org_a.clients[Role.OWNER].post(
        f"/api/v1/projects/{org_a.project.id}/images/upload/", {}, format="multipart"
    )
    assert_refused(response, "files", "required")


@pytest.mark.django_db
def test_same_bytes_twice_are_one_image(org_a):
    client = org_a.clients[Role.OWNER]
    data = image_bytes(seed=5)
    first = upload(client, org_a.project.id, ("a.png", data), ("copy.png", data))
    assert first.status_code == 201
    assert len(first.json()["created"]) == 1 and len(first.json()["duplicates"]) == 1
    again = upload(client, org_a.project.id, ("again.png", data))
    assert again.status_code == 200 and again.json()["created"] == []
    assert Image.objects.count() == 1
    image = Image.objects.get()
    assert (image.width, image.height, image.format) == (64, 48, "PNG")


@pytest.fixture
def task(org_a):
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(64, 48))).status_code == 201
    )
    return Image.objects.get().task


def region(**overrides) -> dict:
    base = {"id": "r1", "label": "cat", "kind": "polygon", "polygons": [square(2, 2, 20, 20)]}
    base.update(overrides)
    return base


BAD_REGIONS = [
    ("unknown class", region(label="unicorn"), "regions[0].label", "unknown_class"),
    (
        "two points",
        region(polygons=[{"exterior": [[1, 1], [5, 5]], "holes": []}]),
        "regions[0].polygons[0].exterior",
        "invalid_polygon",
    ),
    (
        "nan",
        region(polygons=[{"exterior": [[1, 1], [math.nan, 5], [9, 1]], "holes": []}]),
        "regions[0].polygons[0].exterior[1]",
        "invalid_polygon",
    ),
    (
        "out of bounds",
        region(polygons=[square(2, 2, 65, 20)]),
        "regions[0].polygons[0].exterior[1]",
        "out_of_bounds",
    ),
    (
        "negative",
        region(polygons=[square(-1, 2, 20, 20)]),
        "regions[0].polygons[0].exterior[0]",
        "out_of_bounds",
    ),
    (
        "bow tie",
        region(polygons=[{"exterior": [[0, 0], [10, 10], [10, 0], [0, 10]], "holes": []}]),
        "regions[0].polygons[0]",
        "self_intersection",
    ),
    (
        "hole outside",
        region(
            polygons=[
                {"exterior": [[0, 0], [10, 0], [10, 10], [0, 10]], "holes": [[[20, 20], [30, 20], [30, 30]]]}
            ]
        ),
        "regions[0].polygons[0]",
        "self_intersection",
    ),
    (
        "not a point",
        region(polygons=[{"exterior": [[1, 1], "x", [9, 1]], "holes": []}]),
        "regions[0].polygons[0].exterior[1]",
        "invalid_polygon",
    ),
    (
        "rle size",
        region(kind="mask", polygons=None, rle={"size": [10, 10], "counts": "0"}),
        "regions[0].polygons",
        None,
    ),
    (
        "mask rle wrong size",
        {"id": "m", "label": "cat", "kind": "mask", "rle": {"size": [10, 10], "counts": "0"}},
        "regions[0].rle.size",
        "invalid_rle",
    ),
    ("bad kind", region(kind="circle"), "regions[0].kind", None),
    ("duplicate ids", [region(), region()], "regions[1].id", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case,bad,field,code", BAD_REGIONS, ids=[c[0] for c in BAD_REGIONS])
def test_bad_region_is_refused_and_nothing_is_saved(org_a, task, case, bad, field, code):
    regions = bad if isinstance(bad, list) else [region(id="ok", polygons=[square(30, 30, 40, 40)]), bad]
    if not isinstance(bad, list):
        field = field.replace("regions[0]", "regions[1]", 1)
    # The annotator holds the task's lease, so only the bad regions can be refused.
    assert (
        org_a.clients[Role.ANNOTATOR].post(f"/api/v1/projects/{org_a.project.id}/next-task/").status_code
        == 200
    )
    response = org_a.clients[Role.ANNOTATOR].put(
        f"/api/v1/tasks/{task.id}/annotation/", {"revision": 0, "regions": regions}, format="json"
    )
    assert_refused(response, field, code)
    assert AnnotationRevision.objects.count() == 0
    task.annotation.refresh_from_db()
    assert task.annotation.current_revision == 0


@pytest.mark.django_db
def test_import_outside_roots_is_refused(org_a, settings, tmp_path):
    root = tmp_path / "imports"
    (root / "batch").mkdir(parents=True)
    (root / "batch" / "a.png").write_bytes(image_bytes(seed=2))
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "b.png").write_bytes(image_bytes(seed=3))
    (root / "escape").symlink_to(outside)
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/images/import/"
    for path in [
        str(outside),
        "../secret",
        str(root / "batch" / ".." / ".." / "secret"),
        str(root / "escape"),
        "/etc",
    ]:
        assert_refused(client.post(url, {"path": path}, format="json"), "path", "path_outside_import_roots")
    assert Image.objects.count() == 0
    ok = client.post(url, {"path": "batch"}, format="json")
    assert ok.status_code == 201, ok.json()
    assert [i["original_name"] for i in ok.json()["created"]] == ["a.png"]


@pytest.mark.django_db
def test_import_with_one_bad_file_imports_nothing(org_a, settings, tmp_path):
    root = tmp_path / "imports"
    root.mkdir()
    (root / "a.png").write_bytes(image_bytes(seed=2))
    (root / "b.png").write_bytes(b"garbage")
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    response = org_a.clients[Role.MANAGER].post(
        f"/api/v1/projects/{org_a.project.id}/images/import/", {"path": str(root)}, format="json"
    )
    assert_refused(response, "path", "not_an_image")
    assert "b.png" in response.json()["error"]["message"]
    assert Image.objects.count() == 0
    assert stored_files(settings) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload,field",
    [
        ({"organization": None, "name": "x"}, "organization"),
        ({"name": "x"}, "organization"),
        ({"organization": 0, "name": ""}, "name"),
        ({"label_schema": []}, "label_schema"),
        ({"label_schema": [{"name": "a", "color": "red"}]}, "label_schema[0].color"),
        ({"label_schema": [{"name": "a"}, {"name": "a"}]}, "label_schema[1].name"),
        (
            {"pipeline": [{"name": "annotate"}, {"name": "review", "reject_to": "nowhere"}]},
            "pipeline[1].reject_to",
        ),
        ({"pipeline": [{"name": "annotate"}, {"name": "qa", "sample_rate": 2}]}, "pipeline[1].sample_rate"),
        ({"polygon_min_iou": 3}, "polygon_min_iou"),
        ({"polygon_simplifier": "magic"}, "polygon_simplifier"),
    ],
)
def test_bad_project_input_names_the_field(org_a, payload, field):
    client = org_a.clients[Role.MANAGER]
    body = {"organization": org_a.organization.id, "name": "new project", **payload}
    if (
        payload.get("organization", 1) is None
        or "organization" not in payload
        and "name" in payload
        and len(payload) == 1
    ):
        body = payload
    response = client.post("/api/v1/projects/", body, format="json")
    assert response.status_code in (400, 404), response.json()
    if response.status_code == 400:
        assert response.json()["error"]["field"] == field, response.json()
    assert org_a.organization.projects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method,url,body",
    [
        ("put", "/api/v1/tasks/{task}/annotation/", "not json"),
        ("put", "/api/v1/tasks/{task}/annotation/", {"revision": "x", "regions": []}),
        ("put", "/api/v1/tasks/{task}/annotation/", {"regions": []}),
        ("put", "/api/v1/tasks/{task}/annotation/", {"revision": 0, "regions": "nope"}),
        ("put", "/api/v1/tasks/{task}/annotation/", {"revision": 0, "regions": [None]}),
        ("get", "/api/v1/tasks/{task}/annotation/?revision=abc", None),
        ("get", "/api/v1/tasks/{task}/annotation/?revision=99", None),
        ("get", "/api/v1/tasks/?status=flying", None),
        ("get", "/api/v1/tasks/?page=banana", None),
        ("get", "/api/v1/tasks/999999/", None),
        ("get", "/api/v1/tasks/abc/", None),
        ("post", "/api/v1/tasks/{task}/comments/", {"text": ""}),
        ("post", "/api/v1/tasks/{task}/comments/", {"text": "x", "region_id": "ghost"}),
        ("post", "/api/v1/tasks/{task}/comments/", {"text": "x", "x": 5}),
        ("post", "/api/v1/tasks/{task}/comments/", {"text": "x", "x": 5000, "y": 1}),
        ("post", "/api/v1/organizations/", {}),
        ("post", "/api/v1/organizations/{org}/members/", {"username": "nobody", "role": "annotator"}),
        ("post", "/api/v1/organizations/{org}/members/", {"username": "alpha-owner", "role": "king"}),
        ("post", "/api/v1/auth/token/", {"username": "alpha-owner", "password": "wrong"}),
    ],
)
def test_no_endpoint_answers_500(org_a, task, method, url, body):
    client = org_a.clients[Role.OWNER]
    url = url.format(task=task.id, org=org_a.organization.id)
    if body == "not json":
        response = client.generic(method.upper(), url, "{not json", content_type="application/json")
    elif body is None:
        response = getattr(client, method)(url)
    else:
        response = getattr(client, method)(url, body, format="json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert "error" in response.json()
    assert AnnotationRevision.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method,url,body",
    [
        ("post", "/api/v1/webhooks/", {"organization": 10**21, "url": "http://127.0.0.1:9/"}),
        ("post", "/api/v1/projects/", {"organization": 10**21, "name": "x"}),
        ("get", "/api/v1/tasks/?project=100000000000000000000000", None),
        ("get", "/api/v1/tasks/100000000000000000000000/", None),
        ("get", "/api/v1/predictions/?image=100000000000000000000000", None),
    ],
)
def test_ids_beyond_64_bits_are_refused_cleanly(org_a, method, url, body):
    # Found by fuzzing the embedded (SQLite) server: SQLite cannot bind such an integer.
    client = org_a.clients[Role.OWNER]
    response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
    assert "error" in response.json()


@pytest.mark.django_db
def test_a_class_in_use_cannot_be_removed_from_the_schema(org_a, task):
    from labelhub.labeling.annotations import Writer, annotation_write

    annotation_write(
        task=task,
        author=org_a.users[Role.ANNOTATOR],
        base_revision=0,
        regions=[{"id": "r", "label": "dog", "kind": "polygon", "polygons": [square(1, 1, 9, 9)]}],
        writer=Writer.IMPORT,
    )
    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/"
    refused = client.patch(url, {"label_schema": [{"name": "cat"}]}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "label_schema"
    assert "dog" in refused.json()["error"]["message"]
    kept = client.patch(url, {"label_schema": [{"name": "dog"}]}, format="json")  # "cat" is unused
    assert kept.status_code == 200 and [c["name"] for c in kept.json()["label_schema"]] == ["dog"]
