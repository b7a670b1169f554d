"""An export is an immutable snapshot: it holds the revisions current when it was created, whatever
is saved afterwards; filters pick tasks and classes; the split is seeded, deterministic and stratified."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from labelhub.core.errors import DomainError
from labelhub.datasets import exports
from labelhub.datasets.models import ExportStatus
from labelhub.datasets.split import split_assign
from labelhub.labeling.models import Task, TaskStatus
from tests.helpers import square

from .conftest import annotate, read_zip

pytestmark = pytest.mark.django_db


def archive(export) -> dict:
    with export.file.open("rb") as fh:
        return json.loads(read_zip(fh.read()).read("labelhub.json"))


def test_export_holds_the_revisions_of_its_snapshot_while_the_project_changes(org_a, dataset):
    owner = org_a.users["owner"]
    export = exports.export_create(project=org_a.project, user=owner, format="labelhub")
    first = dataset["accepted"][0]
    # The project keeps changing after the snapshot and before the worker writes the archive.
    changed = [{"id": "new", "label": "dog", "kind": "polygon", "polygons": [square(3, 3, 9, 9)]}]
    # (an accepted task's annotation is final, so these two go back to work, are changed, accepted again)
    Task.objects.filter(image__in=[first, dataset["empty"]]).update(status=TaskStatus.OPEN)
    assert annotate(first, owner, changed) == 2
    assert annotate(dataset["empty"], owner, changed) == 1
    Task.objects.filter(image__in=[first, dataset["empty"]]).update(status=TaskStatus.DONE)
    Task.objects.filter(image=dataset["open"]).update(status=TaskStatus.DONE)  # accepted after the snapshot
    export = exports.export_run(export_id=export.id)
    assert export.status == ExportStatus.DONE
    doc = archive(export)
    items = {item["image"]["id"]: item for item in doc["items"]}
    assert set(items) == {i.id for i in dataset["accepted"]} | {dataset["empty"].id}
    assert items[first.id]["revision"] == 1 and [r["id"] for r in items[first.id]["regions"]] == [
        "sq0",
        "ho0",
        "mp0",
        "mk0",
    ]
    assert items[dataset["empty"].id]["revision"] == 0 and items[dataset["empty"].id]["regions"] == []
    # A later export sees the new state.
    later = exports.export_run(
        export_id=exports.export_create(project=org_a.project, user=owner, format="labelhub").id
    )
    items = {item["image"]["id"]: item for item in archive(later)["items"]}
    assert items[first.id]["revision"] == 2 and items[first.id]["regions"][0]["id"] == "new"
    assert dataset["open"].id in items


def test_rerunning_a_finished_export_changes_nothing(org_a, dataset):
    export = exports.export_create(project=org_a.project, user=None, format="coco")
    done = exports.export_run(export_id=export.id)
    again = exports.export_run(export_id=export.id)
    assert (again.sha256, again.file.name) == (done.sha256, done.file.name)


def test_filters_pick_tasks_by_status_and_stage_and_regions_by_class(org_a, dataset):
    owner = org_a.users["owner"]
    export = exports.export_create(
        project=org_a.project,
        user=owner,
        format="labelhub",
        filters={"include_unaccepted": True, "classes": ["dog"]},
    )
    doc = archive(exports.export_run(export_id=export.id))
    assert len(doc["items"]) == 7  # every task, accepted or not
    assert {r["label"] for item in doc["items"] for r in item["regions"]} == {"dog"}
    by_stage = exports.export_create(
        project=org_a.project,
        user=owner,
        format="labelhub",
        filters={"include_unaccepted": True, "stages": ["annotate"]},
    )
    assert by_stage.progress_total == 1  # only the open task is still in "annotate"
    with pytest.raises(DomainError) as bad:
        exports.export_create(
            project=org_a.project, user=owner, format="coco", filters={"classes": ["cat", "horse"]}
        )
    assert bad.value.field == "filters.classes[1]"
    with pytest.raises(DomainError) as bad:
        exports.export_create(
            project=org_a.project, user=owner, format="coco", split={"train": 0.9, "val": 0.2}
        )
    assert bad.value.field == "split"
    with pytest.raises(DomainError) as bad:
        exports.export_create(project=org_a.project, user=owner, format="pascal")
    assert bad.value.field == "format"


def test_split_is_seeded_deterministic_and_stratified_by_rarest_class():
    # 100 images hold only "common"; 20 also hold "rare". Each stratum is split on its own.
    items = [(i, 1000 + i, frozenset({"common"} | ({"rare"} if i < 20 else set()))) for i in range(120)]
    split = {"train": 0.7, "val": 0.2, "test": 0.1, "seed": 7}
    a = split_assign(items, split, ["common", "rare"])
    assert a == split_assign(list(reversed(items)), split, ["common", "rare"])  # order does not matter
    rare = Counter(a[i] for i in range(20))
    common = Counter(a[i] for i in range(20, 120))
    assert rare == {"train": 14, "val": 4, "test": 2}
    assert common == {"train": 70, "val": 20, "test": 10}
    other = split_assign(items, {**split, "seed": 8}, ["common", "rare"])
    assert other != a and Counter(other.values()) == Counter(a.values())


def test_split_is_recorded_on_the_items_and_in_the_archive(org_a, dataset):
    export = exports.export_create(
        project=org_a.project,
        user=None,
        format="coco",
        split={"train": 0.5, "val": 0.5, "test": 0, "seed": 3},
    )
    export = exports.export_run(export_id=export.id)
    subsets = dict(export.items.values_list("image_id", "subset"))
    assert set(subsets.values()) == {"train", "val"}
    with export.file.open("rb") as fh:
        zf = read_zip(fh.read())
    for subset in ("train", "val"):
        doc = json.loads(zf.read(f"annotations/instances_{subset}.json"))
        assert {img["id"] for img in doc["images"]} == {i for i, s in subsets.items() if s == subset}
    assert "annotations/instances_test.json" not in zf.namelist()
    again = exports.export_run(
        export_id=exports.export_create(
            project=org_a.project, user=None, format="coco", split=export.split
        ).id
    )
    assert dict(again.items.values_list("image_id", "subset")) == subsets


def test_a_finished_export_emits_the_export_finished_webhook(
    org_a, dataset, django_capture_on_commit_callbacks
):
    from labelhub.webhooks.models import Webhook, WebhookDelivery

    Webhook.objects.create(
        organization=org_a.organization,
        url="https://example.com/hook",
        secret="s",
        events=["export.finished"],
    )
    Webhook.objects.create(
        organization=org_a.organization,
        url="https://example.com/other",
        secret="s",
        events=["task.stage_changed"],
    )
    export_id = exports.export_create(project=org_a.project, user=None, format="yolo").id
    with django_capture_on_commit_callbacks() as published:
        export = exports.export_run(export_id=export_id)
    assert not WebhookDelivery.objects.exists()  # the event is published once the export commits
    for callback in published:
        callback()  # the commit: the webhooks app queues the event (the HTTP delivery itself is not run)
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == "export.finished" and delivery.webhook.url == "https://example.com/hook"
    data = delivery.payload["data"]
    assert data["export"] == export.id and data["status"] == "done" and data["sha256"] == export.sha256
    assert data["regions"] == 20 and data["download_url"] == f"/api/v1/exports/{export.id}/download/"


def test_an_export_that_cannot_be_written_is_failed_with_its_reason(org_a, dataset):
    org_a.project.label_schema = [
        {"name": f"c{i}", "color": "#000000", "kinds": ["polygon"]} for i in range(300)
    ]
    org_a.project.save()
    export = exports.export_run(
        export_id=exports.export_create(project=org_a.project, user=None, format="voc").id
    )
    assert export.status == ExportStatus.FAILED and "at most 254 classes" in export.error
    assert not export.file.name
