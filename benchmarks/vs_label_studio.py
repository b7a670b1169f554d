"""LabelHub beside Label Studio on the same tasks: a task list page, a task's annotation read and an
annotation update, sequential and with N concurrent clients, interleaved so both servers share the
machine's load alike.

Both run as a user starts them, each on its own embedded SQLite database and Django's development
server (`label-studio start`; LabelHub's `manage.py runserver`, what `make demo` serves), started here on
free loopback ports and stopped at the end. Label Studio lives in its own virtual environment
(``--ls-venv``, default ``~/.cache/labelhub/ls-venv``; created with ``pip install label-studio==1.23.2``
when missing: its dependencies clash with ours). Each side gets ``--tasks`` tasks of one image URL with
one polygon region each: Label Studio's through its import API (tasks with annotations), LabelHub's
bulk-inserted through its models (images, tasks, annotations, one revision each).

The operations, as each product's own app calls them:
- list: Label Studio ``GET /api/tasks?project=P&page=K&page_size=50`` (the Data Manager's list);
  LabelHub ``GET /api/v1/tasks/?project=P&page=K&page_size=50``.
- read: Label Studio ``GET /api/tasks/{id}`` (the task with its annotations, what the editor loads);
  LabelHub ``GET /api/v1/tasks/{id}/annotation/``.
- update: Label Studio ``PATCH /api/annotations/{id}`` with a moved polygon; LabelHub ``PUT
  /api/v1/tasks/{id}/annotation/`` with the revision read (a manager: no lease needed), the same polygon.

Printed: p50 and p95 client-side per operation, product and mode, and Label Studio's p50 / LabelHub's.

Usage: nice .venv/bin/python benchmarks/vs_label_studio.py [--tasks 5000] [--calls 200] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LS_VERSION = "1.23.2"
LS_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <PolygonLabels name="label" toName="image"><Label value="cat"/><Label value="dog"/></PolygonLabels>
</View>"""
POLYGON = [[10.0, 10.0], [40.0, 12.0], [42.0, 45.0], [12.0, 40.0]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}) before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds} s")


class Client:
    def __init__(self, base: str, token: str):
        self.base = base
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None) -> tuple[float, dict | list | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers)
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        return elapsed, (json.loads(raw) if raw else None)


# ---------------------------------------------------------------------------------------- Label Studio


