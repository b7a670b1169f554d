"""Benchmark for issue 29 (gigapixel images): pyramid build time per gigapixel on one core, the first view
of a 10-gigapixel image, and a click's latency at full zoom against a 2,000 px image's.

Usage (from the repo root)::

    .venv/bin/python benchmarks/gigapixel.py [--work var/bench-gigapixel] [--build-side 16384]
        [--view-side 100000] [--clicks 20]

Sources are written lazily by libvips (not timed) and kept in --work between runs:
  * build: a --build-side square JPEG of real texture (the GrabCut photographs tiled); `pyramid_build`
    (the cpu queue's job) runs in a child process with VIPS_CONCURRENCY=1, so its time is one core's.
  * view: a --view-side square pyramidal TIFF (10 GP by default: textured blocks on a background, as a
    slide). A fresh child process opens the pyramid (as the first tile request of an API process does)
    and reads the Deep Zoom tiles of a 1920x1080 view of the whole image: the descriptor's data and
    every tile in view, JPEG-encoded as the tile endpoint sends them.
  * click: the classical backend (the CPU default) answering a click at full zoom on the 10 GP image
    (a 1024 px view window read from the pyramid, embedded, decoded, polygons in full-resolution
    coordinates) against a click on a 2000x1500 JPEG (decoded whole, embedded, decoded, polygons), each
    timed cold (first click: window or image read and embedded) and warm (embedding cached).
Needs no database.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LABELHUB_SHARED_DATA") or REPO.parent / "shared" / "data")


def texture_block():
    import pyvips

    files = sorted((DATA / "grabcut" / "images").glob("*.jpg"))[:4]
    crops = [pyvips.Image.new_from_file(str(p)).crop(0, 0, 256, 256) for p in files]
    return pyvips.Image.arrayjoin(crops, across=2)


def make_build_source(path: Path, side: int) -> None:
    block = texture_block()
    big = block.replicate(side // 512 + 1, side // 512 + 1).crop(0, 0, side, side)
    big.jpegsave(str(path), Q=90)


def make_view_source(path: Path, side: int) -> None:
    import pyvips

    block = texture_block().replicate(8, 8)  # 4096 px
    big = pyvips.Image.black(side, side).new_from_image([240, 240, 240]).copy(interpretation="srgb")
    step = side // 5
    for i in range(5):
        big = big.insert(block, min(i * step, side - 4096), min(i * step, side - 4096))
    big.tiffsave(
        str(path),
        tile=True,
        pyramid=True,
        compression="jpeg",
        Q=85,
        tile_width=512,
        tile_height=512,
        bigtiff=True,
    )


BUILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {repo!r})
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    import django
    django.setup()
    from labelhub.images.pyramids import pyramid_build
    t = time.perf_counter(); c = time.process_time()
    pyramid_build({src!r}, {out!r}, tile=256)
    print(json.dumps({{"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}}))
    """
)

VIEW = textwrap.dedent(
    """
    import json, math, sys, time
    t0 = time.perf_counter()
    sys.path.insert(0, {repo!r})
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    import django
    django.setup()
    import pyvips, tifffile
    from labelhub.images.pyramids import PyramidReader, dzi_levels
    t1 = time.perf_counter()
    reader = PyramidReader(lambda: {src!r}, {side}, {side})
    top = dzi_levels({side}, {side})
    view_w, view_h = 1920, 1080
    level = top
    while level > 0 and math.ceil({side} / 2 ** (top - level)) > min(view_w, view_h):
        level -= 1
    n = math.ceil(math.ceil({side} / 2 ** (top - level)) / 256)
    sizes = [len(reader.tile_jpeg(level, c, r, 256)) for r in range(n) for c in range(n)]
    t2 = time.perf_counter()
    print(json.dumps({{"import_s": t1 - t0, "view_s": t2 - t1, "level": level, "tiles": len(sizes),
                      "bytes": sum(sizes)}}))
    """
)

