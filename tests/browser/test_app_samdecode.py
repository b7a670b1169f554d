"""SAM clicks decoded in the browser (onnxruntime-web, WASM, in real headless Chromium) from the served
embedding and ONNX decoder, against the server's PyTorch decode of the same click; the View panel's
toggle (auto / browser / server) and auto's latency-measured choice.

SAM vit_b with seeded random weights (LABELHUB_SAM_RANDOM_SEED, as the predictions tests build it); the
embedding is a seeded array stored through the service, so no test here runs the image encoder. Random
weights make the masks meaningless but not trivial (the clicks below cover 60-80% of the image): these
tests check that both decoders compute the same thing, never quality."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from django.core.cache import cache

from labelhub.accounts.models import Organization, Role
from labelhub.images.models import Image
from labelhub.predictions.backends import segmentation_backend
from labelhub.predictions.embeddings import embedding_store, process_lru
from labelhub.projects.models import Project
from tests.browser.test_app_flow import (
    H,
    W,
    click_image,
    regions,
    sign_in,
    start,
    to_page,
    two_objects_png,
    wait_js,
)
from tests.helpers import client_for, make_user, project_members_all, upload
from workers.geometry import rle_to_mask

CLICKS = [(60, 60), (160, 120), (250, 80), (100, 200), (280, 200), (200, 40), (40, 180), (300, 120)]


@pytest.fixture
def sam(settings, tmp_path_factory):
    settings.LABELHUB_SAM_RANDOM_SEED = "0"
    settings.LABELHUB_SAM_MODEL = "vit_b"
    settings.LABELHUB_SAM_DEVICE = "cpu"
    settings.LABELHUB_SAM_DECODER = (
        "torch"  # the server decodes with PyTorch, the browser with the ONNX graph
    )
    settings.LABELHUB_SAM_ONNX_DIR = str(tmp_path_factory.getbasetemp() / "onnx")
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = False  # no everything-mode run of the encoder on upload
    cache.clear()
    process_lru.clear()
    yield settings
    process_lru.clear()


@pytest.fixture
def task(transactional_db, sam):
    from workers.sam import Embedding

    org = Organization.objects.create(name="Decode", slug="decode")
    manager = make_user("dmanager", org, Role.MANAGER)
    annotator = make_user("dannotator", org, Role.ANNOTATOR)
    project = Project.objects.create(
        organization=org,
        name="Decode",
        label_schema=[{"name": "car", "kinds": ["polygon", "mask"]}, {"name": "sign", "kinds": ["polygon"]}],
        created_by=manager,
    )
    project_members_all(project)
    assert upload(client_for(manager), project.id, ("t.png", two_objects_png())).status_code == 201
    image = Image.objects.get(project=project)
    backend = segmentation_backend()
    assert (backend.model_name, backend.checkpoint_sha256) == ("sam-vit_b", "random-seed-0")
    data = np.random.default_rng(0).normal(0, 1, (256, 64, 64)).astype(np.float16)
    embedding = Embedding(backend.model_name, backend.checkpoint_sha256, (H, W), (768, 1024), data)
    embedding_store(image=image, backend=backend, embedding=embedding)
    return {"image": image, "annotator": annotator}


def open_segment_tool(browser, live_server, mode=None):
    page = sign_in(browser, live_server, "dannotator")
    if mode:  # the toggle is stored per user in this browser (localStorage); a new context starts at auto
        page.evaluate("(m) => localStorage.setItem('lh.samDecode', m)", mode)
    start(page, "annotate")
    page.keyboard.press("s")
    return page


def clicked(page, x, y, button="left"):
    """Click the image, wait for the decoded mask; the path that decoded it and the prompt it sent."""
    done = int(page.evaluate("document.body.dataset.segmentDone || 0"))
    click_image(page, x, y, button)
    wait_js(page, f"Number(document.body.dataset.segmentDone || 0) > {done}")
    seg = page.evaluate(
        "(() => { const s = window.labelhub.screen.tools.segment; return {clicks: s.clicks, labels: s.labels}; })()"
    )
    return page.evaluate("document.body.dataset.segmentDecoder"), seg


def region_mask(region) -> np.ndarray:
    if region["kind"] == "mask":
        return rle_to_mask(region["rle"]).astype(bool)
    from workers.geometry import polygons_to_mask

    return polygons_to_mask(region["polygons"], H, W)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_browser_decoded_clicks_equal_the_servers_pytorch_decode(browser, live_server, task, settings):
    """On two WASM threads: the page is cross-origin isolated (COOP + COEP credentialless), so
    onnxruntime-web runs the graph on a thread pool and still gives the server's mask."""
    settings.LABELHUB_BROWSER_DECODE_THREADS = 2
    page = open_segment_tool(browser, live_server, "browser")
    assert page.evaluate("crossOriginIsolated") is True
    api = client_for(task["annotator"])
    image = task["image"]

    # one positive click: SAM's multimask choice (the best of tokens 1-3), no previous mask
    path, seg = clicked(page, *CLICKS[1])
    assert path == "browser"
    # the second thread: a worker started from a blob of onnxruntime-web's module (the live server's
    # static files carry no COEP, so a worker loaded from their URL would be refused)
    assert page.workers and all(w.url.startswith("blob:") for w in page.workers), [
        w.url for w in page.workers
    ]
    (region,) = regions(page)
    assert region["kind"] == "mask" and region["source"] == "human"
    mine = region_mask(region)
    served = api.post(
        f"/api/v1/images/{image.id}/segment/",
        {"points": seg["clicks"], "point_labels": seg["labels"]},
        format="json",
    )
    assert served.status_code == 200, served.json()
    theirs = rle_to_mask(served.json()["rle"]).astype(bool)
    assert 0 < theirs.sum() < theirs.size
    assert iou(mine, theirs) >= 0.99

    # a negative click refines it: two points plus the previous low-res mask (token 0), as the server
    # chains with mask_input_id
    path, seg = clicked(page, *CLICKS[3], button="right")
    assert path == "browser" and seg["labels"] == [1, 0]
    (region,) = regions(page)
    chained = api.post(
        f"/api/v1/images/{image.id}/segment/",
        {
            "points": seg["clicks"],
            "point_labels": seg["labels"],
            "mask_input_id": served.json()["mask_input_id"],
        },
        format="json",
    )
    assert chained.status_code == 200, chained.json()
    theirs2 = rle_to_mask(chained.json()["rle"]).astype(bool)
    assert iou(region_mask(region), theirs2) >= 0.99
    assert iou(theirs2, theirs) < 0.99  # the second click changed the mask: the chain was really decoded

    # the embedding and the decoder were fetched once for the two clicks
    fetched = page.evaluate(
        "performance.getEntriesByType('resource').map((e) => e.name).filter((n) => /embedding|decoder\\.onnx/.test(n))"
    )
    assert len(fetched) == 2, fetched
    assert page.evaluate("window.labelhub.decoder.threads()") == 2
    assert "browser decoder: 2 threads" in page.inner_text("[data-decode-status]")
    assert not page.errors, page.errors


