"""Benchmark for issue 6: dataset export of a generated project, seconds and peak memory.

Usage (from the repo root)::

    .venv/bin/python benchmarks/export.py --images 10000 --polygons 200000 [--formats coco,yolo]
    .venv/bin/python benchmarks/export.py --images 1000 --polygons 20000   # memory must stay flat

Database: ``--database-url`` (default ``$DATABASE_URL``, else a fresh SQLite file in a temp folder).
For PostgreSQL the database named in the URL is created when missing and migrated; the generated
project (named after its size) is reused by later runs.

Data: one organization, a project with 5 classes, N images (640x480 rows sharing one tiny stored PNG,
inserted with bulk_create), one accepted task and one annotation revision per image holding
polygons/N polygons of 12 to 24 vertices (star-shaped, valid) with random classes.

Each format is exported by a fresh child process (``--run``) that takes the snapshot (export_create)
and writes the archive (export_run, images not included) and reports:
* seconds for the snapshot and for the archive, annotations (regions) written per second;
* peak RSS of the child process (Linux ``VmHWM``, else ``ru_maxrss``: the whole process,
  Python + Django + numpy + pycocotools included) and its RSS just before the export started
  (psutil), so "growth" = peak - baseline is what the export itself added.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
os.environ.setdefault("LABELHUB_TASKS_EAGER", "1")


def setup(database_url: str, media: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["LABELHUB_MEDIA_ROOT"] = media
    if database_url.startswith("postgres"):
        import psycopg

        base, name = database_url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                conn.execute(f'create database "{name}"')
    import django

    django.setup()


def star(rng: random.Random, cx: float, cy: float, r: float, n: int) -> list[list[float]]:
    """A star-shaped polygon around (cx, cy): valid (simple) by construction."""
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    return [
        [
            round(cx + rng.uniform(0.5, 1.0) * r * math.cos(a), 2),
            round(cy + rng.uniform(0.5, 1.0) * r * math.sin(a), 2),
        ]
        for a in angles
    ]


def generate(images: int, polygons: int, seed: int = 0) -> int:
    """Create (or reuse) the project; return its id."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.db import transaction

    from labelhub.accounts.models import Organization
    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, AnnotationRevision, Task, TaskStatus
    from labelhub.projects.models import Project
    from tests.helpers import image_bytes

    org, _ = Organization.objects.get_or_create(slug="bench-export", defaults={"name": "Bench export"})
    name = f"export-{images}-{polygons}"
    project = Project.objects.filter(organization=org, name=name).first()
    if project is not None and Image.objects.filter(project=project).count() == images:
        return project.id
    if project is not None:
        project.delete()
    classes = ["car", "person", "tree", "road", "sign"]
    project = Project.objects.create(
        organization=org,
        name=name,
        label_schema=[{"name": c, "color": "#888888", "kinds": ["polygon", "mask"]} for c in classes],
    )
    stored = default_storage.save("bench/shared.png", ContentFile(image_bytes(8, 8)))
    rng = random.Random(seed)
    per_image = polygons // images
    extra = polygons - per_image * images
    w, h = 640, 480
    batch = 1000
    t0 = time.perf_counter()
    for start in range(0, images, batch):
        n = min(batch, images - start)
        with transaction.atomic():
            imgs = Image.objects.bulk_create(
                [
                    Image(
                        project=project,
                        file=stored,
                        original_name=f"frame_{start + i:06d}.png",
                        width=w,
                        height=h,
                        format="PNG",
                        sha256=f"{project.id:08x}{start + i:056x}",
                        size_bytes=100,
                    )  # fmt: skip
                    for i in range(n)
                ]
            )
            tasks = Task.objects.bulk_create(
                [Task(project=project, image=img, stage="final-qa", status=TaskStatus.DONE) for img in imgs]
            )
            anns = Annotation.objects.bulk_create([Annotation(task=t, current_revision=1) for t in tasks])
            revisions = []
            for k, ann in enumerate(anns):
                count = per_image + (1 if start + k < extra else 0)
                regions = []
                for j in range(count):
                    cx, cy, r = rng.uniform(40, w - 40), rng.uniform(40, h - 40), rng.uniform(8, 38)
                    regions.append({
                        "id": f"r{j}", "label": rng.choice(classes), "kind": "polygon",
                        "polygons": [{"exterior": star(rng, cx, cy, r, rng.randint(12, 24)), "holes": []}],
                        "source": "human", "prediction_id": None, "score": None,
                    })  # fmt: skip
                revisions.append(
                    AnnotationRevision(
                        annotation=ann, number=1, regions=regions, stage="final-qa", summary={}
                    )
                )
            AnnotationRevision.objects.bulk_create(revisions)
    print(
        f"generated {images} images / {polygons} polygons in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return project.id


def peak_rss() -> int:
    """Peak RSS of this process in bytes: Linux's VmHWM (this process image only), else ru_maxrss.
    ru_maxrss alone is wrong for a child started by fork/vfork + exec: Linux carries the parent's
    high-water mark across exec, so a parent that generated the data large sets every child's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_one(project_id: int, fmt: str, split: bool) -> dict:
    import psutil

    from labelhub.datasets import exports
    from labelhub.projects.models import Project

    # Time the snapshot and the archive apart: the archive is written here, not by the on-commit enqueue.
    exports.enqueue_on_commit = lambda name, *args: None
    project = Project.objects.get(id=project_id)
    baseline = psutil.Process().memory_info().rss
    peak_before = peak_rss()
    t0 = time.perf_counter()
    export = exports.export_create(
        project=project,
        format=fmt,
        split={"train": 0.8, "val": 0.1, "test": 0.1, "seed": 1} if split else None,
    )
    t1 = time.perf_counter()
    export = exports.export_run(export_id=export.id)
    t2 = time.perf_counter()
    assert export.status == "done", export.error
    peak = peak_rss()
    out = {
        "format": fmt,
        "images": export.progress_done,
        "annotations": export.annotations_count,
        "snapshot_s": round(t1 - t0, 2),
        "archive_s": round(t2 - t1, 2),
        "annotations_per_s": round(export.annotations_count / (t2 - t0)),
        "zip_mb": round(export.size_bytes / 2**20, 1),
        "baseline_rss_mb": round(baseline / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "growth_mb": round((peak - baseline) / 2**20, 1),
        "peak_before_mb": round(peak_before / 2**20, 1),
    }
    export.file.delete(save=False)
    export.delete()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--polygons", type=int, default=200_000)
    parser.add_argument("--formats", default="coco,yolo,labelhub,voc,masks,coco_panoptic,cvat,label_studio")
    parser.add_argument("--split", action="store_true", help="80/10/10 seeded split (one more pass)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--media", default="")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # child: project id
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="labelhub-bench-export-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    media = args.media or os.path.join(tmp, "media")
    setup(database_url, media)
    if args.run:
        print(json.dumps(run_one(args.run, args.format, args.split)))
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    project_id = generate(args.images, args.polygons)
    engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print(
        f"# {args.images} images, {args.polygons} polygons, {engine}, split={'80/10/10' if args.split else 'none'}"
    )
    print(
        "| format | images | annotations | snapshot s | archive s | annotations/s | zip MB | RSS before MB | peak RSS MB | growth MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--run",
            str(project_id),
            "--format",
            fmt,
            "--database-url",
            database_url,
            "--media",
            media,
        ]
        if args.split:
            cmd.append("--split")
        r = json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        print(
            f"| {fmt} | {r['images']} | {r['annotations']} | {r['snapshot_s']} | {r['archive_s']} | {r['annotations_per_s']} "
            f"| {r['zip_mb']} | {r['baseline_rss_mb']} | {r['peak_rss_mb']} | {r['growth_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
