"""Project-model pre-labels of a gigapixel pyramid, tile by tile at full resolution (issue 29): memory
stays bounded while the whole slide goes through the network.

Reads the pyramidal TIFF as the worker does (`labelhub.images.pyramids.PyramidReader`, one window of a
tile plus its context at a time; the image's mean and deviation from its level of at most 2048 px) and
runs `workers.train.tiled.predict_regions_tiled` with a U-Net trained for a few seeded steps on GrabCut
photographs (its regions are not a quality figure: this measures memory and throughput). Prints the
process's RSS before, every 10% of the tiles (current and peak, VmHWM) and at the end, so the growth
is seen to level off rather than follow the pixels done.

Usage::

    .venv/bin/python benchmarks/gigapixel_prelabel.py --slide .pytest_cache/d/gigapixel-v2/slide.tif \\
        [--region X0,Y0,X1,Y1] [--tile 1024] [--overlap 64]

``--region`` runs on that full-resolution rectangle of the slide only (default: the whole slide). The
50,000 px test slide is written by `bin/test tests/labelhub/images/test_pyramids.py` (kept in pytest's
cache) and the 100,000 px one by `benchmarks/gigapixel.py`. Needs no database.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def memory() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", type=Path, default=REPO / ".pytest_cache" / "d" / "gigapixel-v2" / "slide.tif")
    ap.add_argument("--region", default="")
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("VIPS_WARNING", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    import django
    import torch

    django.setup()

    from labelhub.images.pyramids import PyramidReader, release_freed_memory
    from tests.workers.train.test_tiled import _grabcut
    from workers.train import TrainConfig, load_model, train_model
    from workers.train.inference import image_stats
    from workers.train.tiled import predict_regions_tiled

    torch.set_num_threads(args.threads)
    print("uptime:", os.popen("uptime").read().strip())
    print("date -u:", os.popen("date -u").read().strip())
    images, labels = _grabcut(4)
    config = TrainConfig(
        n_classes=2, epochs=2, steps_per_epoch=8, width=8, depth=3, crop=96, batch_size=4, lr=0.01, threads=1
    )
    model, _ = load_model(train_model(images, labels, config=config).weights)
    del images, labels
    import tifffile

    with tifffile.TiffFile(args.slide) as tif:
        page = tif.series[0].levels[0].keyframe
        width, height = int(page.imagewidth), int(page.imagelength)
    reader = PyramidReader(lambda: str(args.slide), width, height)
    rx0, ry0, rx1, ry1 = (int(v) for v in args.region.split(",")) if args.region else (0, 0, width, height)
    rss0, hwm0 = memory()
    print(
        f"slide {width}x{height} ({width * height / 1e9:.2f} GP); region {rx0},{ry0}-{rx1},{ry1} "
        f"({(rx1 - rx0) * (ry1 - ry0) / 1e9:.3f} GP); tile {args.tile}, overlap {args.overlap}, "
        f"U-Net width {config.width} depth {config.depth}, {args.threads} torch threads"
    )
    print(f"before: RSS {rss0:.0f} MiB, peak {hwm0:.0f} MiB (Python, torch, the model)")
    t0 = time.perf_counter()
    scale = max(1.0, max(width, height) / 2048)
    stats = image_stats(reader.pixels(0, 0, width, height, round(width / scale), round(height / scale)))
    release_freed_memory()
    rss, hwm = memory()
    print(
        f"stats {stats[0]:.1f} / {stats[1]:.1f} from the 2048 px level in {time.perf_counter() - t0:.1f} s: "
        f"RSS +{rss - rss0:.0f} MiB, peak +{hwm - hwm0:.0f} MiB"
    )
    marks: list[str] = []

    def read(x0, y0, x1, y1):
        return reader.pixels(rx0 + x0, ry0 + y0, rx0 + x1, ry0 + y1, x1 - x0, y1 - y0)

    def progress(done, total):
        release_freed_memory()  # as labelhub.learning.tiled does after each tile
        if done == total or done * 10 // total != (done - 1) * 10 // total:
            rss, hwm = memory()
            mp = done / total * (rx1 - rx0) * (ry1 - ry0) / 1e6
            marks.append(f"{done}/{total}")
            print(
                f"  {done:5d}/{total} tiles (~{mp:,.0f} MP) in {time.perf_counter() - t0:7.1f} s: "
                f"RSS +{rss - rss0:5.0f} MiB, peak +{hwm - hwm0:5.0f} MiB",
                flush=True,
            )

    regions = predict_regions_tiled(
        model,
        read,
        rx1 - rx0,
        ry1 - ry0,
        stats=stats,
        tile=args.tile,
        overlap=args.overlap,
        min_area=16,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    rss, hwm = memory()
    pixels = sum(r.area for r in regions)
    largest = max((r.area for r in regions), default=0)
    print(
        f"done: {len(regions)} regions ({pixels:,} px in all, largest {largest:,} px) in {seconds:.0f} s "
        f"({(rx1 - rx0) * (ry1 - ry0) / 1e6 / seconds:.2f} MP/s); RSS +{rss - rss0:.0f} MiB, "
        f"peak +{hwm - hwm0:.0f} MiB over the start"
    )
    # the whole image held once as RGB uint8 would be this much: the figure the tiling avoids
    print(
        f"(the region as one RGB array: {(rx1 - rx0) * (ry1 - ry0) * 3 / 2**20:,.0f} MiB; "
        f"its float32 probabilities for 2 classes: {(rx1 - rx0) * (ry1 - ry0) * 8 / 2**20:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