def test_the_toggle_forces_each_path_and_the_panel_says_which_decoded(browser, live_server, task):
    page = open_segment_tool(browser, live_server)
    mode = page.locator("[data-decode-mode]")
    assert mode.input_value() == "auto"  # the default

    mode.select_option("server")
    page.locator(".canvas").focus()
    path, _ = clicked(page, *CLICKS[0])
    assert path == "server"
    status = page.locator("[data-decode-status]")
    assert status.get_attribute("data-last") == "server" and "last click: server" in status.inner_text()
    assert regions(page)[-1]["kind"] == "polygon"  # the server's answer: simplified polygons
    page.keyboard.press("n")  # finish this region

    mode.select_option("browser")
    page.locator(".canvas").focus()
    path, _ = clicked(page, *CLICKS[1])
    assert path == "browser"
    assert status.get_attribute("data-last") == "browser" and "last click: browser" in status.inner_text()
    assert regions(page)[-1]["kind"] == "mask"  # the browser's answer: the mask itself
    page.keyboard.press("n")

    # a class drawn as polygons only is decoded in the browser too: its mask becomes the server's
    # simplified polygons (polygonize/), and no server decode runs
    page.keyboard.press("Escape")  # deselect, so the class key picks the next region's class
    page.keyboard.press("2")
    calls = []
    page.on(
        "request", lambda r: calls.append(r.url.split("/api/v1/")[-1]) if "/api/v1/images/" in r.url else None
    )
    path, seg = clicked(page, *CLICKS[2])
    region = regions(page)[-1]
    assert path == "browser" and region["kind"] == "polygon" and region["label"] == "sign"
    assert [c.split("/")[-2] for c in calls] == ["polygonize"], calls
    served = client_for(task["annotator"]).post(
        f"/api/v1/images/{task['image'].id}/segment/",
        {"points": seg["clicks"], "point_labels": seg["labels"]},
        format="json",
    )
    theirs = rle_to_mask(served.json()["rle"]).astype(bool)
    # the project's bound (IoU >= 0.98 to the mask) on top of the two decoders' agreement (>= 0.99)
    assert iou(region_mask(region), theirs) >= 0.97
    page.keyboard.press("n")

    # the toggle is kept in this browser: a reload keeps "browser"
    page.reload()
    page.wait_for_selector("body[data-ready=task]")
    assert page.locator("[data-decode-mode]").input_value() == "browser"
    assert not page.errors, page.errors


