"""The annotate screen's tools in real Chromium: polygon, brush, masks from RLE, vertex insert/delete,
undo/redo, shortcuts, the empty queue and the 409 dialog that never loses an edit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from labelhub.accounts.models import Organization, Role
from labelhub.images.models import Image
from labelhub.labeling.annotations import annotation_prelabel
from labelhub.projects.models import Project
from tests.browser.test_app_flow import (
    H,
    W,
    click_image,
    drag_image,
    regions,
    saved,
    sign_in,
    start,
    to_page,
    two_objects_png,
    wait_js,
)
from tests.helpers import client_for, make_user, project_members_all, upload


def ring(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


@pytest.fixture
def task(transactional_db):
    org = Organization.objects.create(name="Tools", slug="tools")
    manager = make_user("tmanager", org, Role.MANAGER)
    make_user("tannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Tools",
        label_schema=[
            {"name": "car", "kinds": ["polygon", "mask"]},
            {"name": "sign", "kinds": ["polygon", "mask"]},
        ],
        created_by=manager,
    )
    project_members_all(project)
    assert upload(client_for(manager), project.id, ("t.png", two_objects_png())).status_code == 201
    task = Image.objects.get(project=project).task
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[200:230, 20:60] = 1
    rle = coco_mask.encode(np.asfortranarray(mask))
    annotation_prelabel(
        task=task,
        regions=[
            {
                "id": "holed",
                "label": "car",
                "kind": "polygon",
                "polygons": [{"exterior": ring(20, 20, 160, 180), "holes": [ring(60, 60, 120, 140)]}],
                "source": "ai",
                "score": 0.8,
            },
            {
                "id": "blob",
                "label": "sign",
                "kind": "mask",
                "rle": {"size": [H, W], "counts": rle["counts"].decode()},
                "source": "ai",
                "score": 0.7,
            },
        ],
    )
    return task


def selected(page):
    return page.evaluate("window.labelhub.screen.selected")


def test_regions_masks_holes_and_editing(browser, live_server, task):
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")
    assert page.locator(".regions li").all_inner_texts()[0].startswith("car 1, AI, 0.80")
    # Holes are not part of the region; the mask decodes from its RLE client side.
    click_image(page, 90, 100)
    assert selected(page) == -1
    click_image(page, 40, 40)
    assert selected(page) == 0
    click_image(page, 40, 215)
    assert selected(page) == 1
    page.keyboard.press("2")  # class of the selected region
    assert regions(page)[1]["label"] == "sign"
    page.keyboard.press("1")
    assert regions(page)[1]["label"] == "car"

    # Insert a vertex by clicking an edge of the selected polygon, delete one by double-clicking it.
    click_image(page, 40, 40)
    click_image(page, 90, 20)
    assert len(regions(page)[0]["polygons"][0]["exterior"]) == 5
    assert regions(page)[0]["polygons"][0]["exterior"][1] == pytest.approx([90, 20], abs=0.6)
    p = to_page(page, 90, 20)
    page.mouse.dblclick(p["x"], p["y"])
    assert len(regions(page)[0]["polygons"][0]["exterior"]) == 4
    # Undo and redo are one step per gesture.
    page.keyboard.press("Control+z")
    assert len(regions(page)[0]["polygons"][0]["exterior"]) == 5
    page.keyboard.press("Control+Shift+z")
    assert len(regions(page)[0]["polygons"][0]["exterior"]) == 4

    # Draw a polygon: P, three clicks, Enter.
    page.keyboard.press("p")
    for x, y in [(200, 190), (300, 190), (250, 230)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    drawn = np.array(regions(page)[-1]["polygons"][0]["exterior"])
    assert drawn == pytest.approx(np.array([[200, 190], [300, 190], [250, 230]]), abs=0.6)

    # Brush a new mask in empty space (one stroke = one undo step), then erase part of it.
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    drag_image(page, (200, 20), (300, 20))
    brushed = regions(page)[-1]
    assert brushed["kind"] == "mask" and brushed["source"] == "human"
    area = coco_mask.area({"size": brushed["rle"]["size"], "counts": brushed["rle"]["counts"].encode()})
    assert 100 * 20 < area < 130 * 26
    page.keyboard.press("e")
    drag_image(page, (240, 20), (260, 20))
    erased = regions(page)[-1]
    smaller = coco_mask.area({"size": erased["rle"]["size"], "counts": erased["rle"]["counts"].encode()})
    assert smaller < area - 200
    revision = saved(page)

    # What the server stored is what the page shows, RLE strings included.
    got = (
        client_for(task.project.organization.memberships.get(role=Role.MANAGER).user)
        .get(f"/api/v1/tasks/{task.id}/annotation/")
        .json()
    )
    assert got["revision"] == revision
    assert [r["id"] for r in got["regions"]] == [r["id"] for r in regions(page)]
    assert got["regions"][-1]["rle"]["counts"] == erased["rle"]["counts"]

    # Delete, hide, F1.
    page.keyboard.press("v")
    click_image(page, 250, 215)
    n = len(regions(page))
    page.keyboard.press("Delete")
    assert len(regions(page)) == n - 1
    page.keyboard.press("Shift+h")
    assert page.evaluate("window.labelhub.screen.hidden.size") == n - 1
    page.keyboard.press("F1")
    assert page.locator("dialog.shortcuts").is_visible()
    assert "Ctrl+Enter" in page.locator("dialog.shortcuts").inner_text()
    assert page.errors == []


def test_a_stale_write_offers_keep_mine_or_reload_and_loses_nothing(browser, live_server, task):
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")
    # Someone else (a manager) saves revision 2 meanwhile.
    manager = client_for(task.project.organization.memberships.get(role=Role.MANAGER).user)
    theirs = [
        {
            "id": "m",
            "label": "sign",
            "kind": "polygon",
            "polygons": [{"exterior": ring(5, 5, 15, 15), "holes": []}],
        }
    ]
    assert (
        manager.put(
            f"/api/v1/tasks/{task.id}/annotation/", {"revision": 1, "regions": theirs}, format="json"
        ).status_code
        == 200
    )

    page.keyboard.press("Tab")
    page.keyboard.press("Delete")  # our edit, based on revision 1
    page.wait_for_selector("dialog[open]:has-text('changed on the server')")
    assert page.locator("[data-save-state=conflict]").count() >= 1
    assert len(regions(page)) == 1  # the local edit is still on screen
    # The dialog says which regions differ, by id.
    diff = page.locator("dialog[open] ul.diff li").all_inner_texts()
    assert sorted(diff) == ["sign (blob): only in yours", "sign (m): only in theirs"]
    page.click("dialog[open] button:has-text('Keep mine')")
    assert saved(page) == 3
    stored = manager.get(f"/api/v1/tasks/{task.id}/annotation/").json()
    assert [r["id"] for r in stored["regions"]] == ["blob"]

    # Reload theirs: their revision is shown and ours stays one undo away.
    assert (
        manager.put(
            f"/api/v1/tasks/{task.id}/annotation/", {"revision": 3, "regions": theirs}, format="json"
        ).status_code
        == 200
    )
    page.keyboard.press("Tab")
    page.keyboard.press("Delete")
    page.click("dialog[open] button:has-text('Reload theirs')")
    wait_js(
        page, "window.labelhub.editor.regions.length === 1 && window.labelhub.editor.regions[0].id === 'm'"
    )
    page.keyboard.press("Control+z")
    assert [r["id"] for r in regions(page)] == []
    assert page.errors == []


def test_an_empty_queue_says_so(browser, live_server, task):
    task.stage = "done"
    task.save()
    page = sign_in(browser, live_server, "tannotator")
    page.click(".stage-card[data-stage=annotate] button")
    page.wait_for_selector("text=Queue empty")
    assert "nothing to do here" in page.inner_text("#screen").lower()
    assert "nothing to do here" in page.inner_text("#live").lower()  # announced in the aria-live region
    assert json.loads(json.dumps(page.errors)) == []


def test_an_unsaved_draft_survives_a_reload(browser, live_server, task):
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")
    page.route(
        "**/api/v1/tasks/*/annotation/",
        lambda route: route.abort() if route.request.method == "PUT" else route.continue_(),
    )
    page.keyboard.press("Tab")
    page.keyboard.press("Delete")
    page.wait_for_selector("[data-save-state=error]")
    page.unroute("**/api/v1/tasks/*/annotation/")
    page.reload()
    page.wait_for_selector("dialog[open]:has-text('Unsaved work found')")
    page.click("dialog[open] button:has-text('Restore my draft')")
    assert [r["id"] for r in regions(page)] == ["blob"]
    assert saved(page) == 2
    assert page.evaluate("localStorage.length") == 0  # saved: the draft is gone


def test_one_region_at_a_time(browser, live_server, task):
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")
    page.click("button:has-text('One at a time')")
    assert page.evaluate("window.labelhub.screen.shownHidden.size") == 1
    assert selected(page) == 0
    page.keyboard.press("ArrowDown")
    assert selected(page) == 1
    assert page.evaluate("[...window.labelhub.screen.shownHidden]") == ["holed"]


def test_copy_paste_duplicate_and_the_brightness_keys(browser, live_server, task):
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")
    page.keyboard.press("Control+v")
    assert len(regions(page)) == 2 and "Nothing copied" in page.inner_text("#live")
    click_image(page, 40, 40)  # the AI polygon with a hole
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")  # pasted in place: a person's region, selected
    original, pasted = regions(page)[0], regions(page)[2]
    assert pasted["polygons"] == original["polygons"] and pasted["label"] == "car"
    assert pasted["id"] != original["id"] and pasted["source"] == "human"
    assert "score" not in pasted and "prediction_id" not in pasted
    assert selected(page) == 2
    click_image(page, 40, 215)  # the AI mask
    page.keyboard.press("Control+d")
    duplicate = regions(page)[3]
    assert duplicate["kind"] == "mask" and duplicate["rle"] == regions(page)[1]["rle"]
    assert duplicate["source"] == "human" and selected(page) == 3
    page.keyboard.press("Control+z")  # one undo step each
    assert len(regions(page)) == 3
    saved(page)
    stored = client_for(task.project.organization.memberships.get(role=Role.MANAGER).user).get(
        f"/api/v1/tasks/{task.id}/annotation/"
    )
    assert [r["source"] for r in stored.json()["regions"]] == ["ai", "ai", "human"]

    # the clipboard holds for the browser session: a region that does not fit another image is refused
    page.evaluate(
        """sessionStorage.setItem('lh.clipboard', JSON.stringify({size: [2000, 3000], region: {label: 'car',
           kind: 'polygon', polygons: [{exterior: [[0, 0], [2900, 0], [2900, 1900]], holes: []}]}}))"""
    )
    page.keyboard.press("Control+v")
    assert len(regions(page)) == 3 and "does not fit" in page.inner_text("#live")

    # Shift+B / Shift+C pick brightness or contrast, = and - change it (kept across images)
    page.keyboard.press("Shift+B")
    page.keyboard.press("=")
    page.keyboard.press("=")
    page.keyboard.press("Shift+C")
    page.keyboard.press("-")
    assert page.evaluate("[window.labelhub.screen.brightness, window.labelhub.screen.contrast]") == [1.2, 0.9]
    assert page.evaluate("window.labelhub.view.container.style.filter") == "brightness(1.2) contrast(0.9)"
    assert page.evaluate("localStorage.getItem('lh.brightness')") == "1.2"
    assert page.evaluate("window.labelhub.screen.tools.tool") == "select"  # Shift+B is not the brush
    assert page.errors == []


def test_a_change_redraws_only_what_draws_it(browser, live_server, task):
    """The task screen's store: the panels and the canvas each follow the slices they draw, so selecting a
    region rebuilds the regions list and redraws the canvas once, and nothing else; a class key or a
    brightness key leaves the canvas and the lists alone. Counted by the store (labelhub.store.renders)."""
    page = sign_in(browser, live_server, "tannotator")
    start(page, "annotate")

    def redrawn(key_or_click, condition):
        before = page.evaluate("({...window.labelhub.store.renders})")
        key_or_click()
        wait_js(page, condition)
        after = page.evaluate("({...window.labelhub.store.renders})")
        # The lease's countdown ticks each second, whatever the labeler does.
        return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0) and k != "lease"}

    def key(name):
        return lambda: page.keyboard.press(name)

    def pick(i):  # the list's name button: select and zoom (the view's own redraw is no store render)
        return lambda: page.locator(".regions li button.name").nth(i).click()

    selection = {"regions": 1, "canvas": 1, "issue-target": 1}
    assert redrawn(pick(1), "window.labelhub.screen.selected === 1") == selection
    assert page.locator(".regions li.selected").get_attribute("data-region-id") == "blob"
    assert redrawn(key("Escape"), "window.labelhub.screen.selected === -1") == selection
    # Nothing selected: a class key picks the class for the next region; the class buttons alone redraw.
    assert redrawn(key("2"), "window.labelhub.screen.labelIndex === 1") == {"classes": 1}
    assert page.locator(".classes [aria-checked=true]").inner_text().endswith("sign")
    # Brightness: the canvas's CSS filter and the View panel's slider, moved in place.
    filters = {"filters": 1, "filter-sliders": 1}
    assert redrawn(key("="), "window.labelhub.screen.brightness === 1.1") == filters
    assert page.locator("input[data-filter=brightness]").input_value() == "1.1"
    # An edit (the class of the selected region) redraws the list, the canvas and the save state (its
    # autosave may redraw them again), not the other panels nor the bars.
    redrawn(pick(0), "window.labelhub.screen.selected === 0")
    changed = redrawn(key("2"), "window.labelhub.editor.regions[0].label === 'sign'")
    assert changed.keys() == {"regions", "canvas", "save-state"}, changed
    assert page.errors == []