def ls_venv(path: Path) -> Path:
    binary = path / "bin" / "label-studio"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        # sentry-sdk 3 dropped an option Label Studio 1.23.2 passes at start-up.
        subprocess.run(
            [str(path / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}", "sentry-sdk<3"],
            check=True,
        )
    return binary


def ls_start(binary: Path, data_dir: Path, port: int, token: str) -> subprocess.Popen:
    env = {**os.environ, "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "DEBUG": "false",
           "LOG_LEVEL": "WARNING"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    args = [str(binary), "start", "--no-browser", "--data-dir", str(data_dir), "--internal-host", "127.0.0.1", "--host", f"http://127.0.0.1:{port}",
            "--port", str(port), "--username", "bench@example.com", "--password", "bench-password-1",
            "--user-token", token, "--enable-legacy-api-token"]
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 (kept open for the process's life)
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def ls_setup(client: Client, tasks: int) -> tuple[int, list[int], list[int]]:
    _, project = client.call("POST", "/api/projects", {"title": "bench", "label_config": LS_CONFIG})
    pid = project["id"]
    points = [[x / 100 * 100, y / 100 * 100] for x, y in POLYGON]
    batch = []
    for i in range(tasks):
        result = [{"id": f"r{i}", "from_name": "label", "to_name": "image", "type": "polygonlabels",
                   "original_width": 100, "original_height": 100,
                   "value": {"points": points, "polygonlabels": ["cat"]}}]
        batch.append({"data": {"image": f"http://127.0.0.1/img/{i}.png"}, "annotations": [{"result": result}]})
        if len(batch) == 1000 or i == tasks - 1:
            client.call("POST", f"/api/projects/{pid}/import", batch)
            batch = []
    ids, annotation_ids, page = [], [], 1
    while True:
        _, body = client.call("GET", f"/api/tasks?project={pid}&page={page}&page_size=1000&fields=all")
        rows = body["tasks"] if isinstance(body, dict) else body
        for row in rows:
            ids.append(row["id"])
            annotation_ids.append(row["annotations"][0]["id"] if row.get("annotations") else None)
        if len(rows) < 1000 or len(ids) >= tasks:  # past the last page Label Studio answers 404
            break
        page += 1
    return pid, ids, annotation_ids


# ---------------------------------------------------------------------------------------- LabelHub


def lh_env(var_dir: Path) -> dict:
    env = {**os.environ, "LABELHUB_VAR_DIR": str(var_dir), "PYTHONPATH": str(ROOT)}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env["LABELHUB_THROTTLE_WRITE"] = ""  # one user's back-to-back writes: no per-user write throttle
    return env


LH_SEED = r"""
import sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from labelhub.accounts.auth import token_issue
from labelhub.accounts.models import Membership, Organization, Role
from labelhub.images.models import Image
from labelhub.labeling.models import Annotation, AnnotationRevision, Task
from labelhub.projects.models import Project
n = int(sys.argv[1])
user = get_user_model().objects.create_user("bench", password="bench-password-1")
org = Organization.objects.create(name="Bench", slug="bench")
Membership.objects.create(user=user, organization=org, role=Role.MANAGER)
project = Project.objects.create(organization=org, name="bench", created_by=user,
    label_schema=[{"name": "cat", "kinds": ["polygon"]}, {"name": "dog", "kinds": ["polygon"]}])
region = {"id": "r", "label": "cat", "kind": "polygon", "source": "human",
          "polygons": [{"exterior": %s, "holes": []}]}
images = Image.objects.bulk_create([Image(project=project, file=f"bench/{i}.png", original_name=f"{i}.png",
    width=100, height=100, format="PNG", sha256=f"{i:064x}", size_bytes=1) for i in range(n)], batch_size=1000)
tasks = Task.objects.bulk_create([Task(project=project, image=im, stage="annotate") for im in images], batch_size=1000)
annotations = Annotation.objects.bulk_create([Annotation(task=t, current_revision=1) for t in tasks], batch_size=1000)
AnnotationRevision.objects.bulk_create([AnnotationRevision(annotation=a, number=1, author=user, stage=a.task.stage,
    regions=[{**region, "id": f"r{a.task_id}"}]) for a in annotations], batch_size=1000)
print(json.dumps({"project": project.id, "tasks": [t.id for t in tasks], "token": token_issue(user=user)[1]}))
""".replace("import sys, django", "import json, sys, django") % json.dumps(POLYGON)


def lh_setup(var_dir: Path, tasks: int) -> dict:
    env = lh_env(var_dir)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([sys.executable, "-c", LH_SEED, str(tasks)], cwd=ROOT, env={
        **env, "DJANGO_SETTINGS_MODULE": "labelhub.settings"}, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def lh_start(var_dir: Path, port: int) -> subprocess.Popen:
    log = open(var_dir / "server.log", "w")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=lh_env(var_dir), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


# ---------------------------------------------------------------------------------------- measuring


def operations(product: str, client: Client, setup: dict, rng: random.Random):
    """name -> a function making one call of that operation; returns the client-side ms."""
    ids = setup["tasks"]
    pages = max(1, len(ids) // 50)
    moved = [[x + rng.random(), y] for x, y in POLYGON]
    if product == "ls":
        pid = setup["project"]
        annotation_of = dict(zip(ids, setup["annotations"], strict=True))

        def update(task_id):
            points = [[x, y] for x, y in moved]
            result = [{"id": "r", "from_name": "label", "to_name": "image", "type": "polygonlabels",
                       "original_width": 100, "original_height": 100,
                       "value": {"points": points, "polygonlabels": ["cat"]}}]
            return client.call("PATCH", f"/api/annotations/{annotation_of[task_id]}", {"result": result})[0]

        return {
            "list": lambda: client.call("GET", f"/api/tasks?project={pid}&page={rng.randint(1, pages)}"
                                               f"&page_size=50")[0],
            "read": lambda: client.call("GET", f"/api/tasks/{rng.choice(ids)}")[0],
            "update": lambda: update(rng.choice(ids)),
        }
    pid = setup["project"]

    def lh_update(task_id):
        _, current = client.call("GET", f"/api/v1/tasks/{task_id}/annotation/")
        region = {"id": f"r{task_id}", "label": "cat", "kind": "polygon", "source": "human",
                  "polygons": [{"exterior": moved, "holes": []}]}
        return client.call("PUT", f"/api/v1/tasks/{task_id}/annotation/",
                           {"revision": current["revision"], "regions": [region]})[0]

    return {
        "list": lambda: client.call("GET", f"/api/v1/tasks/?project={pid}&page={rng.randint(1, pages)}"
                                           f"&page_size=50")[0],
        "read": lambda: client.call("GET", f"/api/v1/tasks/{rng.choice(ids)}/annotation/")[0],
        "update": lambda: lh_update(rng.choice(ids)),
    }


def run_batch(op, calls: int, clients: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()
    per_client = max(1, calls // clients)

    def worker():
        mine = [op() for _ in range(per_client)]
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=200, help="calls per operation, product and mode")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (calls split among them)")
    parser.add_argument("--ls-venv", type=Path, default=Path.home() / ".cache" / "labelhub" / "ls-venv")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vs-ls-"))
    procs: list[subprocess.Popen] = []
    try:
        binary = ls_venv(args.ls_venv)
        ls_dir, lh_dir = work / "ls", work / "lh"
        ls_dir.mkdir()
        lh_dir.mkdir()
        ls_port, lh_port, token = free_port(), free_port(), "benchtoken" + os.urandom(8).hex()
        print(f"seeding LabelHub with {args.tasks} tasks", flush=True)
        lh = lh_setup(lh_dir, args.tasks)
        procs.append(lh_start(lh_dir, lh_port))
        procs.append(ls_start(binary, ls_dir, ls_port, token))
        wait_http(f"http://127.0.0.1:{lh_port}/healthz/live/", 300, procs[0])
        wait_http(f"http://127.0.0.1:{ls_port}/health", 600, procs[1])
        ls_client = Client(f"http://127.0.0.1:{ls_port}", token)
        print(f"seeding Label Studio {LS_VERSION} with {args.tasks} tasks", flush=True)
        pid, ids, annotation_ids = ls_setup(ls_client, args.tasks)
        ls = {"project": pid, "tasks": ids, "annotations": annotation_ids}
        lh_client = Client(f"http://127.0.0.1:{lh_port}", lh["token"])

        rng = random.Random(0)
        ops = {"ls": operations("ls", ls_client, ls, rng), "lh": operations("lh", lh_client, lh, rng)}
        for product in ops:  # warm both servers (imports, caches) before measuring
            for op in ops[product].values():
                for _ in range(5):
                    op()
        figures: dict = {}
        per_round = max(1, args.calls // args.rounds)
        for mode, clients in (("sequential", 1), (f"{args.clients} clients", args.clients)):
            for _ in range(args.rounds):
                for name in ("list", "read", "update"):
                    for product in ("ls", "lh"):
                        times = run_batch(ops[product][name], per_round, clients)
                        figures.setdefault(mode, {}).setdefault(name, {}).setdefault(product, []).extend(times)
        load = os.getloadavg()
        print(f"\n{args.tasks} tasks each; {args.calls} calls per cell in {args.rounds} interleaved rounds; "
              f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores")
        print(f"{'mode':<12} {'op':<7} {'LS p50':>8} {'LS p95':>8} {'LH p50':>8} {'LH p95':>8} {'LS/LH p50':>10}")
        summary: dict = {}
        for mode, by_op in figures.items():
            for name, by_product in by_op.items():
                row = {}
                for product, times in by_product.items():
                    times.sort()
                    row[product] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])
                ratio = row["ls"][0] / row["lh"][0]
                summary.setdefault(mode, {})[name] = {"ls_p50": row["ls"][0], "ls_p95": row["ls"][1],
                                                      "lh_p50": row["lh"][0], "lh_p95": row["lh"][1],
                                                      "ratio_p50": ratio}
                print(f"{mode:<12} {name:<7} {row['ls'][0]:8.1f} {row['ls'][1]:8.1f} {row['lh'][0]:8.1f} "
                      f"{row['lh'][1]:8.1f} {ratio:9.1f}x")
        if args.json:
            args.json.write_text(json.dumps({"summary": summary, "load": load, "tasks": args.tasks}, indent=2))
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
