"""The browser app in real headless Chromium: first render of a task and click-to-mask-drawn latency.

Runs the real Django app in this process (its own SQLite DB and media in a temp ``LABELHUB_VAR_DIR``,
tasks eager, ``LABELHUB_INTERACTIVE_DECODER=api``) behind Django's live-server thread, creates an
organization, an annotator and a project with one real GrabCut image (AI regions pre-labelled from its
ground truth, so the first render draws polygons) and one large synthetic 6000x4000 JPEG, then drives
Debian's chromium through Playwright:

* first render: ``--renders`` fresh page loads of ``/app/#/next/{project}/annotate`` (claim with next-task,
  load task, project, annotation, comments and the image, draw): milliseconds from navigation start to
  the drawn task (``readyAt``) and of the task screen alone (``firstRenderMs``);
* click to mask drawn: ``--clicks`` positive Shift+clicks with the segment tool, each a new region, and
  ``--clicks`` plain clicks on the AI region, each a correction of it (its shape sent as ``mask_rle``),
  from the mousedown to the animation frame that shows the mask (the request to ``segment/`` included;
  autosave runs meanwhile as it does for a labeler).

Backends: ``--backend classical`` (no checkpoint) or ``--backend sam`` (SAM ``--model`` with seeded
random weights, ``LABELHUB_SAM_RANDOM_SEED=0``; its embedding is computed by a first click, reported
separately, and cached: the latency is real, the masks are meaningless and not reported).

Usage: ``python benchmarks/browser_app.py --backend classical``
       ``python benchmarks/browser_app.py --backend sam --model vit_b --clicks 20``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _sam_common import REPO, grabcut_pairs, machine

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _configure(args: argparse.Namespace, var_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    os.environ["LABELHUB_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}"
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT"):
        os.environ.pop(key, None)
    os.environ["LABELHUB_TASKS_EAGER"] = "1"
    os.environ["LABELHUB_INTERACTIVE_DECODER"] = "api"
    os.environ["LABELHUB_PRESEGMENT_ON_UPLOAD"] = "false"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API beside ORM calls
    if args.backend == "sam":
        os.environ["LABELHUB_SAM_RANDOM_SEED"] = "0"
        os.environ["LABELHUB_SAM_MODEL"] = args.model
        os.environ["LABELHUB_SAM_DEVICE"] = args.device
    else:
        os.environ.pop("LABELHUB_SAM_RANDOM_SEED", None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _pct(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return (
        f"p50 {np.percentile(a, 50):7.0f}  p95 {np.percentile(a, 95):7.0f}  max {a.max():7.0f}  (n={len(a)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("classical", "sam"), default="classical")
    ap.add_argument("--model", default="vit_b")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--renders", type=int, default=15)
    ap.add_argument("--clicks", type=int, default=20)
    args = ap.parse_args()
    pairs = grabcut_pairs()
    if not pairs:
        raise SystemExit("GrabCut data not found (set LABELHUB_SHARED_DATA or create ../shared/data)")
    stem, image_path, mask_path = pairs[0]
    assert (REPO / "labelhub/app/static/app/vendor/konva/index.js").exists(), "run `make vendor` first"

    _configure(args, tempfile.mkdtemp(prefix="lh-browser-"))
    import django

    django.setup()
    import cv2
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from PIL import Image as PILImage
    from playwright.sync_api import sync_playwright

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.labeling.annotations import annotation_prelabel
    from labelhub.projects.models import Project
    from workers.geometry import mask_to_polygons

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench", slug="bench")
    user = get_user_model().objects.create_user(username="bench", password="pw-bench")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)

    def project_with(name: str, data: bytes, file_name: str, regions) -> Project:
        project = Project.objects.create(
            organization=org,
            name=name,
            created_by=user,
            label_schema=[{"name": "object", "kinds": ["polygon", "mask"]}],
        )
        image = images_add(
            project=project, files=[IncomingFile(name=file_name, data=data)], user=user, presegment=False
        ).created[0]
        annotation_prelabel(task=image.task, regions=regions(image))
        return project

    gt = (cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) == 255).astype(np.uint8)
    polys = mask_to_polygons(gt)
    ai = [{"label": "object", "kind": "polygon", "source": "ai", "score": 0.9, "polygons": polys}]
    grabcut = project_with("GrabCut", image_path.read_bytes(), image_path.name, lambda image: ai)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, size=(400, 600, 3), dtype=np.uint8)
    big = cv2.resize(big, (6000, 4000), interpolation=cv2.INTER_LINEAR)
    buf = io.BytesIO()
    PILImage.fromarray(big).save(buf, format="JPEG", quality=85)
    square = [
        {
            "label": "object",
            "kind": "polygon",
            "source": "ai",
            "score": 0.5,
            "polygons": [{"exterior": [[1000, 1000], [5000, 1000], [5000, 3000], [1000, 3000]], "holes": []}],
        }
    ]
    large = project_with("Large", buf.getvalue(), "large.jpg", lambda image: square)

    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        print(f"browser: chromium {browser.version}, headless")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/app/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "pw-bench")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=queue]")

        for project, label in ((grabcut, f"GrabCut {stem}"), (large, "6000x4000 JPEG (downscaled view)")):
            nav, screen = [], []
            for i in range(args.renders + 1):
                page.goto("about:blank")
                page.goto(f"{base}/app/#/next/{project.id}/annotate")
                page.wait_for_selector("body[data-ready=task]", timeout=60000)
                if i == 0:
                    continue  # the first load fills the browser's caches
                nav.append(float(page.evaluate("document.body.dataset.readyAt")))
                screen.append(float(page.evaluate("document.body.dataset.firstRenderMs")))
            print(f"first render, {label}, ms:")
            print(f"  navigation start -> task drawn   {_pct(nav)}")
            print(f"  task screen (API calls + image)  {_pct(screen)}")

        page.goto("about:blank")
        page.goto(f"{base}/app/#/next/{grabcut.id}/annotate")
        page.wait_for_selector("body[data-ready=task]")
        page.keyboard.press("s")
        ys, xs = np.nonzero(gt)
        backend = (
            "classical"
            if args.backend == "classical"
            else f"SAM {args.model} (seeded random weights, cached embedding)"
        )
        done = 0
        # Two gestures: Shift+click (always a new region) and a plain click on the AI region, which
        # corrects it (its shape sent as the mask input; Esc then gives it its shape back, so every
        # correction starts from the AI's region).
        for gesture in ("new", "correct"):
            idx = rng.integers(0, len(xs), size=args.clicks + (gesture == "new"))
            drawn = []
            for n, i in enumerate(idx, start=1):
                pt = page.evaluate(
                    "([x, y]) => window.labelhub.view.toPage(x, y)", [float(xs[i]) + 0.5, float(ys[i]) + 0.5]
                )
                if gesture == "new":
                    page.keyboard.down("Shift")
                page.mouse.click(pt["x"], pt["y"])
                if gesture == "new":
                    page.keyboard.up("Shift")
                done += 1
                page.wait_for_function(f"document.body.dataset.segmentDone === '{done}'", timeout=900000)
                ms = float(page.evaluate("document.body.dataset.segmentDrawnMs"))
                if gesture == "new":
                    page.keyboard.press("n")  # finish: the next click starts a new region
                    page.keyboard.press("Delete")  # and leave the AI region on top for the corrections
                else:
                    page.keyboard.press("Escape")  # the AI region's shape back
                    page.keyboard.press("Escape")  # deselect
                if gesture == "new" and n == 1:
                    print(f"first click (computes the embedding): {ms:.0f} ms")
                else:
                    drawn.append(ms)
            what = "new region (Shift+click)" if gesture == "new" else "correction of the AI region (click on it)"
            print(f"click to mask drawn, {what}, {backend}, ms:")
            print(f"  {_pct(drawn)}")
        state = page.locator("[data-save-state]").first.inner_text()
        print(f"save state after the clicks: {state}")
        browser.close()
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
