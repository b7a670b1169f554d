"""Import jobs: COCO (polygons, compressed and uncompressed RLE) and YOLO-seg into annotations or
predictions, zips of images; the API answers 202 with the job, which runs on the `cpu` queue (here in
process, as in embedded mode); every problem of a bad file is listed on the job and nothing is stored.
A zip's entry names, sizes and CRCs and the JSON nesting limit are checked at request time (400)."""

from __future__ import annotations

import io
import json
import stat
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from labelhub.datasets import exports
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from labelhub.predictions.models import Prediction
from tests.helpers import image_bytes

from .conftest import make_images, read_zip

pytestmark = pytest.mark.django_db


def post(client, project_id, name, data, fmt, target="annotations"):
    """The POST; the job it queues runs when the request's transaction commits (eager, as embedded)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(
            f"/api/v1/projects/{project_id}/imports/",
            {"file": SimpleUploadedFile(name, data), "format": fmt, "as": target},
            format="multipart",
        )


def imported(client, project_id, name, data, fmt, target="annotations") -> dict:
    """The import job after it ran, as `GET imports/{id}/` reads it."""
    response = post(client, project_id, name, data, fmt, target)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending"
    body = client.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert body["status"] in ("done", "failed"), body
    return body


def refused(body: dict, code: str = "invalid_import") -> list[dict]:
    """The problems of a refused import (nothing was imported)."""
    assert body["status"] == "failed", body
    assert body["error"]["code"] == code and body["error"]["field"].startswith("file")
    assert body["result"] is None
    return body["problems"]


def disc(h, w, cx, cy, r):
    yy, xx = np.mgrid[:h, :w]
    return ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r).astype(np.uint8)


def coco_doc(images) -> dict:
    a, b = images
    compressed = coco_mask.encode(np.asfortranarray(disc(48, 64, 40, 30, 7)))
    ring = disc(48, 64, 20, 20, 12) - disc(48, 64, 20, 20, 5)  # a ring: has a hole
    runs = []  # uncompressed counts, computed from the mask column by column
    flat = ring.flatten(order="F")
    value, n = 0, 0
    for v in flat:
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    return {
        "images": [
            {"id": 11, "file_name": f"some/dir/{a.original_name}", "width": 64, "height": 48},
            {"id": 12, "file_name": b.original_name, "width": 64, "height": 48},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 9, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 9, "iscrowd": 0,
             "segmentation": [[2, 2, 20.5, 3, 18, 15.25, 4, 12], [30, 30, 40, 30, 35, 40]]},
            {"id": 2, "image_id": 11, "category_id": 7, "iscrowd": 1,
             "segmentation": {"size": [48, 64], "counts": compressed["counts"].decode()}},
            {"id": 3, "image_id": 12, "category_id": 7, "iscrowd": 1, "segmentation": {"size": [48, 64], "counts": runs}},
            {"id": 4, "image_id": 12, "category_id": 9, "segmentation": [[5, 5, 25, 25, 25, 5, 5, 25]]},  # a bow tie
        ],
    }  # fmt: skip


@pytest.fixture
def two_images(org_a):
    return make_images(org_a.project, org_a.users["owner"], 2, prefix="coco")


def test_coco_import_then_export_gives_the_same_masks(org_a, two_images, tmp_path):
    doc = coco_doc(two_images)
    body = imported(org_a.clients["manager"], org_a.project.id, "in.json", json.dumps(doc).encode(), "coco")
    assert body["status"] == "done", body
    assert body["result"]["regions"] == 4 and body["result"]["images_matched"] == 2
    assert body["progress"] == {"done": 2, "total": 2} and body["format"] == "coco"
    kinds = {r["id"]: r["kind"] for rev in AnnotationRevision.objects.all() for r in rev.regions}
    assert kinds == {"coco-1": "polygon", "coco-2": "mask", "coco-3": "mask", "coco-4": "mask"}

    export = exports.export_create(
        project=org_a.project, user=None, format="coco", filters={"include_unaccepted": True}
    )
    export = exports.export_run(export_id=export.id)
    with export.file.open("rb") as fh:
        (tmp_path / "out.json").write_bytes(read_zip(fh.read()).read("annotations/instances_train.json"))
    (tmp_path / "in.json").write_text(json.dumps(doc))
    before, after = COCO(str(tmp_path / "in.json")), COCO(str(tmp_path / "out.json"))
    exported = {a["attributes"]["labelhub_region_id"]: a for a in after.dataset["annotations"]}
    image_ids = {11: two_images[0].id, 12: two_images[1].id}
    for ann in before.dataset["annotations"]:
        out = exported[f"coco-{ann['id']}"]
        assert out["image_id"] == image_ids[ann["image_id"]]
        assert after.loadCats(out["category_id"])[0]["name"] == before.loadCats(ann["category_id"])[0]["name"]
        m_in, m_out = before.annToMask(ann).astype(bool), after.annToMask(out).astype(bool)
        assert m_in.any() and (m_in & m_out).sum() / (m_in | m_out).sum() == 1.0  # IoU 1.0
    assert exported["coco-1"]["segmentation"] == doc["annotations"][0]["segmentation"]


def test_coco_import_as_predictions(org_a, two_images):
    doc = coco_doc(two_images)
    for ann in doc["annotations"]:
        ann["score"] = 0.5
    body = imported(
        org_a.clients["owner"], org_a.project.id, "p.json", json.dumps(doc).encode(), "coco", "predictions"
    )
    assert body["status"] == "done" and body["target"] == "predictions", body
    predictions = Prediction.objects.order_by("image_id")
    assert [p.image_id for p in predictions] == [i.id for i in two_images]
    assert all(p.status == "ok" and p.model_name == "import-coco" and p.score == 0.5 for p in predictions)
    assert {r["source"] for p in predictions for r in p.regions} == {"ai"}
    assert AnnotationRevision.objects.count() == 0


def test_malformed_coco_is_refused_with_every_problem_and_nothing_is_imported(org_a, two_images):
    doc = coco_doc(two_images)
    doc["categories"].append({"id": 8, "name": "horse"})
    doc["images"].append({"id": 13, "file_name": "nowhere.png", "width": 64, "height": "48"})
    doc["annotations"] += [
        {"id": 5, "image_id": 11, "category_id": 9, "segmentation": [[1, 1, 5, 1, 5]]},  # odd
        {
            "id": 6,
            "image_id": 11,
            "category_id": 99,
            "segmentation": [[1, 1, 5, 1, 5, 5]],
        },  # unknown category
        {
            "id": 7,
            "image_id": 12,
            "category_id": 9,
            "segmentation": {"size": [64, 48], "counts": "PP0"},
        },  # size
        {"id": 8, "image_id": 12, "category_id": 9},  # no segmentation
        {"id": "9", "image_id": 77, "category_id": 9, "segmentation": "x"},  # wrong types
        {
            "id": 10,
            "image_id": 12,
            "category_id": 9,
            "segmentation": [[1, 1, 90, 1, 5, 5], [1, "a", 2, 2, 3, 3]],
        },
    ]
    body = imported(org_a.clients["owner"], org_a.project.id, "bad.json", json.dumps(doc).encode(), "coco")
    problems = refused(body)
    paths = [p["path"] for p in problems]
    assert paths == [
        "$.categories[2].name",
        "$.images[2].height",
        "$.annotations[4].segmentation[0]",
        "$.annotations[5].category_id",
        "$.annotations[6].segmentation.size",
        "$.annotations[7].segmentation",
        "$.annotations[8].id",
        "$.annotations[8].image_id",
        "$.annotations[8].segmentation",
        "$.annotations[9].segmentation[0]",
        "$.annotations[9].segmentation[1]",
    ]
    messages = {p["path"]: p["message"] for p in problems}
    assert "odd number of coordinates (5)" in messages["$.annotations[4].segmentation[0]"]
    assert "horse" in messages["$.categories[2].name"]
    assert AnnotationRevision.objects.count() == 0 and Prediction.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"{not json", "$"),
        (b"[]", "$"),
        (b'{"images": {}, "categories": []}', "$.images"),
    ],
)
def test_coco_that_is_not_a_coco_document(org_a, two_images, raw, path):
    body = imported(org_a.clients["owner"], org_a.project.id, "x.json", raw, "coco")
    assert refused(body)[0]["path"] == path


def test_coco_polygon_outside_the_image_or_unmatched_file_is_a_problem(org_a, two_images):
    doc = coco_doc(two_images)
    doc["images"][1]["file_name"] = "missing.png"
    doc["annotations"][0]["segmentation"] = [[0, 0, 65, 0, 10, 10]]
    problems = refused(
        imported(org_a.clients["owner"], org_a.project.id, "x.json", json.dumps(doc).encode(), "coco")
    )
    assert [p["path"] for p in problems] == ["$.images[1].file_name", "$.annotations[0].segmentation[0]"]


def yolo_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_yolo_import_then_export_gives_the_same_polygons(org_a, two_images):
    a, b = two_images
    label_a = "0 0.100000 0.100000 0.500000 0.100000 0.500000 0.500000\n1 0.6 0.6 0.9 0.6 0.9 0.9 0.6 0.9\n"
    # a keyhole ring (square 10..50 x 4..44 with a hole 20..30 x 14..24), as YOLO exports carry holes
    keyhole = [
        [10, 4],
        [20, 14],
        [20, 24],
        [30, 24],
        [30, 14],
        [20, 14],
        [10, 4],
        [50, 4],
        [50, 44],
        [10, 44],
    ]
    label_b = "1 " + " ".join(f"{x / 64:.6f} {y / 48:.6f}" for x, y in keyhole) + "\n"
    data = yolo_zip(
        {
            f"labels/train/{a.original_name[:-4]}.txt": label_a.encode(),
            f"labels/val/{b.original_name[:-4]}.txt": label_b.encode(),
            "data.yaml": b"names: []",
        }
    )
    body = imported(org_a.clients["owner"], org_a.project.id, "labels.zip", data, "yolo")
    assert body["status"] == "done", body
    revision = AnnotationRevision.objects.get(annotation__task__image=b)
    (region,) = revision.regions
    assert (
        region["label"] == "dog" and len(region["polygons"]) == 1 and len(region["polygons"][0]["holes"]) == 1
    )
    export = exports.export_run(
        export_id=exports.export_create(
            project=org_a.project, user=None, format="yolo", filters={"include_unaccepted": True}
        ).id
    )
    with export.file.open("rb") as fh:
        zf = read_zip(fh.read())
    assert zf.read(f"labels/train/{a.original_name[:-4]}.txt").decode().splitlines() == [
        "0 0.100000 0.100000 0.500000 0.100000 0.500000 0.500000",
        "1 0.600000 0.600000 0.900000 0.600000 0.900000 0.900000 0.600000 0.900000",
    ]
    from workers.geometry import polygons_to_mask

    (line,) = zf.read(f"labels/train/{b.original_name[:-4]}.txt").decode().splitlines()
    coords = np.asarray([float(v) for v in line.split()[1:]]).reshape(-1, 2) * [64, 48]
    exported = polygons_to_mask([{"exterior": coords.tolist(), "holes": []}], 48, 64)
    assert np.array_equal(exported, polygons_to_mask([{"exterior": keyhole, "holes": []}], 48, 64))
    assert exported.sum() == 40 * 40 - 10 * 10


def test_malformed_yolo_lists_every_line(org_a, two_images):
    a, _ = two_images
    label = "0 0.1 0.1 0.5 0.1 0.5\n5 0.1 0.1 0.5 0.1 0.5 0.5\nx 0.1\n0 0.1 0.1 1.5 0.1 0.5 0.5\n0 0.1 0.1 0.5 0.1 0.5 0.5\n"
    data = yolo_zip({f"{a.original_name[:-4]}.txt": label.encode(), "ghost.txt": b"0 0 0 1 0 1 1\n"})
    paths = [
        p["path"]
        for p in refused(imported(org_a.clients["owner"], org_a.project.id, "labels.zip", data, "yolo"))
    ]
    name = f"{a.original_name[:-4]}.txt"
    assert paths == [f"{name}:1", f"{name}:2", f"{name}:3", f"{name}:4", "ghost.txt"]
    assert AnnotationRevision.objects.count() == 0


def test_zip_of_images_is_added_all_or_nothing(org_a):
    data = yolo_zip(
        {
            "pics/one.png": image_bytes(32, 32, seed=1),
            "pics/two.png": image_bytes(32, 32, seed=2),
            "readme.txt": b"hi",
        }
    )
    body = imported(org_a.clients["owner"], org_a.project.id, "pics.zip", data, "images")
    assert body["status"] == "done" and body["result"]["images_created"] == 2
    assert sorted(Image.objects.values_list("original_name", flat=True)) == ["one.png", "two.png"]
    broken = yolo_zip({"three.png": image_bytes(32, 32, seed=3), "four.png": b"not an image"})
    refused(imported(org_a.clients["owner"], org_a.project.id, "pics.zip", broken, "images"), "not_an_image")
    assert Image.objects.count() == 2


def test_coco_zip_with_images_is_all_or_nothing(org_a, settings):
    doc = {"images": [{"id": 1, "file_name": "new.png", "width": 32, "height": 32}], "categories": [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9]]}]}  # fmt: skip
    data = yolo_zip(
        {
            "images/new.png": image_bytes(32, 32, seed=4),
            "annotations/instances.json": json.dumps(doc).encode(),
        }
    )
    problems = refused(imported(org_a.clients["owner"], org_a.project.id, "ds.zip", data, "coco"))
    assert problems[0]["path"] == "$.annotations[0].segmentation[0]"
    assert Image.objects.count() == 0
    assert (
        not list((settings.MEDIA_ROOT / "projects").rglob("*.png"))
        if (settings.MEDIA_ROOT / "projects").exists()
        else True
    )
    doc["annotations"][0]["segmentation"] = [[1, 1, 9, 1, 9, 9]]
    data = yolo_zip(
        {
            "images/new.png": image_bytes(32, 32, seed=4),
            "annotations/instances.json": json.dumps(doc).encode(),
        }
    )
    body = imported(org_a.clients["owner"], org_a.project.id, "ds.zip", data, "coco")
    assert (
        body["status"] == "done" and body["result"]["images_created"] == 1 and body["result"]["regions"] == 1
    )
    # the stored upload has served its purpose: only the imported image remains in storage
    assert not list((settings.MEDIA_ROOT / "projects").rglob("*.upload"))


def _zip_with(name: str, *, symlink: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, b"/etc/passwd" if symlink else image_bytes(16, 16, seed=9))
        zf.writestr("fine.png", image_bytes(16, 16, seed=10))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "symlink"),
    [
        ("../escape.png", False),
        ("a/../../escape.png", False),
        ("/etc/escape.png", False),
        ("C:/x.png", False),
        ("..\\x.png", False),
        ("link.png", True),
    ],
)
def test_zip_slip_is_refused(org_a, name, symlink):
    """Refused by the request's cheap checks (400, no job), as the job itself would refuse it."""
    from labelhub.datasets.models import Import

    response = post(
        org_a.clients["owner"], org_a.project.id, "evil.zip", _zip_with(name, symlink=symlink), "images"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_import"
    assert response.json()["error"]["details"]["problems"][0]["path"] == f"zip:{name}"
    assert Image.objects.count() == 0 and Import.objects.count() == 0


def test_import_needs_a_manager_and_hides_other_organizations(org_a, org_b, two_images):
    raw = json.dumps(coco_doc(two_images)).encode()
    assert post(org_a.clients["annotator"], org_a.project.id, "x.json", raw, "coco").status_code == 403
    assert post(org_b.clients["owner"], org_a.project.id, "x.json", raw, "coco").status_code == 404
    bad = post(org_a.clients["owner"], org_a.project.id, "x.json", raw, "pascal")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "format"


def test_coco_boxes_without_segmentation_become_model_prompts(org_a):
    from labelhub.images.services import IncomingFile, images_add
    from tests.helpers import disc_image_bytes

    added = images_add(
        project=org_a.project, files=[IncomingFile("disc.png", disc_image_bytes(64, 48))], presegment=False
    )
    a = added.created[0]
    doc = {
        "images": [{"id": 1, "file_name": a.original_name, "width": 64, "height": 48}],
        "categories": [{"id": 3, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [12, 8, 40, 32]},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [14, 10, 36, 28], "segmentation": []},
        ],
    }
    body = imported(
        org_a.clients["manager"], org_a.project.id, "boxes.json", json.dumps(doc).encode(), "coco"
    )
    assert body["status"] == "done" and body["result"]["box_prompts"] == 2, body
    prediction = Prediction.objects.get(image=a, kind="boxes")
    assert prediction.status == "ok" and prediction.model_name == "classical-grabcut"
    assert [r["label"] for r in prediction.regions] == ["dog", "dog"]

    doc["annotations"] = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 8, 0, 25]},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [50, 8, 30, 25]},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": "wide"},
    ]
    problems = refused(
        imported(org_a.clients["manager"], org_a.project.id, "bad.json", json.dumps(doc).encode(), "coco")
    )
    paths = [p["path"] for p in problems]
    assert paths == ["$.annotations[0].bbox", "$.annotations[1].bbox", "$.annotations[2].bbox"]
    assert Prediction.objects.filter(kind="boxes").count() == 1


