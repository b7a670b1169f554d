"""The manager's workspace in real Chromium: the task list's filters, a deep link that opens exactly that
task, reassign, gold and the timeline; COCO and YOLO-seg exports with images from the dialog, a history
that survives a reload, downloads that load in pycocotools and pass Ultralytics' own dataset check run
from another folder; per-user metrics."""

from __future__ import annotations

import zipfile

import pytest
from pycocotools.coco import COCO

from labelhub.accounts.models import Organization, Role
from labelhub.labeling import leases, reviews
from labelhub.labeling.annotations import Writer, annotation_prelabel, annotation_write
from labelhub.labeling.models import EventKind, Task, TaskEvent, TaskStatus
from labelhub.projects.models import Project
from tests.browser.conftest import shoot
from tests.browser.test_app_flow import sign_in
from tests.helpers import (
    client_for,
    disc_image_bytes,
    make_user,
    project_members_all,
    square,
    ultralytics_check,
    upload,
)

IMAGES = 6


@pytest.fixture
def team(transactional_db):
    org = Organization.objects.create(name="Workspace", slug="workspace")
    manager = make_user("wmanager", org, Role.MANAGER)
    annotator = make_user("wannotator", org, Role.ANNOTATOR)
    make_user("wannotator2", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Shelf",
        label_schema=[{"name": "can", "kinds": ["polygon", "mask"]}, {"name": "box", "kinds": ["polygon"]}],
        created_by=manager,
    )
    project_members_all(project)
    files = [(f"shelf{i}.png", disc_image_bytes(96, 80, seed=i)) for i in range(IMAGES)]
    assert upload(client_for(manager), project.id, *files).status_code == 201
    tasks = list(Task.objects.filter(project=project).order_by("id"))
    # The first four go through the pipeline (annotate, review, final-qa by different people, with an
    # AI pre-label kept or edited), so the timeline and the metrics have a real history.
    reviewers = [make_user("wreviewer", org, Role.REVIEWER), make_user("wreviewer2", org, Role.REVIEWER)]
    project_members_all(project)
    for k, task in enumerate(tasks[:4]):
        label = ["can", "box"][k % 2]
        ai = {
            "id": f"r{k}",
            "label": label,
            "kind": "polygon",
            "polygons": [square(10, 10, 40, 50)],
            "source": "ai",
        }
        annotation_prelabel(task=task, regions=[ai])
        leases.task_claim(task=task, user=annotator)
        mine = {**ai, "source": "human", "polygons": [square(10, 10, 40 + k, 50)]}
        annotation_write(task=task, author=annotator, base_revision=1, regions=[mine])
        reviews.task_submit(task=task, user=annotator)
        for reviewer in reviewers:
            task.refresh_from_db()
            leases.task_claim(task=task, user=reviewer)
            reviews.task_accept(task=task, user=reviewer)
    return {"project": project, "tasks": tasks, "manager": manager, "annotator": annotator}


def download(page, selector: str, path) -> zipfile.ZipFile:
    with page.expect_download() as info:
        page.click(selector)
    info.value.save_as(path)
    return zipfile.ZipFile(path)