def js_round(ms: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round takes halves to the even neighbour)."""
    return math.floor(ms + 0.5)


def test_auto_times_both_paths_then_keeps_the_faster(browser, live_server, task):
    page = open_segment_tool(browser, live_server)
    assert page.locator("[data-decode-mode]").input_value() == "auto"
    paths = []
    for i in range(12):
        if page.evaluate("window.labelhub.decoder.auto?.choice || ''"):
            break
        path, _ = clicked(page, *CLICKS[i % len(CLICKS)])
        paths.append(path)
        page.keyboard.press("n")  # each region a new chain: auto may pick another path for it
    auto = page.evaluate("window.labelhub.decoder.auto")
    assert auto and auto["choice"] in ("browser", "server"), (paths, page.inner_text("[data-decode-status]"))
    assert paths.count("browser") >= 3 and paths.count("server") >= 3, paths
    samples = page.evaluate("window.labelhub.decoder.samples")
    medians = {k: sorted(v)[(len(v) - 1) // 2] for k, v in samples.items()}
    assert auto["choice"] == min(medians, key=medians.get)
    assert auto["browserMs"] == js_round(medians["browser"])
    assert auto["serverMs"] == js_round(medians["server"])

    # the choice decodes the next click, and is kept for this browser session (sessionStorage)
    path, _ = clicked(page, *CLICKS[7])
    assert path == auto["choice"]
    assert f"auto chose {auto['choice']}" in page.inner_text("[data-decode-status]")
    kept = page.evaluate("JSON.parse(sessionStorage.getItem('lh.samDecodeAuto'))")
    assert kept == auto
    assert not page.errors, page.errors


def test_the_mask_under_the_resting_cursor_is_previewed_and_a_click_there_takes_it(
    browser, live_server, task
):
    """SAM's demo: with the browser decoding, the mask of a positive click at the resting pointer is shown
    before any click; clicking there makes that mask the region at once (the same prompt to the same
    decoder), and it is the server's mask for that click."""
    page = open_segment_tool(browser, live_server, "browser")
    page.evaluate("window.labelhub.decoder.load()")  # resolves once the decoder and the embedding are here
    wait_js(page, "window.labelhub.decoder.state === 'ready'")
    x, y = CLICKS[1]
    p = to_page(page, x, y)
    page.mouse.move(p["x"], p["y"])
    wait_js(page, "Number(document.body.dataset.previewDone || 0) >= 1")
    at = page.evaluate("window.labelhub.screen.tools.preview")
    assert at and abs(at["x"] - x) < 1 and abs(at["y"] - y) < 1, at
    assert page.evaluate("window.labelhub.view.previewLayer.getChildren().length") == 1  # drawn
    page.evaluate("window._previewMask = window.labelhub.screen.tools.preview.out.mask")
    assert regions(page) == []

    path, seg = clicked(page, x, y)  # no move in between: the pointer is where the preview was decoded
    assert path == "browser"
    assert page.evaluate("window.labelhub.decoder.last.path") == "preview"
    (region,) = regions(page)
    same = page.evaluate(
        """async () => {
            const { rleEncode } = await import('/static/app/rle.js');
            const r = window.labelhub.editor.regions[0];
            return rleEncode(window._previewMask, ...r.rle.size).counts === r.rle.counts;
        }"""
    )
    assert same  # the region is the previewed mask itself
    served = client_for(task["annotator"]).post(
        f"/api/v1/images/{task['image'].id}/segment/",
        {"points": seg["clicks"], "point_labels": seg["labels"]},
        format="json",
    )
    assert iou(region_mask(region), rle_to_mask(served.json()["rle"]).astype(bool)) >= 0.99
    assert (
        page.evaluate("window.labelhub.view.previewLayer.getChildren().length") == 0
    )  # cleared by the click

    # while a region's clicks go on, and with the toggle off, nothing is previewed
    done = int(page.evaluate("document.body.dataset.previewDone"))
    q = to_page(page, *CLICKS[4])
    page.mouse.move(q["x"], q["y"])
    page.wait_for_timeout(400)
    page.keyboard.press("n")
    page.locator("[data-sam-preview]").uncheck()
    page.locator(".canvas").focus()
    q = to_page(page, *CLICKS[5])
    page.mouse.move(q["x"], q["y"])
    page.wait_for_timeout(400)
    assert int(page.evaluate("document.body.dataset.previewDone")) == done
    assert page.evaluate("localStorage.getItem('lh.samPreview')") == "off"
    assert not page.errors, page.errors