def test_import_job_runs_on_the_cpu_queue_and_is_readable_by_its_organization_only(org_a, org_b, two_images):
    from labelhub.celery import app
    from labelhub.datasets.tasks import run_import

    assert app.amqp.router.route({}, run_import.name)["queue"].name == "cpu"
    raw = json.dumps(coco_doc(two_images)).encode()
    response = post(org_a.clients["manager"], org_a.project.id, "in.json", raw, "coco")
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert org_a.clients["reviewer"].get(f"/api/v1/imports/{job_id}/").json()["status"] == "done"
    assert org_b.clients["owner"].get(f"/api/v1/imports/{job_id}/").status_code == 404
    listed = org_a.clients["manager"].get("/api/v1/imports/", {"project": org_a.project.id}).json()
    assert [j["id"] for j in listed["results"]] == [job_id]
    # a finished job is left as it is when its task is delivered again (acks_late: at least once)
    revisions = AnnotationRevision.objects.count()
    assert run_import(job_id)["status"] == "done" and AnnotationRevision.objects.count() == revisions


def test_import_job_queued_until_a_worker_runs_it(org_a, two_images):
    """Without the on-commit run (a broker, no worker yet) the job waits, pending, with its file stored."""
    from labelhub.datasets import import_jobs

    job = import_jobs.import_create(
        project=org_a.project, fh=io.BytesIO(b"{}"), file_name="late.json", size=2, format="coco"
    )
    assert job.status == "pending" and job.file.storage.exists(job.file.name)
    name = job.file.name
    job = import_jobs.import_run(import_id=job.id)
    assert job.status == "failed" and job.problems and not job.file.storage.exists(name)


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_import_into_an_accepted_task_is_refused_with_nothing_written(org_a, two_images, fmt):
    """An accepted task's annotation is final for imports too (as PUT answers 409 task_done): the whole
    file is refused, naming the image, and no revision is written for the other image either."""
    from labelhub.labeling.models import Task, TaskStatus

    a, b = two_images
    Task.objects.filter(image=a).update(status=TaskStatus.DONE, stage="done")
    if fmt == "coco":
        name, data = "in.json", json.dumps(coco_doc(two_images)).encode()
    else:
        ring = "0.1 0.1 0.5 0.1 0.5 0.5"
        name = "labels.zip"
        data = yolo_zip(
            {
                f"{a.original_name[:-4]}.txt": f"0 {ring}\n".encode(),
                f"{b.original_name[:-4]}.txt": f"1 {ring}\n".encode(),
            }
        )
    problems = refused(imported(org_a.clients["owner"], org_a.project.id, name, data, fmt))
    assert problems == [
        {"path": f"image:{a.original_name}", "message": "The task is accepted; its annotation is final."}
    ]
    assert AnnotationRevision.objects.count() == 0
    put = org_a.clients["owner"].put(
        f"/api/v1/tasks/{a.task.id}/annotation/", {"revision": 0, "regions": []}, format="json"
    )
    assert put.status_code == 409 and put.json()["error"]["code"] == "task_done"


def test_a_zip_entry_whose_local_header_crc_is_wrong_is_refused(org_a):
    """The central directory's CRC-32 is right (Python's zipfile checks the data against it), the local
    header's is not: other unzip tools would trust the local one, so the entry is refused."""
    from labelhub.datasets.models import Import

    data = bytearray(_zip_with("odd.png"))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("odd.png")
        zf.read("odd.png")  # the data and the central directory agree
    crc_at = info.header_offset + 14
    data[crc_at : crc_at + 4] = (info.CRC ^ 0xFFFFFFFF).to_bytes(4, "little")
    response = post(org_a.clients["owner"], org_a.project.id, "odd.zip", bytes(data), "images")
    assert response.status_code == 400, response.content
    problem = response.json()["error"]["details"]["problems"][0]
    assert problem["path"] == "zip:odd.png" and "local header" in problem["message"]
    assert Image.objects.count() == 0 and Import.objects.count() == 0
