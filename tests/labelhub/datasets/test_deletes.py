"""Deleting images (and the projects holding them) is a service: the stored files go once the deletion
commits, and an export that already exists never changes (its items keep their own copy)."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.storage import default_storage

from labelhub.datasets import exports
from labelhub.datasets.models import ExportItem, ExportStatus
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision, Task

from .conftest import read_zip

pytestmark = pytest.mark.django_db


def _archive_bytes(export) -> bytes:
    with export.file.open("rb") as fh:
        return fh.read()


def _items(export) -> list[tuple]:
    return list(
        ExportItem.objects.filter(export=export)
        .order_by("image_id")
        .values_list("image_id", "task_id", "revision_number", "revision_id", "subset")
    )


def test_deleting_an_image_leaves_an_existing_export_unchanged_and_removes_its_files(
    org_a, dataset, django_capture_on_commit_callbacks
):
    written = exports.export_run(
        export_id=exports.export_create(
            project=org_a.project, user=None, format="labelhub", include_images=True
        ).id
    )
    # A second export, snapshot taken but archive not written yet when the image goes.
    waiting = exports.export_create(project=org_a.project, user=None, format="labelhub", include_images=True)
    before_bytes, before_items = _archive_bytes(written), _items(written)
    waiting_items = _items(waiting)
    image = dataset["accepted"][0]
    files = [image.file.name, image.thumbnail.name]
    assert all(default_storage.exists(name) for name in files)
    regions = AnnotationRevision.objects.get(annotation__task__image=image).regions

    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients["manager"].delete(f"/api/v1/images/{image.id}/")
    assert response.status_code == 204
    assert (
        not Image.objects.filter(id=image.id).exists() and not Task.objects.filter(image_id=image.id).exists()
    )
    assert not any(default_storage.exists(name) for name in files)  # removed on commit

    written.refresh_from_db()
    assert (
        _archive_bytes(written) == before_bytes and written.sha256 == hashlib.sha256(before_bytes).hexdigest()
    )
    assert _items(written) == before_items and len(before_items) == 6
    assert _items(waiting) == waiting_items

    # The waiting export is written from its own copy: the deleted image is in it, regions and bytes.
    with django_capture_on_commit_callbacks(execute=True):
        waiting = exports.export_run(export_id=waiting.id)
    assert waiting.status == ExportStatus.DONE
    zf = read_zip(_archive_bytes(waiting))
    doc = json.loads(zf.read("labelhub.json"))
    (item,) = [i for i in doc["items"] if i["image"]["id"] == image.id]
    assert item["regions"] == regions and item["image"]["sha256"] == image.sha256
    (entry,) = [n for n in zf.namelist() if n.startswith("images/") and n.endswith(image.original_name)]
    assert hashlib.sha256(zf.read(entry)).hexdigest() == image.sha256
    # ...and the copy it held for that is gone once the archive holds it.
    assert not ExportItem.objects.exclude(image_file="").exists()
    assert not list(default_storage.listdir(f"projects/{org_a.project.id}/exports/held")[1])


def test_image_delete_needs_a_manager(org_a, dataset):
    image = dataset["open"]
    assert org_a.clients["annotator"].delete(f"/api/v1/images/{image.id}/").status_code == 403
    assert Image.objects.filter(id=image.id).exists()


def test_deleting_a_project_removes_its_stored_files(org_a, dataset, django_capture_on_commit_callbacks):
    export = exports.export_run(
        export_id=exports.export_create(project=org_a.project, user=None, format="coco").id
    )
    names = [export.file.name] + [
        n for i in Image.objects.filter(project=org_a.project) for n in (i.file.name, i.thumbnail.name)
    ]
    assert all(default_storage.exists(n) for n in names)
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients["manager"].delete(f"/api/v1/projects/{org_a.project.id}/")
    assert response.status_code == 204
    assert not any(default_storage.exists(n) for n in names)
