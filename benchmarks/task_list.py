"""The manager's task list with 100,000 tasks in real headless Chromium, on PostgreSQL.

Creates a database of its own (``lh_bench_tasklist_<pid>`` on ``--pg``), migrates it, and bulk-inserts
two projects' images, tasks and annotations (``--small``, 1,000, and ``--tasks``, 100,000, measured
alternately in the same run, so the ratio shows what the size costs on this shared machine) (stages and statuses spread over the pipeline,
1 % gold, 5 % reserved for an annotator, 1 % with an open comment). Django's live-server thread serves
the app; Debian's chromium (Playwright) signs in as the manager and measures:

* first page: ``--loads`` fresh navigations to ``/app/#/tasks/{project}``: ms from navigation start to
  the animation frame that shows the 50 rows (``tasksDrawnAt``), and of that the screen alone (the
  project and the first page fetched together, then drawn: ``tasksDrawnMs``); the rest is loading the
  app's modules;
* a filter change: ms from the request the filter starts to the frame with the new rows
  (``tasksDrawnMs``), cycling through stage, status, gold, open comments and assignee filters;
* ``--cold``: every load in a new browser context, its HTTP cache empty (a first visit);
* where the first load goes (``--breakdown``, from the browser's Resource Timing entries of each load):
  the page's HTML received, the app's modules (count, fetched from the server, revalidated with a 304,
  the last one received), the first API request sent (the app's code running) and the API requests'
  own time;
* the API alone (the same process, no browser): first page, a filtered page, page 1,000, and the
  capped count beside a full COUNT(*) of the project's tasks.

The database is dropped at the end.

Usage: ``python benchmarks/task_list.py --tasks 100000``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from _sam_common import REPO, machine

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
FILTERS = [
    ("Stage", "review"),
    ("Stage", ""),
    ("Status", "in_progress"),
    ("Status", ""),
    ("Gold", "true"),
    ("Gold", ""),
    ("Open comments", "true"),
    ("Open comments", ""),
    ("Assignee", "none"),
    ("Assignee", ""),
]


def _pct(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    return f"p50 {np.percentile(a, 50):6.0f}  p95 {np.percentile(a, 95):6.0f}  max {a.max():6.0f} ms (n={len(a)})"


# Resource Timing of the page just loaded: what the app's loading is made of (ms since navigation start).
BREAKDOWN_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const mods = res.filter((r) => r.name.includes("/static/app/") && /\\.m?js$/.test(new URL(r.name).pathname));
  const api = res.filter((r) => r.name.includes("/api/v1/"));
  return {
    html: nav.responseEnd,
    modules: mods.length,
    fetched: mods.filter((r) => r.transferSize > 0).length,
    revalidated: mods.filter((r) => r.responseStatus === 304).length,
    modulesEnd: Math.max(0, ...mods.map((r) => r.responseEnd)),
    main: performance.getEntriesByName("labelhub:main")[0]?.startTime ?? NaN,
    firstApi: Math.min(...api.map((r) => r.startTime)),
    apiMs: Math.max(0, ...api.map((r) => r.duration)),
    apiEnd: Math.max(0, ...api.map((r) => r.responseEnd)),
  };
}"""
BREAKDOWN = [
    ("html", "page HTML received"),
    ("modules", "app modules loaded (count)"),
    ("fetched", "  of them fetched from the server"),
    ("revalidated", "  of them revalidated (304)"),
    ("modulesEnd", "last module received"),
    ("main", "main.js runs (the router)"),
    ("firstApi", "first API request sent"),
    ("apiMs", "longest API request"),
    ("apiEnd", "last API response received"),
]


def _breakdown(label: str, loads: list[dict]) -> None:
    print(f"  breakdown, {label} (median of {len(loads)} loads, ms since navigation start):")
    for key, text in BREAKDOWN:
        print(
            f"    {text:36s} {np.median([float(b[key] if b[key] is not None else 'nan') for b in loads]):7.0f}"
        )


def team():
    """An organization with a manager and two annotators."""
    from django.contrib.auth import get_user_model

    from labelhub.accounts.models import Membership, Organization, Role

    users = get_user_model().objects
    org = Organization.objects.create(name="Bench", slug="bench")
    manager = users.create_user(username="bench", password="pw-bench")
    Membership.objects.create(organization=org, user=manager, role=Role.MANAGER)
    annotators = []
    for name in ("ann1", "ann2"):
        a = users.create_user(username=name, password="pw-" + name)
        Membership.objects.create(organization=org, user=a, role=Role.ANNOTATOR)
        annotators.append(a)
    return org, manager, annotators