CLICK = textwrap.dedent(
    """
    import io, json, os, statistics, sys, time
    sys.path.insert(0, {repo!r})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    import django
    django.setup()
    import numpy as np
    from labelhub.images.decoding import image_to_rgb_array
    from labelhub.images.pyramids import PyramidReader
    from workers.geometry import mask_to_simplified_polygons
    from workers.sam.classical import ClassicalBackend

    backend = ClassicalBackend()
    def polygons(mask):
        return mask_to_simplified_polygons(mask, method="bounded", min_iou=0.98, max_distance=2.0)

    def giga(x, y, reader=None, cached=None):
        t = time.perf_counter()
        reader = reader or PyramidReader(lambda: {src!r}, {side}, {side})
        wx, wy = x - 512, y - 512
        if cached is None:
            pixels, scale = reader.window(wx, wy, 1024, 1024, max_side=1024)
            cached = backend.embed([pixels])[0]
        r = backend.predict(cached, points=[[x - wx, y - wy]], point_labels=[1])
        polys = [[[wx + px, wy + py] for px, py in p["exterior"]] for p in polygons(r.mask)]
        return time.perf_counter() - t, reader, cached, polys

    def small(data, x, y, cached=None):
        t = time.perf_counter()
        if cached is None:
            cached = backend.embed([image_to_rgb_array(data)])[0]
        r = backend.predict(cached, points=[[x, y]], point_labels=[1])
        polygons(r.mask)
        return time.perf_counter() - t, cached

    data = open({jpeg!r}, "rb").read()
    cx = {center}
    cold_g, reader, emb_g, polys = giga(cx + 100, cx + 100)
    cold_s, emb_s = small(data, 1000, 700)
    warm_g = [giga(cx + 100 + i, cx + 100, reader, emb_g)[0] for i in range({clicks})]
    warm_s = [small(data, 1000 + i, 700, emb_s)[0] for i in range({clicks})]
    xs = [x for p in polys for x, _ in p]
    print(json.dumps({{
        "giga_cold_ms": cold_g * 1000, "small_cold_ms": cold_s * 1000,
        "giga_warm_p50_ms": statistics.median(warm_g) * 1000, "small_warm_p50_ms": statistics.median(warm_s) * 1000,
        "giga_polygon_x_range": [min(xs), max(xs)] if xs else None,
    }}))
    """
)


def child(code: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "VIPS_WARNING": "0", **(env or {})},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench-gigapixel")
    parser.add_argument("--build-side", type=int, default=16384)
    parser.add_argument("--view-side", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--skip", default="", help="comma-separated: build,view,click")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    print("uptime:", os.popen("uptime").read().strip())

    if "build" not in skip:
        src = args.work / f"build-{args.build_side}.jpg"
        if not src.exists():
            t = time.perf_counter()
            make_build_source(src, args.build_side)
            print(f"build source written in {time.perf_counter() - t:.1f} s")
        out = args.work / "built.tif"
        result = child(BUILD.format(repo=str(REPO), src=str(src), out=str(out)), {"VIPS_CONCURRENCY": "1"})
        gp = args.build_side**2 / 1e9
        print(
            f"pyramid build, one core: {gp:.3f} GP in {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU "
            f"-> {result['wall_s'] / gp:.1f} s per gigapixel (wall), {result['cpu_s'] / gp:.1f} s CPU per GP; "
            f"{out.stat().st_size / 1e6:.1f} MB"
        )
        out.unlink()

    view_src = args.work / f"view-{args.view_side}.tif"
    if ("view" not in skip or "click" not in skip) and not view_src.exists():
        t = time.perf_counter()
        partial = view_src.with_suffix(".partial.tif")
        make_view_source(partial, args.view_side)
        partial.rename(view_src)
        print(f"view source ({args.view_side**2 / 1e9:.1f} GP) written in {time.perf_counter() - t:.1f} s")
    if "view" not in skip:
        for run in range(3):
            r = child(VIEW.format(repo=str(REPO), src=str(view_src), side=args.view_side))
            print(
                f"first view of {args.view_side**2 / 1e9:.1f} GP (fresh process {run + 1}): level {r['level']}, "
                f"{r['tiles']} tiles, {r['bytes'] / 1024:.0f} KiB in {r['view_s'] * 1000:.0f} ms "
                f"(+ {r['import_s'] * 1000:.0f} ms importing pyvips/tifffile, once per process)"
            )
    if "click" not in skip:
        jpeg = args.work / "photo-2000.jpg"
        if not jpeg.exists():
            texture_block().replicate(4, 3).crop(0, 0, 2000, 1500).jpegsave(str(jpeg), Q=90)
        center = (args.view_side // 5) * 2 + 1000
        r = child(
            CLICK.format(
                repo=str(REPO),
                src=str(view_src),
                side=args.view_side,
                jpeg=str(jpeg),
                center=center,
                clicks=args.clicks,
            )
        )
        print(
            f"click, classical backend: full zoom on {args.view_side**2 / 1e9:.1f} GP cold {r['giga_cold_ms']:.0f} ms, "
            f"warm p50 {r['giga_warm_p50_ms']:.1f} ms; 2000x1500 image cold {r['small_cold_ms']:.0f} ms, "
            f"warm p50 {r['small_warm_p50_ms']:.1f} ms; ratio cold {r['giga_cold_ms'] / r['small_cold_ms']:.2f}, "
            f"warm {r['giga_warm_p50_ms'] / r['small_warm_p50_ms']:.2f}; polygon x range {r['giga_polygon_x_range']}"
        )


if __name__ == "__main__":
    main()
