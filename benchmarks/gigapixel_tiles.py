"""The server's side of the first view of a gigapixel image (issue 29): what the API does between the
task screen's requests and the last tile of the fitted view, through Django's full request path
(middleware, session authentication, visibility checks, the tile view) with the test client, no HTTP.

Imports the pyramidal TIFF that ``benchmarks/gigapixel.py`` writes (10 GP by default) into a temporary
SQLite database, logs a user in, then times, for the tile readers before -> after a change
(``PyramidReader.LEVEL_SLACK_PX`` 0 = only a stored level at least as fine as the tile; 1 = also one
short of it by the rounding of its size), alternating A B B A ... in one process after a first view
not counted (the process's first requests):

* cold: the process's pyramid readers dropped (as in a fresh API process) then the image row, the
  DZI descriptor and every tile of the fitted view (the Deep Zoom level the app draws for a
  ``--view`` canvas, all its tiles: the whole image is in view);
* warm: the same requests again (reader open, pages cached);
* revalidation: the tiles with ``If-None-Match`` (a browser whose cache holds them; 304).

Usage: ``python benchmarks/gigapixel_tiles.py [--slide var/bench-gigapixel/view-100000.tif] [--view 1000x700]``
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, default=REPO / "var" / "bench-gigapixel" / "view-100000.tif")
    ap.add_argument("--view", default="1000x700", help="the canvas the image is fitted into, CSS px")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    from _slide import slide_imported

    user, project, image = slide_imported(args.slide, prefix="lh-tiles-", VIPS_WARNING="0")
    from django.test import Client

    from labelhub.images import pyramids

    client = Client()
    client.force_login(user)
    cw, ch = (int(v) for v in args.view.split("x"))
    top = pyramids.dzi_levels(image.width, image.height)
    scale = min(cw / image.width, ch / image.height)
    level = max(0, min(top, top + math.ceil(math.log2(scale))))  # as tiles/pyramid.js picks it
    lw, lh = (math.ceil(s / 2 ** (top - level)) for s in (image.width, image.height))
    tile = 256
    urls = [
        f"/api/v1/images/{image.id}/tiles/{level}/{c}_{r}.jpg"
        for r in range(math.ceil(lh / tile))
        for c in range(math.ceil(lw / tile))
    ]
    levels = pyramids.pyramid_reader(image).levels
    print("uptime:", os.popen("uptime").read().strip())
    print("date -u:", os.popen("date -u").read().strip())
    print(
        f"slide {image.width}x{image.height} ({image.width * image.height / 1e9:.1f} GP), stored levels "
        f"{[lv.width for lv in levels]}; view {args.view}: Deep Zoom level {level} ({lw}x{lh}), {len(urls)} tiles"
    )

    def first_view() -> tuple[tuple[float, float], tuple[float, float], list[str]]:
        """((wall, CPU) of the image row and DZI, (wall, CPU) of those and every tile, the ETags); CPU:
        this process's, all threads (libvips decodes in its own), steadier than wall time on a loaded box."""
        t, c = time.perf_counter(), time.process_time()
        assert client.get(f"/api/v1/images/{image.id}/").status_code == 200
        assert client.get(f"/api/v1/images/{image.id}/tiles/").status_code == 200
        meta = (time.perf_counter() - t, time.process_time() - c)
        etags = []
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            etags.append(response["ETag"])
        return meta, (time.perf_counter() - t, time.process_time() - c), etags

    first_view()  # the process's first requests (URL resolver, serializers, connections): not counted
    results: dict[float, dict[str, list[float]]] = {0.0: {}, 1.0: {}}
    for k in range(args.rounds):
        for slack in (0.0, 1.0) if k % 2 == 0 else (1.0, 0.0):  # A B, then B A
            pyramids.PyramidReader.LEVEL_SLACK_PX = slack
            row = results[slack]
            with pyramids._READERS_LOCK:
                pyramids._READERS.clear()
            meta, total, etags = first_view()
            row.setdefault("cold_meta", []).append(meta)
            row.setdefault("cold", []).append(total)
            meta, total, etags = first_view()
            row.setdefault("warm", []).append(total)
            t, c = time.perf_counter(), time.process_time()
            for url, etag in zip(urls, etags, strict=True):
                assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
            row.setdefault("revalidate", []).append((time.perf_counter() - t, time.process_time() - c))

    def med(values, i):
        return statistics.median(v[i] for v in values) * 1000

    for key, name in (
        ("cold_meta", "cold: image row + DZI (reader opened by neither)"),
        ("cold", f"cold: image row + DZI + {len(urls)} tiles (fresh reader)"),
        ("warm", f"warm: image row + DZI + {len(urls)} tiles"),
        ("revalidate", f"{len(urls)} tiles revalidated (304)"),
    ):
        before, after = results[0.0][key], results[1.0][key]
        print(
            f"{name:52s} wall {med(before, 0):6.1f} -> {med(after, 0):6.1f} ms ({med(after, 0) / med(before, 0):.2f}x); "
            f"CPU {med(before, 1):6.1f} -> {med(after, 1):6.1f} ms ({med(after, 1) / med(before, 1):.2f}x)"
        )
    print("uptime:", os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
