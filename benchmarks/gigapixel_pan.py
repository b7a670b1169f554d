"""A gigapixel slide with 10,000 regions in the app, in real headless Chromium: the first view (task drawn,
then every tile in view drawn) and the frame time while panning.

Runs the real Django app in this process (its own SQLite DB and media in a temp ``LABELHUB_VAR_DIR``,
tasks eager) behind Django's live-server thread, imports the pyramidal TIFF that
``benchmarks/gigapixel.py`` writes (``--slide``, 10 GP by default) from a server folder, pre-labels it
with ``--regions`` AI polygons (16-vertex circles, radius 20-80 px, spread over the slide), then drives
Debian's chromium through Playwright:

* first view: navigation start -> task drawn (``readyAt``), and -> every tile of the fitted level in
  view loaded and drawn;
* panning: at three zooms (whole slide, 1/16, full resolution) the view is dragged with the middle
  button in 60 steps of 12 px; each frame's time is the interval between ``requestAnimationFrame``
  callbacks during the drag (16.7 ms at 60 Hz when drawing keeps up), and the draw alone is timed as
  the synchronous ``stage.draw()`` of 60 programmatic pans.

Usage: ``python benchmarks/gigapixel_pan.py [--slide var/bench-gigapixel/view-100000.tif] [--regions 10000]
[--loads 3] [--no-pan]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


# Resource Timing of the first view (ms since navigation start): the page, the app's modules, the API
# requests before the task is drawn, and the tiles.
BREAKDOWN_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const mods = res.filter((r) => r.name.includes("/static/app/") && /\\.m?js$/.test(new URL(r.name).pathname));
  const tiles = res.filter((r) => /\\/api\\/v1\\/images\\/\\d+\\/tiles\\//.test(r.name));
  const api = res.filter((r) => r.name.includes("/api/v1/") && !tiles.includes(r));
  return {
    html: nav.responseEnd,
    modules: mods.length,
    modulesEnd: Math.max(0, ...mods.map((r) => r.responseEnd)),
    main: performance.getEntriesByName("labelhub:main")[0]?.startTime ?? null,
    firstApi: Math.min(...api.map((r) => r.startTime)),
    apiCount: api.length,
    apiEnd: Math.max(0, ...api.map((r) => r.responseEnd)),
    firstTile: Math.min(...tiles.map((r) => r.startTime)),
  };
}"""
BREAKDOWN = [
    ("html", "page HTML received"),
    ("modules", "app modules loaded (count)"),
    ("modulesEnd", "last module received"),
    ("main", "main.js runs (the router)"),
    ("firstApi", "first API request sent"),
    ("apiCount", "API requests (count, tiles aside)"),
    ("apiEnd", "last API response received"),
    ("firstTile", "first tile requested"),
]


