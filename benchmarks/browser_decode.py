"""SAM click decode in the browser (onnxruntime-web, WASM, ``--threads`` threads, headless Chromium) vs the
server's ``segment/`` round trip and the server's own ONNX decode, in the real app.

Runs the Django app in this process (SQLite and media in a temp ``LABELHUB_VAR_DIR``, tasks eager,
``LABELHUB_INTERACTIVE_DECODER=api``, ``LABELHUB_SAM_DECODER=onnx``: ONNX Runtime on one core, the
server's CPU choice) behind Django's live-server thread, with SAM ``--model`` built from seeded random
weights and a seeded fp16 embedding stored for one ``--size`` image (no image encoder runs: latency only,
the masks are meaningless). Then drives Debian's chromium through Playwright on the annotate screen:

* load: the first browser click of the page (decoder download + WASM session + embedding download and
  fp16 -> fp32), once per page and image;
* ``--clicks`` pairs of positive clicks with the segment tool, alternating the View panel's decode mode
  between browser and server (so both see the same load), each click a new region: click to mask drawn
  (mousedown to the animation frame showing it; Esc then drops the region) and click to mask in hand (browser: tensors + graph +
  upscale + RLE; server: the ``segment/`` round trip with polygons), plus the server's ``timing_ms.decode``
  (its ONNX decode + upscale, inside the request);
* hover preview: ``--clicks`` times the pointer moves to a new point and rests (preview on, browser mode):
  move to the preview drawn (the 50 ms rest + a decode), then a click there to the mask drawn (the
  previewed mask is taken, no decode);
* browser decode alone: ``--clicks`` calls of ``samdecode.js``'s ``decode()`` from the page (tensors,
  graph, upscale; no region, no draw).

Usage: ``nice python benchmarks/browser_decode.py --clicks 30 [--threads 2]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _sam_common import REPO, machine

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
    os.environ["LABELHUB_SAM_RANDOM_SEED"] = "0"
    os.environ["LABELHUB_SAM_MODEL"] = args.model
    os.environ["LABELHUB_SAM_DEVICE"] = "cpu"
    os.environ["LABELHUB_SAM_DECODER"] = args.server_decoder
    os.environ["LABELHUB_BROWSER_DECODE_THREADS"] = str(args.threads)
    os.environ["LABELHUB_APP_COEP"] = "" if args.threads == 1 else "credentialless"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API beside ORM calls
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _pct(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return (
        f"p50 {np.percentile(a, 50):7.1f}  p95 {np.percentile(a, 95):7.1f}  max {a.max():7.1f}  (n={len(a)})"
    )


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_b", help="SAM model type (the decoder is the same size for all)")
    ap.add_argument("--server-decoder", choices=("onnx", "torch"), default="onnx")
    ap.add_argument("--size", default="640x480", help="image WxH")
    ap.add_argument("--clicks", type=int, default=30)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="browser decoder threads (LABELHUB_BROWSER_DECODE_THREADS); 1 also turns the page's "
        "cross-origin isolation off (LABELHUB_APP_COEP=''), 0 is the app's default (the browser's cores, at most 4)",
    )
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    vendor = REPO / "labelhub/app/static/app/vendor/onnxruntime-web/ort.wasm.min.mjs"
    assert vendor.exists(), "run `make vendor` first"

    _configure(args, tempfile.mkdtemp(prefix="lh-browser-decode-"))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from PIL import Image as PILImage
    from playwright.sync_api import sync_playwright

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.predictions.backends import segmentation_backend
    from labelhub.predictions.embeddings import embedding_store
    from labelhub.projects.models import Project
    from workers.sam import Embedding
    from workers.sam.interface import input_size_for

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench", slug="bench")
    user = get_user_model().objects.create_user(username="bench", password="pw-bench")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    project = Project.objects.create(
        organization=org,
        name="Decode",
        created_by=user,
        label_schema=[{"name": "object", "kinds": ["polygon", "mask"]}],
    )
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    image = images_add(
        project=project,
        files=[IncomingFile(name="bench.png", data=buf.getvalue())],
        user=user,
        presegment=False,
    ).created[0]
    backend = segmentation_backend()
    data = rng.normal(0, 1, (256, 64, 64)).astype(np.float16)
    embedding_store(
        image=image,
        backend=backend,
        embedding=Embedding(
            backend.model_name,
            backend.checkpoint_sha256,
            (height, width),
            input_size_for((height, width)),
            data,
        ),
    )
    backend.onnx_decoder_path()  # exported once before the browser asks for it (not timed)

    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    print(f"machine: {machine()}")
    print(
        f"server: SAM {args.model} seeded random weights, decoder {args.server_decoder} (1 thread), image {width}x{height}"
    )
    print(f"load average at start: {_load()}")

    server_decode: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def on_response(response) -> None:
            if "/segment/" in response.url and response.status == 200:
                server_decode.append(float(json.loads(response.body())["timing_ms"]["decode"]))

        page.on("response", on_response)
        page.goto(f"{base}/app/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "pw-bench")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=queue]")
        page.evaluate("localStorage.setItem('lh.samDecode', 'browser')")
        # no hover preview: every timed click is decoded after its mousedown (a click where a preview
        # was shown takes that mask at once, which is no decode's cost)
        page.evaluate("localStorage.setItem('lh.samPreview', 'off')")
        page.goto(f"{base}/app/#/next/{project.id}/annotate")
        page.wait_for_selector("body[data-ready=task]", timeout=60000)
        isolated = page.evaluate("crossOriginIsolated")

        done = 0
        points = rng.uniform(0.1, 0.9, size=(2 * args.clicks + 1, 2)) * [width, height]

        def click(mode: str, xy) -> tuple[float, float, str]:
            nonlocal done
            page.evaluate("(m) => window.labelhub.decoder.setMode(m)", mode)
            pt = page.evaluate("([x, y]) => window.labelhub.view.toPage(x, y)", [float(xy[0]), float(xy[1])])
            page.mouse.click(pt["x"], pt["y"])
            done += 1
            page.wait_for_function(f"Number(document.body.dataset.segmentDone) >= {done}", timeout=600000)
            drawn = float(page.evaluate("document.body.dataset.segmentDrawnMs"))
            in_hand = float(page.evaluate("window.labelhub.decoder.last.ms"))
            path = page.evaluate("document.body.dataset.segmentDecoder")
            # Esc drops the region: the next click starts a new one, and the autosave never carries the
            # noise polygons of random weights (they grow past the annotation's vertex cap)
            page.keyboard.press("Escape")
            return drawn, in_hand, path

        page.keyboard.press("s")  # the segment tool: starts loading the browser decoder
        first, _, path = click("browser", points[0])
        assert path == "browser", path
        loads = page.evaluate(
            "performance.getEntriesByType('resource').filter((e) => /decoder\\.onnx|embedding|\\.wasm/.test(e.name))"
            ".map((e) => [e.name.split('/').slice(-2).join('/'), Math.round(e.duration), e.encodedBodySize])"
        )
        threads = page.evaluate("window.labelhub.decoder.threads()")
        print(
            f"browser: chromium {browser.version}, headless, onnxruntime-web WASM, {threads} thread(s), "
            f"cross-origin isolated: {isolated}"
        )
        print(f"first browser click of the page (loads the decoder and the embedding): {first:.0f} ms")
        for name, ms, size in loads:
            print(f"  fetched {name}: {ms} ms, {size / 2**20:.1f} MiB")

        drawn = {"browser": [], "server": []}
        in_hand = {"browser": [], "server": []}
        for i in range(args.clicks):
            for k, mode in enumerate(("browser", "server")):
                d, h, path = click(mode, points[1 + 2 * i + k])
                assert path == mode, (path, mode)
                drawn[mode].append(d)
                in_hand[mode].append(h)
        # hover preview on: rest the pointer, wait for its mask, click there (the mask is taken at once)
        page.evaluate("localStorage.setItem('lh.samPreview', 'on')")
        page.evaluate("window.labelhub.decoder.setMode('browser')")
        hover_ms: list[float] = []
        previewed: list[float] = []
        for xy in points[1 : 1 + args.clicks]:
            pt = page.evaluate("([x, y]) => window.labelhub.view.toPage(x, y)", [float(xy[0]), float(xy[1])])
            before = int(page.evaluate("Number(document.body.dataset.previewDone || 0)"))
            t0 = page.evaluate("performance.now()")
            page.mouse.move(pt["x"], pt["y"])
            page.wait_for_function(
                f"Number(document.body.dataset.previewDone || 0) > {before}", timeout=600000
            )
            hover_ms.append(float(page.evaluate("performance.now()")) - float(t0))
            page.mouse.down()
            page.mouse.up()
            done += 1
            page.wait_for_function(f"Number(document.body.dataset.segmentDone) >= {done}", timeout=600000)
            assert page.evaluate("window.labelhub.decoder.last.path") == "preview"
            previewed.append(float(page.evaluate("document.body.dataset.segmentDrawnMs")))
            page.keyboard.press("Escape")
        alone = page.evaluate(
            """async ([id, pts]) => {
                const m = await import('/static/app/samdecode.js');
                const out = [];
                for (const [x, y] of pts) out.push((await m.decode(id, {points: [[x, y]], point_labels: [1]})).ms);
                return out;
            }""",
            [image.id, points[1 : 1 + args.clicks].tolist()],
        )
        browser.close()

    print("click decode, ms:")
    print(f"  browser decode alone (tensors + WASM graph + upscale)  {_pct(alone)}")
    print(f"  browser: click -> mask in hand (+ RLE)                 {_pct(in_hand['browser'])}")
    print(f"  server:  click -> segment/ answer (round trip)         {_pct(in_hand['server'])}")
    print(
        f"  server-side decode inside segment/ ({args.server_decoder})            {_pct(server_decode[-args.clicks :])}"
    )
    print(f"  browser: click -> mask drawn                           {_pct(drawn['browser'])}")
    print(f"  server:  click -> mask drawn                           {_pct(drawn['server'])}")
    print("hover preview (browser decode while the pointer rests):")
    print(f"  pointer rests -> preview drawn (50 ms rest + decode)   {_pct(hover_ms)}")
    print(f"  click where the preview shows -> mask drawn            {_pct(previewed)}")
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