def populate(org, manager, annotators, n: int, batch: int = 5000):
    """One project with `n` tasks, by bulk inserts."""
    from django.utils import timezone

    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, Comment, Task, TaskStatus
    from labelhub.projects.models import Project, ProjectMember

    project = Project.objects.create(
        organization=org,
        name=f"{n} tasks",
        created_by=manager,
        label_schema=[{"name": "object", "kinds": ["polygon"]}],
    )
    for a in annotators:
        ProjectMember.objects.create(project=project, user=a)
    # One real thumbnail shared by every image: the rows' <img> requests are served, as in a real project.
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from labelhub.images.decoding import thumbnail_jpeg
    from tests.helpers import image_bytes

    thumb = default_storage.save("bench/thumb.jpg", ContentFile(thumbnail_jpeg(image_bytes(640, 480))))
    rng = np.random.default_rng(0)
    stages = project.stage_names
    now = timezone.now()
    for start in range(0, n, batch):
        count = min(batch, n - start)
        images = Image.objects.bulk_create(
            [
                Image(
                    project=project, file=f"bench/{project.pk}-{i}.png", thumbnail=thumb, original_name=f"{i:06d}.png", width=640, height=480,
                    format="PNG", sha256=f"{project.pk:08d}{i:056d}", size_bytes=1,
                )
                for i in range(start, start + count)
            ]
        )  # fmt: skip
        rows = []
        for image in images:
            r = rng.random()
            stage = stages[0] if r < 0.6 else stages[1] if r < 0.8 else stages[2] if r < 0.9 else "done"
            status = TaskStatus.DONE if stage == "done" else TaskStatus.OPEN
            assignee = None
            if status == TaskStatus.OPEN and rng.random() < 0.05:
                assignee = annotators[int(rng.integers(2))]
            if status == TaskStatus.OPEN and rng.random() < 0.02:
                status, assignee = TaskStatus.IN_PROGRESS, annotators[int(rng.integers(2))]
            rows.append(
                Task(
                    project=project, image=image, stage=stage, status=status, assignee=assignee,
                    lease_expires_at=now if status == TaskStatus.IN_PROGRESS else None, is_gold=rng.random() < 0.01,
                )
            )  # fmt: skip
        tasks = Task.objects.bulk_create(rows)
        Annotation.objects.bulk_create([Annotation(task=t) for t in tasks])
        Comment.objects.bulk_create(
            [Comment(task=t, author=manager, text="check the edge") for t in tasks if rng.random() < 0.01]
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project


def api_figures(project, manager, repeats: int = 20) -> None:
    from django.db import connection
    from rest_framework.test import APIClient

    from labelhub.labeling.models import Task

    client = APIClient()
    client.force_authenticate(manager)
    url = f"/api/v1/projects/{project.id}/tasks/"
    cases = [
        ("first page", {}),
        ("stage=review, sorted by -updated_at", {"stage": "review", "sort": "-updated_at"}),
        ("gold=true", {"gold": "true"}),
        ("open_comments=true", {"open_comments": "true"}),
        ("page 1000 (offset 49,950)", {"page": 1000}),
    ]
    print("API alone (GET projects/{id}/tasks/, 50 rows, in-process client):")
    for label, params in cases:
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            r = client.get(url, params)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, r.content
        print(f"  {label:40s} {_pct(times[1:])}")
    full, capped = [], []
    qs = Task.objects.filter(project=project)
    for _ in range(repeats):
        t0 = time.perf_counter()
        qs.count()
        full.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        qs.values("pk")[:10001].count()
        capped.append((time.perf_counter() - t0) * 1000)
    print(f"  COUNT(*) of the project's tasks          {_pct(full)}")
    print(f"  count capped at 10,001 rows              {_pct(capped)}")
    connection.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=1000, help="a second project's tasks, for comparison")
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--breakdown", action="store_true", help="print where the first loads' time goes")
    ap.add_argument("--cold", action="store_true", help="every load in a new browser context (empty cache)")
    ap.add_argument(
        "--pg",
        default=os.environ.get("LABELHUB_BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL without a database name (a database is created and dropped there)",
    )
    args = ap.parse_args()
    import psycopg
    from psycopg import sql

    db_name = f"lh_bench_tasklist_{os.getpid()}"
    var = tempfile.mkdtemp(prefix="lh-tasklist-")
    admin = f"{args.pg.rstrip('/')}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "labelhub.settings",
            "DATABASE_URL": f"{args.pg.rstrip('/')}/{db_name}",
            "LABELHUB_VAR_DIR": var,
            "LABELHUB_TASKS_EAGER": "1",
            "LABELHUB_PRESEGMENT_ON_UPLOAD": "false",
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
        }
    )
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT"):
        os.environ.pop(key, None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)))


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread, _StaticFilesHandler
    from playwright.sync_api import sync_playwright

    assert (REPO / "labelhub/app/static/app/vendor/preact/preact.module.js").exists(), (
        "run `make vendor` first"
    )
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    org, manager, annotators = team()
    small = populate(org, manager, annotators, args.small)
    project = populate(org, manager, annotators, args.tasks)
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"{args.small} + {args.tasks} tasks inserted in {time.perf_counter() - t0:.1f} s (images, tasks, annotations)"
    )
    for p in (small, project):
        print(f"--- project with {p.tasks.count()} tasks")
        api_figures(p, manager)

    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        print(f"browser: chromium {browser.version}, headless")
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base}/app/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "pw-bench")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=queue]")
        # The projects' loads alternate (and the queue screen, the app's lightest, between them), so
        # that all three see the same load on this shared machine.
        first = {small.id: [], project.id: []}
        screen = {small.id: [], project.id: []}
        queue = []
        parts: dict[str, list[dict]] = {"tasks": [], "queue": []}
        signed_in = page.context.storage_state()

        def fresh(page):
            """The page for the next load: the same tab (modules in the HTTP cache), or with --cold a new
            browser context (an empty cache: a first visit), signed in with the same session cookie."""
            if not args.cold:
                page.goto("about:blank")
                return page
            context = page.context
            page = browser.new_page(viewport={"width": 1280, "height": 800}, storage_state=signed_in)
            context.close()
            return page

        for i in range(args.loads + 1):
            for p in (small, project):
                page = fresh(page)
                page.goto(f"{base}/app/#/tasks/{p.id}")
                page.wait_for_function("document.body.dataset.tasksDrawn === '1'", timeout=60000)
                assert page.locator("tr[data-task]").count() == 50
                if i:
                    first[p.id].append(float(page.evaluate("document.body.dataset.tasksDrawnAt")))
                    screen[p.id].append(float(page.evaluate("document.body.dataset.tasksDrawnMs")))
                    if p is project:
                        parts["tasks"].append(page.evaluate(BREAKDOWN_JS))
            page = fresh(page)
            page.goto(f"{base}/app/#/queue")
            page.wait_for_selector("body[data-ready=queue]", timeout=60000)
            if i:
                queue.append(float(page.evaluate("document.body.dataset.readyAt")))
                parts["queue"].append(page.evaluate(BREAKDOWN_JS))
        for p in (small, project):
            n = p.tasks.count()
            print(f"first page, {n} tasks, navigation start -> 50 rows drawn: {_pct(first[p.id])}")
            print(f"  of which the screen (project + page fetched together, drawn): {_pct(screen[p.id])}")
        print(f"reference: the queue screen, navigation start -> drawn:  {_pct(queue)}")
        if args.breakdown:
            _breakdown(f"task list of {args.tasks} tasks", parts["tasks"])
            _breakdown("queue", parts["queue"])
        changes = []
        for _ in range(2):
            for label, value in FILTERS:
                n = int(page.evaluate("document.body.dataset.tasksDrawn || 0"))
                if not n:
                    page.goto(f"{base}/app/#/tasks/{project.id}")
                    page.wait_for_function("document.body.dataset.tasksDrawn === '1'", timeout=60000)
                    n = 1
                page.select_option(f"select[aria-label='{label}']", value)
                page.wait_for_function(f"Number(document.body.dataset.tasksDrawn) > {n}", timeout=60000)
                changes.append(float(page.evaluate("document.body.dataset.tasksDrawnMs")))
        print(f"filter change, {args.tasks} tasks, request -> rows drawn: {_pct(changes)}")
        browser.close()
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