def test_points_gather_while_ctrl_is_held_and_decode_together_on_release(browser, live_server, task):
    page = open_segment_tool(browser, live_server, "server")
    calls = []
    page.on("request", lambda r: calls.append(json.loads(r.post_data)) if "/segment/" in r.url else None)
    page.keyboard.down("Control")
    for x, y in CLICKS[:2]:
        p = to_page(page, x, y)
        page.mouse.click(p["x"], p["y"])
    q = to_page(page, *CLICKS[3])
    page.mouse.click(q["x"], q["y"], button="right")
    assert "3 point(s): release Ctrl" in page.inner_text("#live")
    page.wait_for_timeout(300)
    assert calls == [] and regions(page) == []  # nothing decoded while Ctrl is down
    done = int(page.evaluate("document.body.dataset.segmentDone || 0"))
    page.keyboard.up("Control")
    wait_js(page, f"Number(document.body.dataset.segmentDone || 0) > {done}")
    assert len(calls) == 1 and calls[0]["point_labels"] == [1, 1, 0]
    assert calls[0]["points"] == [
        list(c) for c in page.evaluate("window.labelhub.screen.tools.segment.clicks")
    ]
    assert len(regions(page)) == 1
    # a plain click goes on refining that region, with the previous mask
    path, seg = clicked(page, *CLICKS[4])
    assert len(calls) == 2 and calls[1]["point_labels"] == [1, 1, 0, 1] and "mask_input_id" in calls[1]
    assert len(regions(page)) == 1
    assert not page.errors, page.errors


@pytest.mark.parametrize("mode", ["browser", "server"])
def test_m_cycles_sams_three_masks_for_a_single_click(browser, live_server, task, mode):
    page = open_segment_tool(browser, live_server, mode)
    page.locator("[data-sam-preview]").uncheck()
    page.locator(".canvas").focus()
    api = client_for(task["annotator"])
    url = f"/api/v1/images/{task['image'].id}/segment/"
    path, seg = clicked(page, *CLICKS[1])
    assert path == mode
    served = [
        rle_to_mask(
            api.post(
                url, {"points": seg["clicks"], "point_labels": [1], "candidate": k}, format="json"
            ).json()["rle"]
        ).astype(bool)
        for k in range(3)
    ]
    seen = [region_mask(regions(page)[0])]
    for k in (1, 2, 0):
        done = int(page.evaluate("document.body.dataset.segmentDone"))
        page.keyboard.press("m")
        wait_js(page, f"Number(document.body.dataset.segmentDone) > {done}")
        assert page.evaluate("window.labelhub.screen.tools.segment.candidate") == k
        assert f"mask {k + 1} of 3" in page.inner_text("#live")
        (region,) = regions(page)
        seen.append(region_mask(region))
    for k, mine in zip((0, 1, 2, 0), seen, strict=True):
        assert iou(mine, served[k]) >= 0.97, k  # the server's candidate k (polygons: within the bound)
    assert iou(served[0], served[1]) < 0.97 or iou(served[1], served[2]) < 0.97  # really other masks
    # after a second click there is one mask: M says so and changes nothing
    clicked(page, *CLICKS[4])
    before = regions(page)
    page.keyboard.press("m")
    assert "only right after a single positive click" in page.inner_text("#live")
    assert regions(page) == before
    assert not page.errors, page.errors
