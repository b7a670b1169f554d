"""Labelers under load: N simulated annotators and reviewers on the REST API of a real gunicorn and real
Celery workers on PostgreSQL; and (``--scale``) next-task latency with 1k, 100k and 1M open tasks.

Real parts, all started here and stopped at the end: a PostgreSQL database of its own on the machine's
server (``--pg``, created, migrated and dropped here), its own ``redis-server`` on a free port (cache,
throttles, broker, results), ``gunicorn labelhub.wsgi`` with the deploy's worker class (sync; the deploy
runs ``--workers ${GUNICORN_WORKERS:-4}``; here ``--workers``, default cores + 1 (on a box the clients share, 2 x cores + 1 measured
slower: more requests preempted mid-flight), with
``LABELHUB_DB_CONN_MAX_AGE=60`` as in the deploy), one Celery worker on the `cpu` queue delivering the
project's webhook (``task.stage_changed``, to an HTTP receiver in this process) for every stage change.

Load mode (default). Each annotator loops: ``POST next-task`` (annotate), ``GET tasks/{id}/``, ``GET
tasks/{id}/annotation/``, ``PUT tasks/{id}/annotation/`` (a region whose id names the writer and the
task), ``POST submit``. Each reviewer does the same in ``review`` or ``final-qa`` (half prefer one, half
the other, each falls back to the other stage when its queue is empty) and then accepts, or rejects with a
comment (``--reject-rate``): rejections go back to the annotator who did the work, reserved. A think
time (``--think``, exponential, mean in seconds) follows every call. Printed: workflow actions (every
call above) per second, transitions (submit, accept, reject) per second, p50/p95/p99 per endpoint from
the client and from the server (``Server-Timing: app;dur=`` of labelhub/core/timing.py: the time inside
Django, without gunicorn's queue), double assignments (a task held by two users at once: from the
``claimed`` events and their ends in the database, and from the clients' own claim spans), lost writes
(every acknowledged save, submit, accept and reject looked up in the database at the end) and the
webhook deliveries done by the Celery worker.

Scale mode (``--scale``): one project per size in ``--sizes`` whose `annotate` and `final-qa` stages
each hold that many open tasks (images, tasks, annotations and, for final-qa, one revision each by an
annotator, bulk-inserted with ``generate_series``; every image row points at one stored PNG); in each
final-qa queue (independent reviews on) the measuring reviewer authored revisions of the first 100 tasks
(own work) and accepted the next 100 in `review` (earlier-review work), so every call skips 200 rows.
After VACUUM ANALYZE, ``--calls`` ``POST next-task`` per size and stage through gunicorn, round robin
over the sizes in batches of 10 (so the shared machine's load weighs on every size alike), each followed
by ``POST release`` (not timed) so the queue stays as it was; p50/p95 client and server side, and the
p95 ratio to the first size. EXPLAIN ANALYZE of each step and of the old single query (reserved-first
CASE order over the union) at every size, for comparison.

Usage:
  nice .venv/bin/python benchmarks/labeler_load.py                      # 50 labelers, 60 s
  nice .venv/bin/python benchmarks/labeler_load.py --scale              # 1k, 100k, 1M open tasks
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TIMING = re.compile(r"app;dur=([\d.]+)")
DB_TIMING = re.compile(r"db;dur=([\d.]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> str:
    import platform

    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()}-core {platform.machine()} ({cpu}), no GPU used; {load()}"


def pct(values: list[float]) -> str:
    if not values:
        return "n=0"
    a = np.asarray(values)
    return (
        f"p50 {np.percentile(a, 50):7.1f}  p95 {np.percentile(a, 95):7.1f}  "
        f"p99 {np.percentile(a, 99):7.1f} ms (n={len(a)})"
    )


# --- the stack: database, redis, gunicorn, celery ----------------------------------------------------


class Stack:
    """A database, a redis-server, gunicorn and a Celery worker of their own; `stop()` ends all of them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.db_name = f"lh_labeler_load_{os.getpid()}"
        self.db_url = f"{args.pg.rstrip('/')}/{self.db_name}"
        self.var = Path(tempfile.mkdtemp(prefix="lh-labeler-load-"))
        self.redis_port = free_port()
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.procs: list[subprocess.Popen] = []
        self.names: list[str] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "labelhub.settings",
            "DATABASE_URL": self.db_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/2",
            "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{self.redis_port}/3",
            "LABELHUB_TASKS_EAGER": "0",
            "LABELHUB_DEBUG": "0",
            "LABELHUB_VAR_DIR": str(self.var),
            "LABELHUB_MEDIA_ROOT": str(self.var / "media"),
            "LABELHUB_DB_CONN_MAX_AGE": "60",
            "LABELHUB_PRESEGMENT_ON_UPLOAD": "0",
            "LABELHUB_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver is this process, on 127.0.0.1
            "LABELHUB_SAM_CHECKPOINT": "",
        }

    def start(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(f"{self.args.pg.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )  # fmt: skip
        os.environ.update(self.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def serve(self) -> None:
        """gunicorn and the Celery worker, once the data exists."""
        workers = self.args.workers or (os.cpu_count() or 1) + 1
        self._spawn(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "labelhub.wsgi", "--bind", f"127.0.0.1:{self.http_port}",
             "--workers", str(workers), "--threads", str(self.args.threads), "--timeout", "120",
             "--backlog", "2048"],
        )  # fmt: skip
        self._spawn(
            "celery",
            [sys.executable, "-m", "celery", "-A", "labelhub", "worker", "-Q", "cpu", "--concurrency",
             str(self.args.celery_concurrency), "--without-heartbeat", "--without-gossip", "--without-mingle",
             "-n", "bench-cpu@%h", "-l", "WARNING"],
        )  # fmt: skip
        import requests

        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(self.url + "/healthz/live/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(
                    "gunicorn did not come up: " + (self.var / "gunicorn.log").read_text()[-3000:]
                )
            time.sleep(0.3)
        print(
            f"stack: gunicorn sync x{workers} (threads {self.args.threads}), celery -Q cpu "
            f"--concurrency {self.args.celery_concurrency}, redis :{self.redis_port}, database {self.db_name}"
        )

    def cpu_seconds(self) -> dict[str, dict[int, float]]:
        """User+system CPU seconds so far of gunicorn's and Celery's processes and of this database's
        PostgreSQL backends, by pid."""
        import psutil
        from django.db import connection

        def times(pids) -> dict[int, float]:
            out = {}
            for pid in pids:
                try:
                    t = psutil.Process(pid).cpu_times()
                    out[pid] = t.user + t.system
                except psutil.Error:
                    pass
            return out

        def tree(proc: subprocess.Popen) -> list[int]:
            try:
                return [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            except psutil.Error:
                return []

        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = [row[0] for row in cur.fetchall()]
        named = {name: proc for name, proc in zip(self.names, self.procs, strict=True)}
        return {
            "gunicorn": times(tree(named["gunicorn"])),
            "postgres": times(backends),
            "celery": times(tree(named["celery"])),
        }

    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.names.append(name)
        log = open(self.var / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.procs.append(subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        import psycopg
        from psycopg import sql

        if not self.args.keep:
            with psycopg.connect(f"{self.args.pg.rstrip('/')}/postgres", autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name))
                )
            shutil.rmtree(self.var, ignore_errors=True)
        else:
            print(f"kept: database {self.db_url}, folder {self.var}")


# --- data ------------------------------------------------------------------------------------------


def png_bytes(w: int = 640, h: int = 480) -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def people(project, n_annotators: int, n_reviewers: int):
    """Members with tokens: {"annotators": [(user, token)], "reviewers": [...], "owner": user}."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from labelhub.accounts.auth import token_issue
    from labelhub.accounts.models import Membership, Role
    from labelhub.projects.models import ProjectMember

    password = make_password("bench-password")
    out = {"annotators": [], "reviewers": []}
    for kind, role, n in (
        ("annotators", Role.ANNOTATOR, n_annotators),
        ("reviewers", Role.REVIEWER, n_reviewers),
    ):
        for i in range(n):
            user = get_user_model().objects.create(username=f"{kind[:-1]}-{i}", password=password)
            Membership.objects.create(organization=project.organization, user=user, role=role)
            ProjectMember.objects.create(project=project, user=user)
            out[kind].append((user, token_issue(user=user)[1]))
    return out


def project_make(name: str):
    from django.contrib.auth import get_user_model

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.projects.models import Project

    org = Organization.objects.create(name=name, slug=name.lower())
    owner = get_user_model().objects.create(username=f"{name.lower()}-owner")
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    project = Project.objects.create(organization=org, name=name, created_by=owner)
    assert project.independent_reviews and project.stage_names == ["annotate", "review", "final-qa"]
    return project, owner


def tasks_bulk(project, *, n: int, stage: str, media_root: Path, author_id: int | None = None) -> float:
    """Insert n images, their tasks (open in `stage`) and annotations with SQL; with `author_id`, one
    revision each by that user (and the user as last annotator). Every image row names one stored PNG.
    Seconds taken."""
    from django.db import connection, transaction

    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, AnnotationRevision, Task

    rel = "bench/one.png"
    path = media_root / rel
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes())
    size = path.stat().st_size
    t0 = time.perf_counter()
    img, task, ann, rev = (m._meta.db_table for m in (Image, Task, Annotation, AnnotationRevision))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        # The rows are consistent by construction: skip the per-row foreign-key triggers (Django's FKs are
        # deferred, so a million rows meant millions of checks at COMMIT). Needs a superuser; else checked.
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cur.fetchone()[0]:
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(f"SELECT coalesce(max(id), 0) FROM {img}")
        (img0,) = cur.fetchone()
        cur.execute(f"SELECT coalesce(max(id), 0) FROM {task}")
        (task0,) = cur.fetchone()
        cur.execute(
            f"""INSERT INTO {img} (project_id, file, thumbnail, original_name, width, height, format, sha256,
                                   size_bytes, uploaded_by_id, created_at)
                SELECT %s, %s, '', 'img-' || g || '.png', 640, 480, 'PNG', lpad(to_hex(g), 64, '0'), %s, NULL, now()
                FROM generate_series(%s, %s) g""",
            [project.pk, rel, size, img0 + 1, img0 + n],
        )
        cur.execute(
            f"""INSERT INTO {task} (project_id, image_id, stage, status, assignee_id, lease_expires_at,
                                    claimed_at, last_heartbeat_at, active_seconds, last_annotator_id, is_gold,
                                    gold_regions, created_at, updated_at)
                SELECT project_id, id, %s, 'open', NULL, NULL, NULL, NULL, 0, %s, false, '[]', now(), now()
                FROM {img} WHERE project_id = %s AND id > %s ORDER BY id""",
            [stage, author_id, project.pk, img0],
        )
        cur.execute(
            f"INSERT INTO {ann} (task_id, current_revision, updated_at) "
            f"SELECT id, %s, now() FROM {task} WHERE id > %s ORDER BY id",
            [1 if author_id else 0, task0],
        )
        if author_id:
            regions = json.dumps(
                [{"id": "r1", "label": "object", "kind": "polygon", "source": "human",
                  "polygons": [{"exterior": [[10, 10], [200, 10], [200, 150], [10, 150]], "holes": []}]}]
            )  # fmt: skip
            cur.execute(
                f"""INSERT INTO {rev} (annotation_id, number, regions, author_id, stage, summary, created_at)
                    SELECT a.id, 1, %s::jsonb, %s, 'annotate', '{{"added": ["r1"]}}'::jsonb, now()
                    FROM {ann} a WHERE a.task_id > %s ORDER BY a.id""",
                [regions, author_id, task0],
            )
    return time.perf_counter() - t0


# --- the HTTP side ----------------------------------------------------------------------------------


@dataclass
class Call:
    endpoint: str
    at: float  # monotonic, at the request's start
    client_ms: float
    server_ms: float | None
    db_ms: float | None
    status: int


@dataclass
class Record:
    calls: list[Call] = field(default_factory=list)
    saves: list[tuple[int, int, int, str]] = field(default_factory=list)  # task, revision, user, region id
    actions: list[tuple[int, str, int, int]] = field(default_factory=list)  # task, kind, user, revision
    spans: list[tuple[int, int, float, float]] = field(default_factory=list)  # task, user, claimed, ended
    errors: dict = field(default_factory=lambda: defaultdict(int))


class Labeler:
    def __init__(self, base: str, token: str, user_id: int, record: Record, think: float, rng: random.Random):
        import requests

        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.user_id = user_id
        self.record = record
        self.think = think
        self.rng = rng

    def call(self, endpoint: str, method: str, path: str, **kw):
        t = time.monotonic()
        r = self.session.request(method, self.base + path, timeout=60, **kw)
        ms = (time.monotonic() - t) * 1000
        timing = r.headers.get("Server-Timing", "")
        app, db = TIMING.search(timing), DB_TIMING.search(timing)
        self.record.calls.append(
            Call(endpoint, t, ms, float(app[1]) if app else None, float(db[1]) if db else None, r.status_code)
        )
        if r.status_code >= 300:
            code = ""
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                pass
            self.record.errors[(endpoint, r.status_code, code)] += 1
        if self.think:
            time.sleep(self.rng.expovariate(1 / self.think))
        return r

    def claim(self, project_id: int, stage: str):
        r = self.call("next-task", "POST", f"/api/v1/projects/{project_id}/next-task/?stage={stage}")
        if r.status_code != 200:
            return None
        return r.json()["id"], time.monotonic()

    def read(self, task_id: int) -> int:
        self.call("GET task", "GET", f"/api/v1/tasks/{task_id}/")
        r = self.call("GET annotation", "GET", f"/api/v1/tasks/{task_id}/annotation/")
        return r.json()["current_revision"] if r.status_code == 200 else 0

    def annotate(self, project_id: int, stop: threading.Event) -> None:
        n = 0
        while not stop.is_set():
            got = self.claim(project_id, "annotate")
            if got is None:
                time.sleep(0.5)
                continue
            task_id, claimed = got
            revision = self.read(task_id)
            n += 1
            rid = f"u{self.user_id}-t{task_id}-{n}"
            x = self.rng.uniform(10, 300)
            regions = [{"id": rid, "label": "object", "kind": "polygon", "source": "human",
                        "polygons": [{"exterior": [[x, 20], [x + 120, 20], [x + 120, 200], [x, 200]], "holes": []}]}]  # fmt: skip
            r = self.call("PUT annotation", "PUT", f"/api/v1/tasks/{task_id}/annotation/",
                          json={"revision": revision, "regions": regions})  # fmt: skip
            if r.status_code == 200:
                self.record.saves.append((task_id, r.json()["revision"], self.user_id, rid))
                revision = r.json()["revision"]
            ended = time.monotonic()
            r = self.call("submit", "POST", f"/api/v1/tasks/{task_id}/submit/")
            self.record.spans.append((task_id, self.user_id, claimed, ended))
            if r.status_code == 200:
                self.record.actions.append((task_id, "submitted", self.user_id, revision))

    def review(self, project_id: int, stages: list[str], reject_rate: float, stop: threading.Event) -> None:
        while not stop.is_set():
            got, stage = None, None
            for stage in stages:
                got = self.claim(project_id, stage)
                if got is not None:
                    break
            if got is None:
                time.sleep(0.5)
                continue
            task_id, claimed = got
            revision = self.read(task_id)
            ended = time.monotonic()
            if self.rng.random() < reject_rate:
                r = self.call("reject", "POST", f"/api/v1/tasks/{task_id}/reject/",
                              json={"comments": [{"text": f"{stage}: tighten the outline"}]})  # fmt: skip
                kind = "rejected"
            else:
                r = self.call("accept", "POST", f"/api/v1/tasks/{task_id}/accept/")
                kind = "accepted"
            self.record.spans.append((task_id, self.user_id, claimed, ended))
            if r.status_code == 200:
                self.record.actions.append((task_id, kind, self.user_id, revision))


class Receiver(BaseHTTPRequestHandler):
    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Receiver.lock:
            Receiver.count += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


# --- load mode --------------------------------------------------------------------------------------


def run_load(args: argparse.Namespace, stack: Stack) -> None:
    from labelhub.webhooks.services import webhook_create

    project, owner = project_make("Load")
    n_rev = round(args.labelers * args.reviewer_share)
    team = people(project, args.labelers - n_rev, n_rev)
    seconds = tasks_bulk(
        project, n=args.tasks, stage="annotate", media_root=Path(stack.env["LABELHUB_MEDIA_ROOT"])
    )
    print(
        f"data: {args.tasks} open tasks in annotate ({seconds:.1f} s), {args.labelers - n_rev} annotators, {n_rev} reviewers"
    )
    receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    webhook_create(
        user=owner,
        project_id=project.pk,
        url=f"http://127.0.0.1:{receiver.server_address[1]}/hook",
        secret="bench-secret",
        events=["task.stage_changed"],
    )
    stack.serve()

    stop = threading.Event()
    records: list[Record] = []
    threads = []
    for i, (user, token) in enumerate(team["annotators"] + team["reviewers"]):
        rec = Record()
        records.append(rec)
        lab = Labeler(stack.url, token, user.pk, rec, args.think, random.Random(i))
        if i < len(team["annotators"]):
            target, targs = lab.annotate, (project.pk, stop)
        else:
            stages = ["review", "final-qa"] if i % 2 else ["final-qa", "review"]
            target, targs = lab.review, (project.pk, stages, args.reject_rate, stop)
        threads.append(threading.Thread(target=target, args=targs, daemon=True))
    print(f"run: {args.labelers} labelers for {args.duration:.0f} s (first {args.warmup:.0f} s not counted), "
          f"think {args.think} s mean, reject rate {args.reject_rate}; at start {load()}")  # fmt: skip
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    cpu0 = stack.cpu_seconds()
    time.sleep(args.duration - args.warmup)
    cpu1 = stack.cpu_seconds()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    t1 = time.monotonic()
    print(f"done: {load()}")

    calls = [c for r in records for c in r.calls]
    window = [c for c in calls if c.at >= t0 + args.warmup and c.at < t0 + args.duration]
    span = args.duration - args.warmup
    ok = [c for c in window if c.status < 300]
    transitions = [c for c in ok if c.endpoint in ("submit", "accept", "reject")]
    print(f"\nworkflow actions/s: {len(ok) / span:.1f} (2xx calls in the {span:.0f} s window; "
          f"all answers {len(window) / span:.1f}/s), transitions/s (submit+accept+reject): {len(transitions) / span:.1f}")  # fmt: skip
    print(f"{'endpoint':<16} {'client':<48} server (Server-Timing app)")
    endpoints = ["next-task", "GET task", "GET annotation", "PUT annotation", "submit", "accept", "reject"]
    for ep in endpoints + ["all"]:
        sel = [c for c in window if ep == "all" or c.endpoint == ep]
        server = [c.server_ms for c in sel if c.server_ms is not None]
        print(f"{ep:<16} {pct([c.client_ms for c in sel]):<48} {pct(server)}")
    db = [c.db_ms for c in window if c.db_ms is not None]
    print(f"{'(db share, all)':<16} {'':<48} {pct(db)}")
    # CPU seconds the server side spent in the window, per action: what the load costs whatever else
    # shares the machine, and the throughput its cores would give if nothing else ran.
    used = {k: sum(cpu1[k].get(pid, 0) - cpu0[k].get(pid, 0) for pid in cpu1[k]) for k in cpu1}
    per = {k: v * 1000 / max(1, len(ok)) for k, v in used.items()}
    total = sum(per.values())
    print("server CPU per action: " + ", ".join(f"{k} {v:.1f} ms" for k, v in per.items())
          + f"; {total:.1f} ms in all -> about {1000 * (os.cpu_count() or 1) / total:.0f} actions/s on "
          f"{os.cpu_count()} otherwise idle cores")  # fmt: skip
    errors = defaultdict(int)
    for r in records:
        for k, v in r.errors.items():
            errors[k] += v
    print("non-2xx answers: " + (", ".join(f"{ep} {st} {code or '-'}: {n}" for (ep, st, code), n in sorted(errors.items())) or "none"))  # fmt: skip

    verify(project, records)
    # The Celery worker's share: one webhook delivery per stage change.
    from labelhub.webhooks.models import DeliveryStatus, WebhookDelivery

    deadline = time.monotonic() + 120
    while (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists() and time.monotonic() < deadline
    ):
        time.sleep(1)
    counts = {s: WebhookDelivery.objects.filter(status=s).count() for s in DeliveryStatus.values}
    print(f"webhook deliveries (Celery `cpu` worker): {counts}, receiver got {Receiver.count}, "
          f"drained {time.monotonic() - t1:.0f} s after the run")  # fmt: skip
    receiver.shutdown()


def verify(project, records: list[Record]) -> None:
    """Double assignments and lost writes, from the database."""
    from labelhub.labeling.models import AnnotationRevision, EventKind, TaskEvent

    ends = {EventKind.SUBMITTED, EventKind.ACCEPTED, EventKind.REJECTED, EventKind.FIX_ACCEPTED,
            EventKind.RELEASED, EventKind.LEASE_EXPIRED, EventKind.REASSIGNED}  # fmt: skip
    holder: dict[int, int | None] = {}
    double_db = 0
    events = TaskEvent.objects.filter(task__project=project).order_by("task_id", "created_at", "id")
    seen_events = set()
    for task_id, kind, actor, revision in events.values_list(
        "task_id", "kind", "actor_id", "revision"
    ).iterator():
        if kind == EventKind.CLAIMED:
            if holder.get(task_id) not in (None, actor):
                double_db += 1
            holder[task_id] = actor
        elif kind in ends:
            holder[task_id] = None
        seen_events.add((task_id, kind, actor, revision))
    # The clients' view: a claim answered to one user while another's claim (answered before) had not yet
    # sent its submit/accept/reject.
    spans = defaultdict(list)
    for r in records:
        for task_id, user, start, end in r.spans:
            spans[task_id].append((start, end, user))
    double_client = 0
    for items in spans.values():
        items.sort()
        for (_s0, e0, u0), (s1, _e1, u1) in zip(items, items[1:], strict=False):
            if u0 != u1 and s1 < e0:
                double_client += 1
    saved = {}
    revisions = AnnotationRevision.objects.filter(annotation__task__project=project)
    for task_id, number, author, regions in revisions.values_list(
        "annotation__task_id", "number", "author_id", "regions"
    ).iterator():
        saved[(task_id, number)] = (author, {g.get("id") for g in regions})
    acked_saves = [s for r in records for s in r.saves]
    lost_saves = [
        s
        for s in acked_saves
        if (s[0], s[1]) not in saved or saved[(s[0], s[1])][0] != s[2] or s[3] not in saved[(s[0], s[1])][1]
    ]
    acked_actions = [a for r in records for a in r.actions]
    lost_actions = [a for a in acked_actions if a not in seen_events]
    print(f"double assignments: {double_db} (events in the database), {double_client} (client claim spans, {sum(len(v) for v in spans.values())} claims)")  # fmt: skip
    print(f"lost writes: {len(lost_saves)} of {len(acked_saves)} acknowledged saves, {len(lost_actions)} of "
          f"{len(acked_actions)} acknowledged submit/accept/reject")  # fmt: skip
    if lost_saves[:3] or lost_actions[:3]:
        print("  e.g.", lost_saves[:3], lost_actions[:3])


# --- scale mode -------------------------------------------------------------------------------------


def run_scale(args: argparse.Namespace, stack: Stack) -> None:
    """One project per size (same organization and members), all built first; then the calls go round
    the sizes in batches of 10, so that the shared machine's changing load weighs on every size alike."""
    import requests
    from django.db import connection

    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, AnnotationRevision, Task, TaskEvent
    from labelhub.projects.models import Project, ProjectMember

    first, owner = project_make("Scale")
    team = people(first, 2, 1)
    annotator = team["annotators"][0][0]
    reviewer, reviewer_token = team["reviewers"][0]
    worker, worker_token = team["annotators"][1]
    media = Path(stack.env["LABELHUB_MEDIA_ROOT"])
    projects = {}
    for size in args.sizes:
        if projects:
            project = Project.objects.create(
                organization=first.organization, name=f"Scale {size}", created_by=owner
            )
            for user in (annotator, reviewer, worker):
                ProjectMember.objects.create(project=project, user=user)
        else:
            project = first
        t_ins = tasks_bulk(project, n=size, stage="annotate", media_root=media)
        t_ins += tasks_bulk(project, n=size, stage="final-qa", media_root=media, author_id=annotator.pk)
        _review_history(project, reviewer)
        projects[size] = project
        print(
            f"{size:>9,} open tasks in annotate and {size:,} in final-qa (project {project.pk}): inserted in {t_ins:.1f} s; {load()}"
        )
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        for model in (Image, Task, Annotation, AnnotationRevision, TaskEvent):
            cur.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    print(f"VACUUM ANALYZE {time.perf_counter() - t0:.1f} s; {Task.objects.count():,} tasks in all")
    stack.serve()
    session = requests.Session()
    stages = (("annotate", worker_token), ("final-qa", reviewer_token))
    samples = defaultdict(lambda: {"client": [], "server": [], "db": []})

    def calls(size: int, stage: str, token: str, n: int, keep: bool) -> None:
        session.headers["Authorization"] = f"Token {token}"
        for _ in range(n):
            t = time.monotonic()
            r = session.post(
                f"{stack.url}/api/v1/projects/{projects[size].pk}/next-task/?stage={stage}", timeout=60
            )
            ms = (time.monotonic() - t) * 1000
            assert r.status_code == 200, (r.status_code, r.text[:300])
            if keep:
                timing = r.headers["Server-Timing"]
                samples[(size, stage)]["client"].append(ms)
                samples[(size, stage)]["server"].append(float(TIMING.search(timing)[1]))
                samples[(size, stage)]["db"].append(float(DB_TIMING.search(timing)[1]))
            rel = session.post(f"{stack.url}/api/v1/tasks/{r.json()['id']}/release/", timeout=60)
            assert rel.status_code == 200, rel.text[:300]

    for size in args.sizes:
        for stage, token in stages:
            calls(size, stage, token, args.warmup_calls, keep=False)
    print(
        f"measuring: {args.calls} next-task calls per size and stage, round robin in batches of 10; {load()}"
    )
    for _ in range(max(1, args.calls // 10)):
        for size in args.sizes:
            for stage, token in stages:
                calls(size, stage, token, 10, keep=True)
    print(f"done; {load()}")
    base = args.sizes[0]
    for stage, _token in stages:
        print(f"\nnext-task, stage {stage}:")
        for size in args.sizes:
            got = samples[(size, stage)]
            ratio = np.percentile(got["server"], 95) / np.percentile(samples[(base, stage)]["server"], 95)
            ratio_c = np.percentile(got["client"], 95) / np.percentile(samples[(base, stage)]["client"], 95)
            print(f"  {size:>9,} open: client {pct(got['client'])}  server {pct(got['server'])}  "
                  f"db {pct(got['db'])}  p95 vs {base:,}: server {ratio:.2f}x, client {ratio_c:.2f}x")  # fmt: skip
    print()
    for size in args.sizes:
        for stage, _token in stages:
            explain_steps(
                projects[size], stage, reviewer if stage == "final-qa" else worker, label=f"{size:,}"
            )


def _review_history(project, reviewer) -> None:
    """The reviewer's own work (a revision of theirs on the first 100 final-qa tasks) and earlier-review
    work (an `accepted` event from `review` on the next 100): the rows every final-qa call skips."""
    from django.utils import timezone

    from labelhub.labeling.models import AnnotationRevision, EventKind, Task, TaskEvent

    ids = list(
        Task.objects.filter(project=project, stage="final-qa")
        .order_by("id")
        .values_list("id", flat=True)[:200]
    )
    now = timezone.now()
    for task_id in ids[:100]:
        annotation = Task.objects.get(pk=task_id).annotation
        AnnotationRevision.objects.create(
            annotation=annotation, number=2, regions=[], author=reviewer, stage="review"
        )
    TaskEvent.objects.bulk_create(
        TaskEvent(
            task_id=t,
            kind=EventKind.ACCEPTED,
            actor=reviewer,
            from_stage="review",
            to_stage="final-qa",
            created_at=now,
        )
        for t in ids[100:]
    )


def explain_steps(project, stage: str, user, label: str = "") -> None:
    """EXPLAIN ANALYZE of each next-task step, and of the old single query, in this process."""
    from django.db import transaction
    from django.db.models import Case, IntegerField, Q, Value, When
    from django.utils import timezone

    from labelhub.labeling import leases
    from labelhub.labeling.models import Task, TaskStatus

    now = timezone.now()
    steps = leases._claimable_steps(project=project, stage=stage, user=user, now=now)
    old = Task.objects.filter(project=project, stage=stage).filter(
        Q(status=TaskStatus.OPEN, assignee__isnull=True)
        | Q(status=TaskStatus.OPEN, assignee=user)
        | Q(status=TaskStatus.IN_PROGRESS, lease_expires_at__lte=now)
    )
    old = leases._review_exclude(old, project=project, stage=stage, user=user)
    mine_first = Case(
        When(status=TaskStatus.OPEN, assignee=user, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    old = old.annotate(mine_first=mine_first).order_by("mine_first", "id")
    out = []
    with transaction.atomic():
        for name, qs in zip(("reserved", "expired", "open", "old single query"), [*steps, old], strict=True):
            plan = qs.select_for_update(skip_locked=True, of=("self",))[:1].explain(analyze=True)
            ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
            out.append(f"{name} {float(ms[1]):.2f} ms")
        transaction.set_rollback(True)
    print(f"EXPLAIN ANALYZE {label} {stage}: " + ", ".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pg",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server (a database is created there and dropped)",
    )
    ap.add_argument("--labelers", type=int, default=50)
    ap.add_argument("--reviewer-share", type=float, default=0.4, help="share of the labelers who review")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--tasks", type=int, default=5000, help="open tasks at the start (load mode)")
    ap.add_argument(
        "--think", type=float, default=0.5, help="mean think time after each call, seconds (0: none)"
    )
    ap.add_argument("--reject-rate", type=float, default=0.15)
    ap.add_argument("--workers", type=int, default=0, help="gunicorn workers (default cores + 1)")
    ap.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (1: the sync worker)")
    ap.add_argument("--celery-concurrency", type=int, default=1)
    ap.add_argument("--scale", action="store_true", help="next-task latency at --sizes open tasks")
    ap.add_argument(
        "--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1000, 100_000, 1_000_000]
    )
    ap.add_argument("--calls", type=int, default=200, help="timed next-task calls per stage and size")
    ap.add_argument("--warmup-calls", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the database and folder")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    stack = Stack(args)
    if args.scale:
        # one user calls next-task and release back to back: the per-user write throttle (600/minute)
        # would answer 429 on a fast box, and it is not what this mode measures
        stack.env["LABELHUB_THROTTLE_WRITE"] = ""
    try:
        stack.start()
        (run_scale if args.scale else run_load)(args, stack)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
