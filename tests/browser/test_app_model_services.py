"""Model services in real Chromium against the real label-studio-ml backend: a manager registers and
tests one from the project screen and pre-labels with it; the annotator sees each pre-label's source
(service and model version) and the segment tool's click goes to the service as Label Studio context."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labelhub.accounts.models import Organization, Role
from labelhub.predictions.models import Prediction
from labelhub.projects.models import Project
from tests.browser.conftest import shoot
from tests.browser.test_app_flow import click_image, regions, sign_in, start, wait_js
from tests.helpers import client_for, disc_image_bytes, make_user, project_members_all, upload
from tests.lsml.fixtures import backend, lsml_server  # noqa: F401 - fixtures
from workers.geometry import polygons_to_mask

pytestmark = pytest.mark.integration


def test_register_a_service_prelabel_and_click_through_it(browser, live_server, backend, transactional_db):  # noqa: F811
    org = Organization.objects.create(name="Services", slug="services")
    manager = make_user("smanager", org, Role.MANAGER)
    make_user("sannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Shapes",
        label_schema=[{"name": "cat", "color": "#e69f00", "kinds": ["polygon", "mask"]}],
        created_by=manager,
        prelabel="none",
    )
    project_members_all(project)
    assert upload(client_for(manager), project.id, ("a.png", disc_image_bytes(96, 80))).status_code == 201

    page = sign_in(browser, live_server, "smanager")
    page.goto(f"{live_server.url}/app/#/project/{project.id}")
    form = page.locator("form[aria-label='Register a model service']")
    form.locator("label:has-text('Name') input").fill("shapes")
    form.locator("label:has-text('URL') input").fill(backend.url)
    form.locator("label:has-text('Clicks') input").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("tr[data-service=shapes] [data-health=up]")
    assert "model INITIAL" in page.inner_text("tr[data-service=shapes]")
    page.click("tr[data-service=shapes] button:has-text('Pre-label all')")
    page.wait_for_selector("#live:has-text('1 batches queued')")
    deadline = time.monotonic() + 60
    while not Prediction.objects.filter(status="ok").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    shoot(page, "model_services", full_page=True)
    assert page.errors == []

    ann = sign_in(browser, live_server, "sannotator")
    start(ann, "annotate")
    sources = ann.locator(".regions li .source").all_inner_texts()
    assert sources == ["shapes · INITIAL"] * 3  # polygon, rectangle, brush mask
    ann.keyboard.press("s")
    click_image(ann, 70, 20)
    wait_js(ann, "document.body.dataset.segmentDone === '1'")
    clicked = next(r for r in backend.records("predict.jsonl") if r["context"])
    (point,) = clicked["context"]["result"]
    assert point["is_positive"] is True and point["value"]["keypointlabels"] == ["cat"]
    drawn = regions(ann)[-1]
    want = np.zeros(96 * 80, dtype=bool)
    want[next(iter(clicked["masks"].values()))] = True
    got = polygons_to_mask(drawn["polygons"], 80, 96)
    assert (got & want.reshape(80, 96)).sum() / (got | want.reshape(80, 96)).sum() >= project.polygon_min_iou
    assert ann.errors == []
