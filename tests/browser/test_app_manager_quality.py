"""The manager's screen shows the metrics API's `segmentation` block (pixel accuracy, Dice, IoU,
Boundary F1) in real Chromium, after a pre-labelled task is edited, submitted and accepted; the project
form saves the quality settings."""

from __future__ import annotations

import numpy as np

from labelhub.accounts.models import Organization, Role
from labelhub.images.models import Image
from labelhub.labeling.annotations import annotation_prelabel
from labelhub.projects.models import Project, ProjectMember
from tests.browser.test_app_flow import sign_in
from tests.helpers import client_for, disc_image_bytes, make_user, upload

W, H = 96, 80


def ring(r: float) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return [[round(W / 2 + r * np.cos(a), 2), round(H / 2 + r * np.sin(a), 2)] for a in t]


def region(r: float, **extra) -> dict:
    return {
        "id": "disc",
        "label": "cat",
        "kind": "polygon",
        "polygons": [{"exterior": ring(r), "holes": []}],
        **extra,
    }


def test_manager_screen_shows_segmentation_quality(browser, live_server, transactional_db):
    org = Organization.objects.create(name="Quality", slug="quality")
    manager = make_user("qmanager", org, Role.MANAGER)
    annotator = make_user("qannotator", org, Role.ANNOTATOR)
    reviewer = make_user("qreviewer", org, Role.REVIEWER)
    project = Project.objects.create(
        organization=org,
        name="Discs",
        label_schema=[{"name": "cat", "kinds": ["polygon", "mask"]}],
        pipeline=[
            {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
            {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
        ],
        created_by=manager,
    )
    for user in (annotator, reviewer):
        ProjectMember.objects.create(project=project, user=user)
    assert upload(client_for(manager), project.id, ("d.png", disc_image_bytes(W, H))).status_code == 201
    task = Image.objects.get(project=project).task
    annotation_prelabel(task=task, regions=[region(18, source="ai", score=0.9)])
    ann, rev = client_for(annotator), client_for(reviewer)
    assert ann.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate").json()["id"] == task.id
    current = ann.get(f"/api/v1/tasks/{task.id}/annotation/").json()
    put = ann.put(
        f"/api/v1/tasks/{task.id}/annotation/",
        {"revision": current["current_revision"], "regions": [region(24)]},
        format="json",
    )
    assert put.status_code == 200, put.content
    assert ann.post(f"/api/v1/tasks/{task.id}/submit/").status_code == 200
    assert rev.post(f"/api/v1/projects/{project.id}/next-task/?stage=review").json()["id"] == task.id
    assert rev.post(f"/api/v1/tasks/{task.id}/accept/").status_code == 200

    seg = client_for(manager).get(f"/api/v1/projects/{project.id}/metrics/").json()["segmentation"]
    overall = seg["prelabel"]["overall"]
    assert overall["n"] == 1 and 0 < overall["dice"] < 1  # the annotator grew the disc: not a perfect match

    page = sign_in(browser, live_server, "qmanager")
    page.click("a:has-text('Manage')")
    page.wait_for_selector("body[data-ready=manage]")
    keys = ["pixel_accuracy", "dice", "iou", "boundary_f1"]
    header = page.locator("table.segmentation thead th").all_inner_texts()
    assert header == ["comparison", "n", "pixel accuracy", "Dice", "IoU", "Boundary F1"]
    rows = [("pre-labels vs accepted", overall)] + [
        (f"model {name}", m) for name, m in seg["prelabel"]["by_model"].items()
    ]
    assert len(rows) == 2
    for what, m in rows:
        row = page.locator("table.segmentation tbody tr", has=page.locator(f"th:text-is('{what}')"))
        assert row.locator("td").all_inner_texts() == [str(m["n"]), *(f"{m[k]:.3f}" for k in keys)]
    assert f"Boundary F1 at {seg['tolerance_px']:g} px" in page.inner_text(
        "section[aria-label='Segmentation quality'] h2"
    )
    # The project form holds the quality settings: the automatic send-back saved from it.
    page.goto(f"{live_server.url}/app/#/project/{project.id}/settings")
    page.wait_for_selector("form[aria-label='Project settings'] fieldset.quality-settings")
    assert page.input_value("[aria-label='Send back below']") == ""
    page.fill("[aria-label='Send back below']", "0.6")
    page.fill("[aria-label='Send back limit']", "3")
    page.fill("[aria-label='Honeypot rate']", "0.1")
    page.click("button:has-text('Save')")
    page.wait_for_function(f"location.hash === '#/project/{project.id}'")
    project.refresh_from_db()
    assert (project.quality_send_back_below, project.quality_send_back_limit) == (0.6, 3)
    assert project.honeypot_rate == 0.1 and project.quality_threshold is None
    assert page.errors == []
