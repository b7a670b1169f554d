"""Server-side latency of one interactive click once the image's embedding is cached.

Runs the real Django code path in this process (its own SQLite DB and media in a temp
``LABELHUB_VAR_DIR``, local-memory cache, tasks eager, ``LABELHUB_INTERACTIVE_DECODER=api``):
creates an organization, an owner and a project through the ORM, uploads one real GrabCut image
with ``labelhub.images.services.images_add``, makes the embedding once (first click, reported
separately), then times ``--clicks`` single positive clicks

* through ``labelhub.predictions.interactive.segment_prompt`` (service call), and
* through DRF's ``APIClient`` ``POST /api/v1/images/{id}/segment/`` (token auth, URL routing,
  permission check, serializer, JSON rendering included),

reporting median / p90 of the endpoint's own ``timing_ms`` parts (``embedding`` = cache fetch,
``decode`` = ``backend.predict``, ``polygons`` = RLE + polygon simplification), of their sum, of
the wall time around the call and (service call) of the process CPU time it used (all threads:
what a click costs when no other process competes for the cores).

Backends: ``--backend classical`` (no checkpoint) or ``--backend sam`` (SAM ``--model`` with
seeded random weights, ``LABELHUB_SAM_RANDOM_SEED=0``: the speed is real, the masks meaningless).

Usage: ``python benchmarks/interactive_latency.py --backend classical --clicks 30``
       ``python benchmarks/interactive_latency.py --backend sam --model vit_b --clicks 30``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sam_common import REPO, grabcut_pairs, machine


def _configure(args: argparse.Namespace, var_dir: str) -> None:
    """Environment for ``labelhub.settings``; must run before ``django.setup()``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
    os.environ["LABELHUB_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}"
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT"):
        os.environ.pop(key, None)
    os.environ["LABELHUB_TASKS_EAGER"] = "1"
    os.environ["LABELHUB_INTERACTIVE_DECODER"] = "api"
    if args.backend == "sam":
        os.environ["LABELHUB_SAM_RANDOM_SEED"] = "0"
        os.environ["LABELHUB_SAM_MODEL"] = args.model
        os.environ["LABELHUB_SAM_DEVICE"] = args.device
    else:
        os.environ.pop("LABELHUB_SAM_RANDOM_SEED", None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def _stats(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return f"median {np.median(a):8.2f}  p90 {np.percentile(a, 90):8.2f}"


def _report(name: str, rows: list[dict]) -> None:
    print(f"{name} ({len(rows)} clicks), ms:")
    for part in ("embedding", "decode", "polygons", "server_total", "wall", "process_cpu"):
        vals = [r[part] for r in rows if part in r]
        if vals:
            print(f"  {part:13s} {_stats(vals)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("classical", "sam"), default="classical")
    ap.add_argument("--model", default="vit_b", help="SAM model type (with --backend sam)")
    ap.add_argument("--device", default="cpu", help="SAM device (with --backend sam)")
    ap.add_argument("--clicks", type=int, default=30)
    ap.add_argument("--image", default="", help="GrabCut image stem (default: the first one)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (SAM)")
    args = ap.parse_args()
    pairs = grabcut_pairs()
    if not pairs:
        raise SystemExit("GrabCut data not found (set LABELHUB_SHARED_DATA or create ../shared/data)")
    stem, image_path, mask_path = next((p for p in pairs if p[0] == args.image), pairs[0])

    var_dir = tempfile.mkdtemp(prefix="lh-latency-")
    _configure(args, var_dir)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.backend == "sam":
        import torch

        torch.set_num_threads(args.threads)

    import cv2
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from labelhub.accounts.auth import token_issue
    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.predictions.interactive import segment_prompt
    from labelhub.predictions.services import segmentation_backend
    from labelhub.projects.models import Project

    org = Organization.objects.create(name="Bench", slug="bench")
    user = get_user_model().objects.create_user(username="bench-owner", password="pw-bench-owner")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    project = Project.objects.create(organization=org, name="Latency", created_by=user)
    upload = images_add(
        project=project,
        files=[IncomingFile(name=image_path.name, data=image_path.read_bytes())],
        user=user,
        presegment=False,
    )
    image = upload.created[0]

    # clicks: seeded random points inside the object (ground truth 255), like a labeler's first click
    gt = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) == 255
    ys, xs = np.nonzero(gt)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(xs), size=2 * args.clicks + 1)
    points = [[float(xs[i]) + 0.5, float(ys[i]) + 0.5] for i in idx]

    t = time.perf_counter()
    backend = segmentation_backend()
    load_s = time.perf_counter() - t
    print(f"machine: {machine()}")
    print(
        f"backend: {backend.model_name} ({backend.checkpoint_sha256}); image {stem} {image.width}x{image.height}"
    )
    if args.backend == "sam":
        print(f"torch threads {torch.get_num_threads()}; model build {load_s:.1f} s (seeded random weights)")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    t = time.perf_counter()
    first = segment_prompt(image=image, prompt={"points": [points[0]], "point_labels": [1]})
    print(
        f"first click (embedding {first['embedding']}): {1000 * (time.perf_counter() - t):.0f} ms "
        f"{first['timing_ms']}"
    )

    service_rows = []
    for pt in points[1 : 1 + args.clicks]:
        t, c = time.perf_counter(), time.process_time()
        out = segment_prompt(image=image, prompt={"points": [pt], "point_labels": [1]})
        wall = 1000 * (time.perf_counter() - t)
        cpu = 1000 * (time.process_time() - c)
        assert out["embedding"] == "process", out["embedding"]  # cached: no encoder call
        row = dict(out["timing_ms"])
        row["server_total"] = sum(out["timing_ms"].values())
        row["wall"] = wall
        row["process_cpu"] = cpu
        service_rows.append(row)

    client = APIClient()
    _, token_key = token_issue(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    url = f"/api/v1/images/{image.id}/segment/"
    api_rows = []
    for pt in points[1 + args.clicks :]:
        t = time.perf_counter()
        resp = client.post(url, {"points": [pt], "point_labels": [1]}, format="json")
        wall = 1000 * (time.perf_counter() - t)
        assert resp.status_code == 200, (resp.status_code, resp.content[:300])
        body = resp.json()
        assert body["embedding"] == "process", body["embedding"]
        row = dict(body["timing_ms"])
        row["server_total"] = sum(body["timing_ms"].values())
        row["wall"] = wall
        api_rows.append(row)

    _report("segment_prompt() service call", service_rows)
    _report("POST /api/v1/images/{id}/segment/ via APIClient (wall = whole request)", api_rows)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
