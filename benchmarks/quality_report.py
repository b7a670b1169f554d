"""Benchmark for issue 27: the metrics API and the quality report of a 10,000-task project, seconds per
answer and the memory the answering process grows by.

Usage (from the repo root)::

    .venv/bin/python benchmarks/quality_report.py --tasks 10000 \
        --database-url postgres://postgres@127.0.0.1:5432/bench_quality

The database named in the URL is created when missing and migrated; the generated project (named after
its size) is reused by later runs.

Data, inserted with bulk_create: one organization with a manager and 20 annotators, a project with 5
classes and the default three-stage pipeline, N images of 640x480 (rows only), N tasks done, each with
two revisions (a pre-label of 6 AI polygons, no author; the accepted revision by its annotator, one
region deleted, one moved, one added), its timeline (claimed, submitted, accepted in review and in
final-qa, with work and active seconds), and its quality samples as the actions would have written
them: a review sample and a pre-label sample per task, and a gold sample (with its GoldScore) for 10%
of them. The samples' figures are computed by the real functions (labelhub/qa/samples.py) on 50
distinct generated annotations and reused in turn.

A fresh child process (``--run``) then answers ``GET projects/{id}/metrics/`` and
``GET projects/{id}/quality/`` through Django's test client, three times each, and reports seconds per
answer and its RSS before the first call and after the last (psutil), with the peak (VmHWM). The
project's cached figures (labelhub/qa/cache.py) are invalidated first, without the warm-up job: each
answer's first call is cold (what the job itself costs), the next ones read the cache. ``--run ID`` alone runs that child (e.g. an older checkout's copy of this
script on the same database, for a before/after ratio in one run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
os.environ.setdefault("LABELHUB_TASKS_EAGER", "1")
os.environ.setdefault("LABELHUB_PRESEGMENT_ON_UPLOAD", "false")

W, H = 640, 480
CLASSES = ["car", "person", "tree", "road", "sign"]


def setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    if database_url.startswith("postgres"):
        import psycopg

        base, name = database_url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                conn.execute(f'create database "{name}"')
    import django

    django.setup()


def star(rng: random.Random, cx: float, cy: float, r: float, n: int = 14) -> list[list[float]]:
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    return [
        [
            round(min(W, max(0, cx + rng.uniform(0.5, 1.0) * r * math.cos(a))), 2),
            round(min(H, max(0, cy + rng.uniform(0.5, 1.0) * r * math.sin(a))), 2),
        ]
        for a in angles
    ]


def annotation_pair(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """A pre-label of 6 AI regions and what was accepted: one deleted, one moved, one added."""
    pre = []
    for i in range(6):
        cx, cy = rng.uniform(80, W - 80), rng.uniform(80, H - 80)
        pre.append(
            {
                "id": f"p{i}",
                "label": rng.choice(CLASSES),
                "kind": "polygon",
                "polygons": [{"exterior": star(rng, cx, cy, rng.uniform(20, 60)), "holes": []}],
                "source": "ai",
                "prediction_id": None,
                "score": 0.9,
            }
        )
    final = [dict(r) for r in pre[1:]]
    moved = final[0]["polygons"][0]["exterior"]
    final[0] = {**final[0], "polygons": [{"exterior": [[x + 3, y] for x, y in moved], "holes": []}]}
    final.append(
        {
            "id": "h0",
            "label": rng.choice(CLASSES),
            "kind": "polygon",
            "polygons": [{"exterior": star(rng, 300, 240, 40), "holes": []}],
            "source": "human",
        }
    )
    return pre, final


def generate(n: int, seed: int = 0) -> int:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.models import Image
    from labelhub.labeling.models import (
        Annotation,
        AnnotationRevision,
        EventKind,
        Task,
        TaskEvent,
        TaskStatus,
    )
    from labelhub.projects.models import Project
    from labelhub.qa.models import GoldScore, QualitySample, SampleKind
    from labelhub.qa.quality import all_correct, region_errors
    from labelhub.qa.samples import ai_assist_counts
    from labelhub.qa.segmentation import compare, perfect

    org, _ = Organization.objects.get_or_create(slug="bench-quality", defaults={"name": "Bench quality"})
    User = get_user_model()
    manager, _ = User.objects.get_or_create(username="bench-quality-manager")
    Membership.objects.get_or_create(organization=org, user=manager, defaults={"role": Role.MANAGER})
    name = f"quality-{n}"
    project = Project.objects.filter(organization=org, name=name).first()
    if project is not None and Task.objects.filter(project=project).count() == n:
        return project.id
    if project is not None:
        project.delete()
    project = Project.objects.create(
        organization=org,
        name=name,
        label_schema=[{"name": c, "color": "#888888", "kinds": ["polygon", "mask"]} for c in CLASSES],
    )
    annotators = []
    for i in range(20):
        user, _ = User.objects.get_or_create(username=f"bench-quality-a{i}")
        Membership.objects.get_or_create(organization=org, user=user, defaults={"role": Role.ANNOTATOR})
        annotators.append(user)
    reviewer, _ = User.objects.get_or_create(username="bench-quality-r")
    Membership.objects.get_or_create(organization=org, user=reviewer, defaults={"role": Role.REVIEWER})

    rng = random.Random(seed)
    templates = []
    t0 = time.perf_counter()
    for _ in range(50):
        pre, final = annotation_pair(rng)
        fixed = rng.random() < 0.3
        review = region_errors(final[:-1], final, height=H, width=W) if fixed else all_correct(final)
        templates.append(
            {
                "pre": pre,
                "final": final,
                "prelabel": (
                    region_errors(pre, final, height=H, width=W),
                    compare(pre, final, classes=CLASSES, height=H, width=W),
                ),
                "review": (
                    review,
                    compare(final[:-1], final, classes=CLASSES, height=H, width=W)
                    if fixed
                    else perfect(final),
                    fixed,
                ),
                "gold": (
                    region_errors(final, pre, height=H, width=W),
                    compare(final, pre, classes=CLASSES, height=H, width=W),
                ),
                "ai": ai_assist_counts(pre, final, height=H, width=W),
            }
        )
    print(f"templates: {time.perf_counter() - t0:.1f} s", flush=True)
    now = timezone.now()
    batch = 1000
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        m = min(batch, n - start)
        with transaction.atomic():
            images = Image.objects.bulk_create(
                [
                    Image(
                        project=project,
                        file="bench/shared.png",
                        original_name=f"f{start + i:06d}.png",
                        width=W,
                        height=H,
                        format="PNG",
                        sha256=f"{project.id:08x}{start + i:056x}",
                        size_bytes=100,
                    )
                    for i in range(m)
                ]
            )
            picks = [templates[(start + i) % len(templates)] for i in range(m)]
            who = [annotators[(start + i) % len(annotators)] for i in range(m)]
            gold = [(start + i) % 10 == 0 for i in range(m)]
            tasks = Task.objects.bulk_create(
                [
                    Task(
                        project=project,
                        image=img,
                        stage="done",
                        status=TaskStatus.DONE,
                        last_annotator=u,
                        is_gold=g,
                        gold_regions=t["pre"] if g else [],
                    )
                    for img, u, g, t in zip(images, who, gold, picks, strict=True)
                ]
            )
            annotations = Annotation.objects.bulk_create(
                [Annotation(task=t, current_revision=2) for t in tasks]
            )
            revisions = []
            for a, t, u in zip(annotations, picks, who, strict=True):
                revisions.append(
                    AnnotationRevision(annotation=a, number=1, regions=t["pre"], stage="annotate")
                )
                revisions.append(
                    AnnotationRevision(annotation=a, number=2, regions=t["final"], author=u, stage="annotate")
                )
            AnnotationRevision.objects.bulk_create(revisions)
            events, samples, scores = [], [], []
            for i, (task, t, u, g) in enumerate(zip(tasks, picks, who, gold, strict=True)):
                at = now - timedelta(minutes=n - start - i)
                work = {"work_seconds": 40.0, "active_seconds": 30.0}
                for kind, frm, to, actor, rev in (
                    (EventKind.CLAIMED, "annotate", "annotate", u, 1),
                    (EventKind.SUBMITTED, "annotate", "review", u, 2),
                    (EventKind.ACCEPTED, "review", "final-qa", reviewer, 2),
                    (EventKind.ACCEPTED, "final-qa", "done", manager, 2),
                ):
                    events.append(
                        TaskEvent(
                            task=task,
                            kind=kind,
                            from_stage=frm,
                            to_stage=to,
                            actor=actor,
                            revision=rev,
                            data=work if kind != EventKind.CLAIMED else {},
                            created_at=at,
                        )
                    )
                review, review_scores, fixed = t["review"]
                samples.append(
                    _sample(
                        QualitySample,
                        project,
                        task,
                        u,
                        SampleKind.REVIEW,
                        review,
                        review_scores,
                        {"fixed": fixed, "reference_revision": 2},
                    )
                )
                pj, ps = t["prelabel"]
                samples.append(
                    _sample(
                        QualitySample,
                        project,
                        task,
                        u,
                        SampleKind.PRELABEL,
                        pj,
                        ps,
                        {"model": "sam-vit_h", "ai_assist": t["ai"]},
                    )
                )
                if g:
                    gj, gs = t["gold"]
                    samples.append(
                        _sample(
                            QualitySample,
                            project,
                            task,
                            u,
                            SampleKind.GOLD,
                            gj,
                            gs,
                            {"matches": gj["matches"]},
                        )
                    )
                    scores.append(
                        GoldScore(task=task, user=u, revision=2, score=gj["correct"] / max(1, gj["units"]))
                    )
            TaskEvent.objects.bulk_create(events)
            QualitySample.objects.bulk_create(samples)
            GoldScore.objects.bulk_create(scores)
        print(f"  {start + m}/{n} tasks ({time.perf_counter() - t0:.0f} s)", flush=True)
    return project.id


def _sample(model, project, task, user, kind, judged, scores, data):
    return model(
        project=project,
        task=task,
        user=user,
        kind=kind,
        revision=2,
        units=judged["units"],
        correct=judged["correct"],
        errors=judged["errors"],
        per_class=judged["per_class"],
        scores=scores,
        data=data,
    )


def rss() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    import psutil

    current = psutil.Process().memory_info().rss / 2**20
    peak = current
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return current, peak


def run(project_id: int, repeats: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-quality-manager"))
    client.get("/api/v1/projects/").json()  # warm the URL conf, the serializers, the connection
    try:  # the first call of each answer is a cold one: the per-project cache starts empty
        from labelhub.qa.cache import samples_changed

        samples_changed(project_id, warm=False)
    except ImportError:  # the code before the cache (a run of an older checkout, for the ratio)
        pass
    before, _ = rss()
    out: dict = {"rss_before_mb": round(before, 1)}
    for name, url in (
        ("metrics", f"/api/v1/projects/{project_id}/metrics/"),
        ("quality", f"/api/v1/projects/{project_id}/quality/"),
    ):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            answer = client.get(url)
            assert answer.status_code == 200, answer.content[:300]
            answer.json()
            times.append(time.perf_counter() - t0)
        out[name] = {"seconds": [round(t, 3) for t in times], "bytes": len(answer.content)}
    after, peak = rss()
    out.update(rss_after_mb=round(after, 1), rss_peak_mb=round(peak, 1), growth_mb=round(after - before, 1))
    out["peak_growth_mb"] = round(peak - before, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url postgres://... is needed (the figures are PostgreSQL's)")
    setup(args.database_url)
    if args.run:
        print(json.dumps(run(args.run, args.repeats)))
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    project_id = generate(args.tasks)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--run",
            str(project_id),
            "--repeats",
            str(args.repeats),
            "--database-url",
            args.database_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps({"tasks": args.tasks, "load": os.getloadavg(), **result}, indent=2))


if __name__ == "__main__":
    main()