def pct(values) -> str:
    a = np.asarray(values, dtype=np.float64)
    return f"p50 {np.percentile(a, 50):6.1f}  p95 {np.percentile(a, 95):6.1f}  max {a.max():6.1f} ms (n={len(a)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, default=REPO / "var" / "bench-gigapixel" / "view-100000.tif")
    ap.add_argument("--regions", type=int, default=10_000)
    ap.add_argument("--loads", type=int, default=3, help="first views measured, after one that fills caches")
    ap.add_argument("--no-pan", action="store_true", help="the first view only")
    ap.add_argument("--waterfall", action="store_true", help="print the last first view's API requests")
    args = ap.parse_args()
    from _slide import slide_imported

    user, project, image = slide_imported(args.slide, prefix="lh-giga-", DJANGO_ALLOW_ASYNC_UNSAFE="true")
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from playwright.sync_api import sync_playwright

    from labelhub.labeling.annotations import annotation_prelabel

    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 17)[:-1]
    regions = []
    for i in range(args.regions):
        cx, cy = rng.uniform(100, image.width - 100), rng.uniform(100, image.height - 100)
        r = rng.uniform(20, 80)
        ring = [[round(cx + r * np.cos(a), 2), round(cy + r * np.sin(a), 2)] for a in angles]
        regions.append(
            {
                "id": f"c{i}",
                "label": "cell",
                "kind": "polygon",
                "source": "ai",
                "score": 0.5,
                "polygons": [{"exterior": ring, "holes": []}],
            }
        )
    annotation_prelabel(task=image.task, regions=regions)

    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    base = f"http://127.0.0.1:{server.port}"
    print(
        f"slide {image.width}x{image.height} ({image.width * image.height / 1e9:.1f} GP), {len(regions)} regions"
    )
    print("uptime:", os.popen("uptime").read().strip())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        print(f"browser: chromium {browser.version}, headless, viewport 1280x800")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/app/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "pw-bench")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=queue]")
        firsts, tiles_in, parts = [], [], []
        for i in range(args.loads + 1):
            page.goto("about:blank")
            page.goto(f"{base}/app/#/next/{project.id}/annotate")
            page.wait_for_selector("body[data-ready=task]", timeout=120000)
            page.wait_for_function(
                """() => { const v = window.labelhub.view, t = v.pyramid; if (!t) return false;
                const keys = [...t.cache.keys()]; const lv = Math.max(...keys.map((k) => +k.split('/')[0]));
                return keys.filter((k) => k.startsWith(lv + '/')).every((k) => t.cache.get(k).ok); }""",
                timeout=120000,
            )
            if i == 0:
                continue  # the first load fills the caches (tiles are immutable: a labeler's next visit)
            firsts.append(float(page.evaluate("document.body.dataset.readyAt")))
            tiles_in.append(page.evaluate("performance.now()"))
            parts.append(page.evaluate(BREAKDOWN_JS))
        print(f"first view, navigation -> task drawn      {pct(firsts)}")
        print(f"first view, navigation -> tiles in view   {pct(tiles_in)} (browser-cached tiles)")
        print("  where the first view goes (median, ms since navigation start):")
        for key, text in BREAKDOWN:
            values = [float(b[key]) if b[key] is not None else float("nan") for b in parts]
            print(f"    {text:40s} {np.median(values):7.0f}")
        if args.waterfall:
            print("  the last first view's API requests (start -> end, ms since navigation start):")
            for name, start, end, size in page.evaluate(
                """() => performance.getEntriesByType("resource").filter((r) => r.name.includes("/api/v1/")
                && !r.name.includes("/tiles/")).map((r) => [r.name.split("/api/v1/")[1], r.startTime, r.responseEnd,
                r.encodedBodySize])"""
            ):
                print(f"    {start:7.0f} -> {end:7.0f}  {size / 1e3:8.1f} kB  {name}")
        if args.no_pan:
            browser.close()
            return

        page.evaluate(
            """() => { window.__frames = []; let last = null;
            const tick = (t) => { if (last !== null && window.__rec) window.__frames.push(t - last); last = t;
            requestAnimationFrame(tick); }; requestAnimationFrame(tick); }"""
        )
        for zoom, label in ((None, "whole slide"), (1 / 16, "1/16"), (1.0, "full resolution")):
            if zoom is not None:
                page.evaluate(
                    """(s) => { const v = window.labelhub.view; const cx = v.width / 2, cy = v.height / 2;
                    v.stage.scale({x: s, y: s});
                    v.stage.position({x: v.stage.width() / 2 - cx * s, y: v.stage.height() / 2 - cy * s});
                    v.redraw(); }""",
                    zoom,
                )
                page.wait_for_timeout(1500)  # tiles of the new level
            in_view = page.evaluate(
                """() => { const v = window.labelhub.view, b = v.pyramid.visible();
                return v.state.regions.filter((r) => { const e = r.polygons[0].exterior[0];
                return e[0] > b.x0 - 80 && e[0] < b.x1 + 80 && e[1] > b.y0 - 80 && e[1] < b.y1 + 80; }).length; }"""
            )
            page.mouse.move(640, 400)
            page.evaluate("window.__frames = []; window.__rec = true")
            page.mouse.down(button="middle")
            for k in range(60):
                page.mouse.move(640 + 12 * (k % 30), 400 + 6 * (k % 30))
            page.mouse.up(button="middle")
            page.wait_for_timeout(100)
            frames = page.evaluate("window.__rec = false; window.__frames")
            draws = page.evaluate(
                """() => { const v = window.labelhub.view, out = [];
                for (let k = 0; k < 60; k++) { const p = v.stage.position();
                v.stage.position({x: p.x + (k < 30 ? 7 : -7), y: p.y + 3});
                const t = performance.now(); v.stage.draw(); out.push(performance.now() - t); }
                return out; }"""
            )
            print(f"pan at {label} ({in_view} regions in view): frame interval {pct(frames)}")
            print(f"    synchronous redraw (tiles + regions + handles)  {pct(draws)}")
        browser.close()


if __name__ == "__main__":
    main()