def test_manager_runs_tasks_exports_and_metrics_in_the_app(browser, live_server, team, tmp_path):
    project, tasks = team["project"], team["tasks"]
    url = f"{live_server.url}/app/"
    page = sign_in(browser, live_server, "wmanager")

    # --- the task list: all six, then filtered
    page.goto(f"{url}#/tasks/{project.id}")
    page.wait_for_selector("table.task-table tbody tr[data-task]")
    rows = page.locator("table.task-table tbody tr[data-task]")
    assert rows.count() == IMAGES
    page.select_option("select[aria-label=Status]", "done")
    page.wait_for_function("document.querySelectorAll('tr[data-task]').length === 4")
    page.select_option("select[aria-label=Status]", "")
    page.select_option("select[aria-label=Stage]", "annotate")
    page.wait_for_function("document.querySelectorAll('tr[data-task]').length === 2")
    assert [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.task)")] == [
        t.id for t in tasks[4:]
    ]
    shoot(page, "workspace-tasks")

    # --- a deep link opens exactly that task (the last one, not the oldest open one), with a lease
    target = tasks[5]
    page.goto(f"{url}#/task/{target.id}")
    page.wait_for_selector("body[data-ready=task]")
    assert page.url.endswith(f"#/task/{target.id}")
    target.refresh_from_db()
    assert target.status == TaskStatus.IN_PROGRESS and target.assignee_id == team["manager"].id

    # --- reassign the other open task, mark an accepted one gold, read its timeline
    page.goto(f"{url}#/tasks/{project.id}")  # leaving the task screen releases its lease
    page.wait_for_selector("table.task-table tbody tr[data-task]")
    page.select_option(f"select[aria-label='Reassign task {tasks[4].id}']", str(team["annotator"].id))
    page.wait_for_selector(f"tr[data-task='{tasks[4].id}'] >> text=wannotator")
    assert Task.objects.get(pk=tasks[4].pk).assignee_id == team["annotator"].id
    page.select_option("select[aria-label=Gold]", "")
    page.click(f"button[aria-label='Mark task {tasks[0].id} gold']")
    page.wait_for_selector(f"tr[data-task='{tasks[0].id}'] >> text=★ gold")
    assert Task.objects.get(pk=tasks[0].pk).is_gold
    page.select_option("select[aria-label=Gold]", "true")
    page.wait_for_function("document.querySelectorAll('tr[data-task]').length === 1")
    page.click(f"button[aria-label='Timeline of task {tasks[0].id}']")
    timeline = page.locator(f"ol[aria-label='Timeline of task {tasks[0].id}']")
    timeline.locator("li", has_text="gold marked by wmanager").wait_for()
    assert "revision 2 by wannotator in annotate" in timeline.inner_text()
    assert "accepted by wreviewer2" in timeline.inner_text()
    assert TaskEvent.objects.filter(task=target, kind=EventKind.RELEASED).exists()
    shoot(page, "workspace-timeline")

    # --- exports from the dialog: COCO with images, YOLO-seg with images and a split
    page.click("a:has-text('Exports')")
    page.wait_for_selector("section[aria-label='Dataset versions']")
    page.click("button:has-text('New export')")
    page.select_option("select[aria-label='Export format']", "coco")
    page.check("dialog >> text=include images")
    shoot(page, "workspace-export-dialog")
    page.click("button:has-text('Start export')")
    page.wait_for_selector("tr[data-export][data-status=done]")
    # Between the two versions one accepted task is reopened, its region grown, and accepted again.
    fixed = {"id": "r1", "label": "box", "kind": "polygon", "polygons": [square(10, 10, 60, 60)]}
    Task.objects.filter(pk=tasks[1].pk).update(status=TaskStatus.OPEN, stage="final-qa")
    annotation_write(
        task=tasks[1], author=team["annotator"], base_revision=2, regions=[fixed], writer=Writer.IMPORT
    )
    Task.objects.filter(pk=tasks[1].pk).update(status=TaskStatus.DONE, stage="done")
    page.click("button:has-text('New export')")
    page.select_option("select[aria-label='Export format']", "yolo")
    page.check("dialog >> text=include images")
    page.fill("input[aria-label=train]", "0.5")
    page.fill("input[aria-label=val]", "0.5")
    page.click("button:has-text('Start export')")
    page.wait_for_function("document.querySelectorAll('tr[data-export][data-status=done]').length === 2")

    # --- the history survives a reload; both archives download and load
    page.reload()
    page.wait_for_function("document.querySelectorAll('tr[data-export][data-status=done]').length === 2")
    ids = [
        int(x) for x in page.locator("tr[data-export]").evaluate_all("rs => rs.map(r => r.dataset.export)")
    ]
    yolo_id, coco_id = ids  # newest first
    page.select_option("select[aria-label='Older version']", str(coco_id))
    page.select_option("select[aria-label='Newer version']", str(yolo_id))
    page.click("button:has-text('Compare')")
    diff = page.locator(".diff")
    diff.wait_for()
    assert "Images: 0 added, 0 removed, 1 changed, 3 unchanged" in diff.inner_text()
    assert f"image {tasks[1].image_id}: revision 2 → 3 (0 added, 0 removed, 1 changed)" in diff.inner_text()
    shoot(page, "workspace-exports", full_page=True)

    coco_zip = download(page, f"a[aria-label='Download export {coco_id}']", tmp_path / "coco.zip")
    coco_zip.extractall(tmp_path / "coco")
    ann = next((tmp_path / "coco").rglob("*.json"))
    coco = COCO(str(ann))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 4
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == ["box", "can"]
    assert all(
        (ann.parent.parent / "images").rglob(img["file_name"]) for img in coco.loadImgs(coco.getImgIds())
    )

    yolo_zip = download(page, f"a[aria-label='Download export {yolo_id}']", tmp_path / "yolo.zip")
    yolo_zip.extractall(tmp_path / "yolo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (checked,) = ultralytics_check([tmp_path / "yolo/data.yaml"], cwd=elsewhere, config_dir=tmp_path / "cfg")
    assert checked["train"] == str(tmp_path / "yolo/images/train")
    assert checked["val"] == str(tmp_path / "yolo/images/val")
    assert checked["names"] == {"0": "can", "1": "box"}

    # --- per-user metrics with a time range
    page.click("a:has-text('Metrics')")
    page.wait_for_selector("section[aria-label='Per stage']")
    page.select_option("select[aria-label='Time range']", "")
    page.wait_for_selector("table.per-user tr[data-user=wmanager]")
    # all time: no per-hour figure (the window has no length)
    page.wait_for_function(
        "document.querySelector('tr[data-user=wannotator] td:nth-of-type(4)')?.textContent === '–'"
    )
    row = page.locator("table.per-user tr[data-user=wannotator] td").all_inner_texts()
    assert row[:3] == ["4", "4", "0"]  # actions, submitted, reviewed
    assert row[-2] == "100%"  # every AI region kept
    assert page.locator("table.per-user tr[data-user=wreviewer] td").all_inner_texts()[:3] == ["4", "0", "4"]
    shoot(page, "workspace-metrics")
    assert page.errors == []
