"""The video task screen in real Chromium: step through frames with the arrow keys, seed a track with a
box, propagate it forward with progress, edit a propagated frame (it becomes a keyframe), submit."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labelhub.accounts.models import Organization, Role
from labelhub.labeling.models import Task
from labelhub.projects.models import Project
from tests.browser.conftest import shoot
from tests.browser.test_app_flow import sign_in, start, wait_js
from tests.helpers import client_for, make_user, project_members_all
from tests.labelhub.videos.test_ingest import CARPHONE


@pytest.fixture
def video_world(transactional_db, settings):
    settings.LABELHUB_VIDEO_TASK_FRAMES = 40
    settings.LABELHUB_VIDEO_TASK_OVERLAP = 5
    org = Organization.objects.create(name="Video", slug="video")
    manager = make_user("vmanager", org, Role.MANAGER)
    make_user("vannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Car phone",
        label_schema=[{"name": "person", "kinds": ["polygon", "mask"]}],
        created_by=manager,
    )
    project_members_all(project)
    response = client_for(manager).post(
        f"/api/v1/projects/{project.id}/videos/upload/",
        {"file": SimpleUploadedFile("carphone.mp4", CARPHONE.read_bytes())},
        format="multipart",
    )
    assert response.status_code == 201
    return project


def box(page, x0, y0, x1, y1):
    r = page.locator("canvas.vcanvas").bounding_box()
    sx, sy = r["width"] / 176, r["height"] / 144
    page.mouse.move(r["x"] + x0 * sx, r["y"] + y0 * sy)
    page.mouse.down()
    page.mouse.move(r["x"] + x1 * sx, r["y"] + y1 * sy, steps=4)
    page.mouse.up()


def test_step_propagate_edit_submit(browser, live_server, video_world):
    page = sign_in(browser, live_server, "vannotator")
    start(page, "annotate")
    page.wait_for_selector("canvas.vcanvas")
    assert page.evaluate("document.body.dataset.frame") == "0"
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    wait_js(page, "document.body.dataset.frame === '5'")
    page.keyboard.press("ArrowLeft")
    wait_js(page, "document.body.dataset.frame === '4'")
    box(page, 60, 30, 120, 100)  # a new track seeded on frame 4
    wait_js(page, "window.labelhub.video.state.regions.length === 1")
    page.fill("input.vframes", "10")
    page.click("button.vfwd")
    wait_js(page, "['done', 'failed', 'cancelled'].includes(document.body.dataset.propagation)")
    assert page.evaluate("document.body.dataset.propagation") == "done"
    assert page.locator("progress.vprogress").evaluate("p => [p.value, p.max]") == [10, 10]
    assert page.locator(".vstrip-mark.prop").count() == 10 and page.locator(".vstrip-mark.key").count() == 1
    shoot(page, "video-task")
    # step to a propagated frame and correct it: a keyframe
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_js(page, "document.body.dataset.frame === '7'")
    assert "propagated by flow-dis-similarity" in page.inner_text(".vcounter")
    box(page, 50, 30, 110, 100)
    wait_js(page, "document.querySelectorAll('.vstrip-mark.key').length === 2")
    assert "keyframe" in page.inner_text(".vcounter")
    page.click("button.vsubmit")
    page.wait_for_selector("body[data-ready=queue]")
    task = Task.objects.get(video__isnull=False, frame_start=0)
    assert task.stage == "review"
    shapes = {r["frame"]: r for r in task.annotation.revisions.order_by("-number").first().regions}
    assert shapes[7]["keyframe"] and shapes[8]["model"]["name"] == "flow-dis-similarity"
    assert not page.errors
