"""A gigapixel slide in the app (real Chromium): Deep Zoom tiles drawn at the zoom in view under the
regions, the wheel zooms to full resolution in a corner, a vertex of an AI region is corrected there and
the task is submitted with full-resolution coordinates."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from labelhub.accounts.models import Organization, Role
from labelhub.images.services import images_import_folder
from labelhub.labeling.annotations import annotation_prelabel
from labelhub.projects.models import Project
from tests.browser.test_app_flow import drag_image, regions, saved, sign_in, start, to_page, wait_js
from tests.helpers import make_user, project_members_all
from tests.labelhub.images.test_pyramids import W, gigapixel_tiff  # noqa: F401 - the shared 50k slide

CORNER = (45_056 + 1_500, 45_056 + 1_500)  # inside the textured block near the bottom-right corner


def octagon(cx, cy, r):
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    return [[round(cx + r * np.cos(a), 2), round(cy + r * np.sin(a), 2)] for a in angles]


@pytest.fixture
def slide_task(transactional_db, settings, tmp_path, gigapixel_tiff):  # noqa: F811
    org = Organization.objects.create(name="Slides", slug="slides")
    manager = make_user("smanager", org, Role.MANAGER)
    make_user("sannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Slides",
        label_schema=[{"name": "nucleus", "kinds": ["polygon"]}],
        created_by=manager,
    )
    project_members_all(project)
    root = tmp_path / "imports"
    root.mkdir()
    shutil.copyfile(gigapixel_tiff, root / "slide.tif")
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    (image,) = images_import_folder(project=project, path=str(root), user=manager).created
    # the region to correct, and 2,000 small ones over the whole slide (drawn by level of detail)
    rng = np.random.default_rng(0)
    many = [
        {
            "id": f"n{i}",
            "label": "nucleus",
            "kind": "polygon",
            "polygons": [{"exterior": octagon(float(x), float(y), 30.0), "holes": []}],
            "source": "ai",
            "score": 0.5,
        }
        for i, (x, y) in enumerate(rng.uniform(100, W - 100, size=(2000, 2)))
    ]
    target = {
        "id": "target",
        "label": "nucleus",
        "kind": "polygon",
        "polygons": [{"exterior": octagon(*CORNER, 60), "holes": []}],
        "source": "ai",
        "score": 0.9,
    }
    annotation_prelabel(task=image.task, regions=[target, *many])
    return image.task


def test_open_a_slide_zoom_to_full_resolution_in_a_corner_correct_and_submit(
    browser, live_server, slide_task
):
    page = sign_in(browser, live_server, "sannotator")
    start(page, "annotate")
    assert page.evaluate("!!window.labelhub.view.pyramid")
    assert page.evaluate("window.labelhub.view.scale") < 0.05  # the whole slide fits
    # zoom with the wheel, anchored on the corner region, until one image pixel is a screen pixel or more
    for _ in range(20):
        if page.evaluate("window.labelhub.view.scale") >= 1:
            break
        p = to_page(page, *CORNER)
        page.mouse.move(p["x"], p["y"])
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(50)
    assert page.evaluate("window.labelhub.view.scale") >= 1
    top = int(np.ceil(np.log2(W)))
    # the full-resolution level's tiles around the corner were fetched, loaded and are drawn
    # (Resource Timing's buffer is full by then: the layer's own cache says what was loaded)
    wait_js(
        page,
        f"[...window.labelhub.view.pyramid.cache].filter(([k, img]) => k.startsWith('{top}/') && img.ok).length >= 4",
    )
    # select the region and drag a vertex 20 image pixels right and 10 down
    p = to_page(page, *CORNER)
    page.mouse.click(p["x"], p["y"])
    index = page.evaluate("window.labelhub.screen.selected")
    assert regions(page)[index]["id"] == "target"
    vertex = regions(page)[index]["polygons"][0]["exterior"][0]
    drag_image(page, vertex, (vertex[0] + 20, vertex[1] + 10))
    saved(page)
    moved = regions(page)[index]["polygons"][0]["exterior"][0]
    assert moved == pytest.approx([vertex[0] + 20, vertex[1] + 10], abs=1.0)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Queue empty")
    slide_task.refresh_from_db()
    assert slide_task.stage != "annotate"
    stored = {
        r["id"]: r
        for r in slide_task.annotation.revisions.get(number=slide_task.annotation.current_revision).regions
    }
    assert stored["target"]["polygons"][0]["exterior"][0] == pytest.approx(moved, abs=0.01)
    assert len(stored) == 2001
    assert page.errors == []
