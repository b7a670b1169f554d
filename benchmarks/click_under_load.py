"""A click while a 200-image pre-segmentation runs: p95 with the separate `interactive` queue vs idle.

Real parts: its own ``redis-server`` (broker + result backend), a PostgreSQL database of its own
(``--database``, migrated here), two real Celery worker processes on the classical backend (no
checkpoint: SAM on these CPUs would spend minutes per image): ``-Q gpu --pool solo`` (pre-segmentation)
and ``-Q interactive --pool threads`` (clicks). The clicks go through
``labelhub.predictions.interactive.interactive_answer`` with ``LABELHUB_INTERACTIVE_DECODER=worker``,
exactly as the segment endpoint sends them, so each one is published to Redis, decoded by the
interactive worker from the cached embedding and answered through the result backend.

Phases: ``--clicks`` clicks idle; then ``--images`` images queued for pre-segmentation on the `gpu`
queue and ``--clicks`` clicks while the gpu worker works through them; then (the old behaviour)
``--old-clicks`` clicks sent to the `gpu` queue instead, behind the backlog (waited for up to
``--old-timeout`` seconds). Load average is printed
beside every figure; the two workers share this machine's cores with the clicks.

Usage: ``.venv/bin/python benchmarks/click_under_load.py --database postgres://postgres@127.0.0.1:5432/lh_sam_bench``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _sam_common import REPO, machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _image_bytes(seed: int, w: int, h: int) -> bytes:
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = rng.integers(10, 40, (h, w, 3)).astype(np.uint8)
    for _ in range(3):
        cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, rng.uniform(0.1, 0.25) * min(w, h)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(80, 255, 3)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes()


def _pct(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.1f} ms  p95 {np.percentile(a, 95):7.1f} ms  max {a.max():7.1f} ms (n={len(a)})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True, help="postgres://... (created if missing, then migrated)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--clicks", type=int, default=40)
    ap.add_argument("--old-clicks", type=int, default=1)
    ap.add_argument("--old-timeout", type=float, default=60.0)
    ap.add_argument(
        "--nice-batch", type=int, default=0, help="nice level of the batch worker (one shared host)"
    )
    ap.add_argument("--size", default="320x240", help="pre-segmented images, WxH")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    port = _free_port()
    var_dir = tempfile.mkdtemp(prefix="lh-click-load-")
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "labelhub.settings",
        "DATABASE_URL": args.database,
        "REDIS_URL": f"redis://127.0.0.1:{port}/1",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/2",
        "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{port}/3",
        "LABELHUB_TASKS_EAGER": "0",
        "LABELHUB_VAR_DIR": var_dir,
        "LABELHUB_MEDIA_ROOT": str(Path(var_dir) / "media"),
        "LABELHUB_SAM_CHECKPOINT": "",
        "LABELHUB_SAM_RANDOM_SEED": "",
        "LABELHUB_PRESEGMENT_ON_UPLOAD": "0",
        "LABELHUB_INTERACTIVE_DECODER": "worker",
        "LABELHUB_INTERACTIVE_TIMEOUT": "120",
    }
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    try:
        _create_database(args.database)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        for queue, pool in (("gpu", "solo"), ("interactive", "threads")):
            log = open(Path(var_dir) / f"{queue}.log", "wb")  # noqa: SIM115 - lives as long as the worker
            workers.append(
                subprocess.Popen(
                    (["nice", "-n", str(args.nice_batch)] if queue == "gpu" and args.nice_batch else [])
                    + [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "labelhub",
                        "worker",
                        "-Q",
                        queue,
                        "--pool",
                        pool,
                        "--concurrency",
                        "2",
                        "--without-heartbeat",
                        "--without-gossip",
                        "--without-mingle",
                        "-n",
                        f"bench-{queue}@%h",
                        "-l",
                        "WARNING",
                    ],
                    cwd=REPO,
                    env={**os.environ},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
        _run(args, w, h, var_dir)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis_proc.terminate()


def _create_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _run(args: argparse.Namespace, w: int, h: int, var_dir: str) -> None:
    from celery.exceptions import TimeoutError as CeleryTimeout
    from django.contrib.auth import get_user_model

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.predictions.interactive import interactive_answer
    from labelhub.predictions.models import Prediction, PredictionStatus
    from labelhub.predictions.services import presegment_enqueue
    from labelhub.predictions.tasks import interactive_segment
    from labelhub.projects.models import Project

    slug = f"bench-{os.getpid()}"
    org = Organization.objects.create(name=slug, slug=slug)
    user = get_user_model().objects.create_user(username=slug, password=slug)
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    project = Project.objects.create(organization=org, name="Click under load", created_by=user)
    files = [IncomingFile(name=f"i{i}.png", data=_image_bytes(i, w, h)) for i in range(args.images + 1)]
    created = images_add(
        project=project, files=files, user=user, presegment=False, max_files=len(files)
    ).created
    target, batch = created[0], created[1:]
    rng = np.random.default_rng(0)

    def click() -> float:
        pt = [float(rng.uniform(0.3, 0.7) * w), float(rng.uniform(0.3, 0.7) * h)]
        t = time.perf_counter()
        interactive_answer(image=target, prompt={"points": [pt], "point_labels": [1]})
        return (time.perf_counter() - t) * 1000

    print(f"machine: {machine()}")
    print(
        f"backend: classical-grabcut; {args.images} images {w}x{h} to pre-segment; clicks on a {w}x{h} image"
    )
    click()  # the interactive worker's first click caches the embedding
    load0 = os.getloadavg()[0]
    idle = [click() for _ in range(args.clicks)]
    print(f"idle:                       {_pct(idle)}  load {load0:.2f}-{os.getloadavg()[0]:.2f}")

    ids = [i.id for i in batch]
    presegment_enqueue(image_ids=ids, force=True)  # on_commit: autocommit runs it now
    t0 = time.perf_counter()
    busy: list[float] = []
    load1 = os.getloadavg()[0]

    def done() -> int:
        return Prediction.objects.filter(image_id__in=ids, status=PredictionStatus.OK).count()

    while len(busy) < args.clicks and done() < len(ids):
        busy.append(click())
    print(
        f"during pre-segmentation:    {_pct(busy)}  load {load1:.2f}-{os.getloadavg()[0]:.2f} "
        f"({done()}/{len(ids)} images done when the clicks ended)"
    )
    print(f"p95 ratio busy / idle: {np.percentile(busy, 95) / np.percentile(idle, 95):.2f} (target <= 2)")

    old = []
    for _ in range(args.old_clicks):
        if done() >= len(ids):
            break
        t = time.perf_counter()
        result = interactive_segment.apply_async(
            args=[target.id, {"points": [[w * 0.5, h * 0.5]], "point_labels": [1]}], queue="gpu"
        )
        try:
            result.get(timeout=args.old_timeout)
            old.append(f"{(time.perf_counter() - t) * 1000:.0f} ms")
        except CeleryTimeout:
            old.append(f"no answer within {args.old_timeout:.0f} s")
    if old:
        print(f"old routing (the click on the gpu queue, behind the backlog): {', '.join(old)}")
    print(
        f"{done()}/{len(ids)} pre-segmented after {time.perf_counter() - t0:.1f} s (not waiting for the rest)"
    )


if __name__ == "__main__":
    main()
