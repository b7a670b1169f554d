"""Benchmark for issue 12: pre-segmentation ("everything" mode, the classical backend) of one huge image,
before and after the LABELHUB_PRESEGMENT_MAX_SIDE bound.

Usage (from the repo root)::

    .venv/bin/python benchmarks/huge_image.py [--side 8000] [--format png|jpeg] [--max-side 2048]
        [--modes full,bounded] [--timeout 600]

Each mode runs in a fresh process (so peak RSS is its own, `ru_maxrss`) on the same synthetic image
(a dark background with a bright disc, as small as the audit's 202 KB PNG): `full` is the path before
the bound (decode at full size, the backend's embed and automatic on it, polygons and RLE from the
full-size masks: `region_from_mask`), `bounded` is `_presegment_downscaled`'s path (the bounded
decode, embed and automatic on the copy, polygons scaled back). Printed per mode: wall time, peak RSS,
the array the backend got, the regions. Needs no database (the project is an unsaved default one).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    import django
    django.setup()
    from labelhub.images.decoding import image_to_rgb_array, image_to_rgb_array_bounded
    from labelhub.predictions.services import region_from_mask
    from labelhub.projects.models import Project
    from workers.sam.classical import ClassicalBackend

    path, mode, max_side = sys.argv[1], sys.argv[2], int(sys.argv[3])
    project = Project(name="bench")
    backend = ClassicalBackend()
    data = open(path, "rb").read()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "full":
        pixels, scale = image_to_rgb_array(data), None
    else:
        pixels, scale = image_to_rgb_array_bounded(data, max_side=max_side)
    shape = list(pixels.shape)
    (embedding,) = backend.embed([pixels])
    del pixels
    masks = backend.automatic(embedding)
    regions = [
        r for m in masks
        if (r := region_from_mask(mask=m.mask, project=project, label="thing", score=m.score,
                                  prediction_id=0, scale=scale)) is not None
    ]
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "wall_s": round(wall, 2), "peak_rss_mb": peak // 1024,
                      "rss_growth_mb": (peak - base) // 1024, "backend_array": shape,
                      "regions": len(regions)}))
    """
)


def synthetic(side: int, fmt: str) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (side, side), (20, 25, 30))
    r = side // 4
    ImageDraw.Draw(img).ellipse(
        (side // 2 - r, side // 2 - r, side // 2 + r, side // 2 + r), fill=(220, 60, 60)
    )
    buf = io.BytesIO()
    img.save(buf, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {"optimize": True}))
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--format", choices=["png", "jpeg"], default="png")
    parser.add_argument("--max-side", type=int, default=2048)
    parser.add_argument("--modes", default="full,bounded")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    data = synthetic(args.side, args.format)
    print(f"{args.side}x{args.side} {args.format}, {len(data) // 1024} KB; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"big.{args.format}"
        path.write_bytes(data)
        for mode in args.modes.split(","):
            try:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(path), mode, str(args.max_side)],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=True,
                )
                print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1])))
            except subprocess.TimeoutExpired:
                print(json.dumps({"mode": mode, "timeout_s": args.timeout}))
            except subprocess.CalledProcessError as exc:
                print(json.dumps({"mode": mode, "error": exc.stderr.strip().splitlines()[-1:]}))


if __name__ == "__main__":
    main()
