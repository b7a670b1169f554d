"""Benchmark for issue 11: nothing lost when Redis, a worker or PostgreSQL fails.

A production-shaped stack started here and torn down at the end (even on failure): its own PostgreSQL
cluster (initdb in a temp dir, run as the `postgres` user when started as root), two redis-servers
(broker and results: noeviction; embedding cache and throttles: allkeys-lru, as deploy/ has them),
gunicorn for the API, Celery workers for the `cpu` and `gpu` queues in the deployment's pools (prefork
for `cpu`, solo for `gpu`; classical backend, everything mode on upload), and direct sweep calls (what
celery beat would send) after each fault.

Usage (from the repo root)::

    nice .venv/bin/python benchmarks/faults.py [--outage 8] [--export-images 3000]

Scenarios: (i) the broker Redis SIGKILLed during uploads, submits and exports, restarted empty;
(ii) the cpu worker SIGKILLed mid-export and the gpu worker mid pre-segmentation batch, restarted;
(iii) broker outage during uploads (Redis down --outage seconds); (iv) `pg_ctl restart -m fast`
during writes; (v) the broker SIGKILLed while the prefork cpu worker holds an export's message (the
worker is not restarted: it must survive). Per scenario it prints images without a prediction after one sweep interval, exports
stuck, webhook deliveries stuck, acknowledged writes lost (every 2xx the client saw, checked against
the database at the end), 5xx answers for committed work (and all 5xx), time to recovery, the slowest
write's answer time, and whether the cpu worker was alive after the fault.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
PY = sys.executable
STALE = 4  # LABELHUB_PRESEGMENT_STALE_SECONDS and LABELHUB_JOB_STALE_SECONDS of this stack
SWEEP = 30.0  # "one sweep interval" of this stack: the wait allowed after the sweep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if what():
                return True
        except Exception:  # noqa: BLE001 - a service still starting
            pass
        time.sleep(interval)
    return False


class Stack:
    def __init__(self, args) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="labelhub-faults-"))
        os.chmod(self.tmp, 0o755)
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.pg_port, self.queue_port, self.cache_port, self.api_port = (free_port() for _ in range(4))
        self.pgdata = self.tmp / "pgdata"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/labelhub",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.queue_port}/0",
            "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{self.queue_port}/1",
            "REDIS_URL": f"redis://127.0.0.1:{self.cache_port}/0",
            "LABELHUB_TASKS_EAGER": "0",
            "LABELHUB_MEDIA_ROOT": str(self.tmp / "media"),
            "LABELHUB_VAR_DIR": str(self.tmp / "var"),
            "LABELHUB_SAM_CHECKPOINT": "",
            "LABELHUB_CLASSICAL_EVERYTHING": "1",
            "LABELHUB_PRESEGMENT_ON_UPLOAD": "1",
            "LABELHUB_PRESEGMENT_STALE_SECONDS": str(STALE),
            "LABELHUB_JOB_STALE_SECONDS": str(STALE),
            "LABELHUB_JOB_HEARTBEAT_SECONDS": "1",
            "LABELHUB_WEBHOOK_ALLOW_PRIVATE": "1",
            "DJANGO_SETTINGS_MODULE": "labelhub.settings",
            **{
                f"LABELHUB_THROTTLE_{k}": ""
                for k in ("ANON", "WRITE", "LOGIN", "SEGMENT", "UPLOAD", "IMPORT")
            },
        }

    # --- processes ------------------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str], **kw) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - kept open by the child
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def pg(self, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, f"{self.pg_bin}/pg_ctl", "-D", str(self.pgdata), "-w", *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start_postgres(self) -> None:
        self.pgdata.mkdir()
        if self.as_postgres:
            shutil.chown(self.pgdata, "postgres", "postgres")
        subprocess.run(
            [
                *self.as_postgres,
                f"{self.pg_bin}/initdb",
                "-D",
                str(self.pgdata),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        opts = f"-p {self.pg_port} -k {self.pgdata} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg("-o", opts, "-l", str(self.pgdata / "log"), "start")
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres", autocommit=True
        ) as c:
            c.execute("create database labelhub")

    def start_redis(self, name: str) -> None:
        port = self.queue_port if name == "redis-queue" else self.cache_port
        policy = ["--maxmemory-policy", "noeviction"]
        if name == "redis-cache":
            policy = ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
        self.spawn(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", *policy])  # fmt: skip
        import redis

        assert wait_for(lambda: redis.Redis(port=port).ping(), 20, 0.05), name

    def start_worker(self, queue: str) -> None:
        # The deployment's pools (deploy/entrypoint.sh): prefork for `cpu` (2 processes on this box, the
        # worker heartbeat, gossip and mingle on), solo for `gpu`.
        pool = ["--concurrency", "2"] if queue == "cpu" else ["--pool", "solo"]
        self.spawn(queue, [PY, "-m", "celery", "-A", "labelhub", "worker", "-Q", queue, *pool,
                           "-n", f"{queue}@%h", "-l", "INFO"])  # fmt: skip
        log = self.tmp / f"{queue}.log"
        assert wait_for(lambda: log.read_text().count(" ready.") > self.ready.get(queue, 0), 90), (
            log.read_text()
        )
        self.ready[queue] = log.read_text().count(" ready.")

    def start_api(self) -> None:
        self.spawn("api", [PY, "-m", "gunicorn", "labelhub.wsgi", "-b", f"127.0.0.1:{self.api_port}", "-w", "2",
                           "--timeout", "60"])  # fmt: skip
        assert wait_for(lambda: requests.get(f"{self.url}/healthz/live/", timeout=2).ok, 90)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.ready: dict[str, int] = {}
        self.start_postgres()
        self.start_redis("redis-queue")
        self.start_redis("redis-cache")
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=self.env, check=True)
        os.environ.update(self.env)  # this process reads and sweeps the same database
        import django

        django.setup()
        self.start_api()
        self.start_worker("cpu")
        self.start_worker("gpu")

    def stop(self) -> None:
        api = self.tmp / "api.log"
        if api.exists():  # the server side of any 5xx answer
            errors = [line for line in api.read_text(errors="replace").splitlines() if "Error" in line]
            print("api.log errors:", *errors[-20:], sep="\n  ", file=sys.stderr)
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        if self.pgdata.exists():
            try:
                self.pg("-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the product, from the outside ----------------------------------------------------------------


def image_png(seed: int) -> bytes:
    from tests.helpers import disc_image_bytes

    return disc_image_bytes(seed=seed)


class Client:
    """Records every answer: what was acknowledged (2xx) is checked against the database at the end."""

    def __init__(self, url: str, manager_token: str, annotator_token: str, project: int) -> None:
        self.url, self.project = url, project
        self.manager = requests.Session()
        self.manager.headers["Authorization"] = f"Token {manager_token}"
        self.annotator = requests.Session()
        self.annotator.headers["Authorization"] = f"Token {annotator_token}"
        self.acked_images: list[str] = []
        self.failed_uploads: list[tuple[str, int]] = []  # (file name, status) of 5xx answers
        self.acked_exports: list[int] = []
        self.acked_submits: list[int] = []
        self.statuses: dict[int, int] = {}
        self.other_5xx = 0
        self.seq = 0
        self.seconds: list[float] = []  # the time every write took to answer, in order
        self._started = 0.0

    def _count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.seconds.append(time.monotonic() - self._started)

    def _start(self) -> None:
        self._started = time.monotonic()

    def upload(self, tag: str) -> None:
        self.seq += 1
        name = f"{tag}-{self.seq:05d}.png"
        self._start()
        try:
            r = self.manager.post(f"{self.url}/api/v1/projects/{self.project}/images/upload/",
                                  files={"files": (name, image_png(self.seq))}, timeout=60)  # fmt: skip
        except requests.RequestException:
            self.failed_uploads.append((name, 0))
            self._count(0)
            return
        self._count(r.status_code)
        if r.status_code == 201:
            self.acked_images.append(name)
        elif r.status_code >= 500:
            self.failed_uploads.append((name, r.status_code))
            print(f"upload {name} answered {r.status_code}: {r.text[:200]}", file=sys.stderr)

    def export(self) -> None:
        body = {"format": "coco", "filters": {"annotated": True, "include_empty": True}}
        self._start()
        try:
            r = self.manager.post(
                f"{self.url}/api/v1/projects/{self.project}/exports/", json=body, timeout=60
            )
        except requests.RequestException:
            self._count(0)
            return
        self._count(r.status_code)
        if r.status_code == 202:
            self.acked_exports.append(r.json()["id"])
        elif r.status_code >= 500:
            self.other_5xx += 1
            print(f"export answered {r.status_code}: {r.text[:200]}", file=sys.stderr)

    def submit(self) -> None:
        try:
            self._start()
            r = self.annotator.post(f"{self.url}/api/v1/projects/{self.project}/next-task/", timeout=60)
            self._count(r.status_code)
            if r.status_code != 200:
                if r.status_code >= 500:  # next-task claims a lease: a write
                    self.other_5xx += 1
                    print(f"next-task answered {r.status_code}: {r.text[:200]}", file=sys.stderr)
                return
            task = r.json()["id"]
            self._start()
            r = self.annotator.post(f"{self.url}/api/v1/tasks/{task}/submit/", timeout=60)
        except requests.RequestException:
            self._count(0)
            return
        self._count(r.status_code)
        if r.status_code == 200:
            self.acked_submits.append(task)
        elif r.status_code >= 500:
            self.other_5xx += 1
            print(f"submit answered {r.status_code}: {r.text[:200]}", file=sys.stderr)


def load(client: Client, tag: str, seconds: float, *, exports: bool = True, submits: bool = True) -> None:
    """Writes for `seconds`: an upload each turn, an export every 5th and a submit every 3rd."""
    end, turn = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        turn += 1
        client.upload(tag)
        if exports and turn % 5 == 0:
            client.export()
        if submits and turn % 3 == 0:
            client.submit()
        time.sleep(0.1)


def setup_project() -> tuple[str, str, int]:
    from labelhub.accounts.auth import token_issue
    from labelhub.accounts.models import Organization, Role
    from labelhub.projects.models import Prelabel, Project
    from tests.helpers import make_user

    org = Organization.objects.create(name="Faults", slug="faults")
    manager = make_user("faults-manager", org, Role.MANAGER)
    project = Project.objects.create(
        organization=org, name="faults", prelabel=Prelabel.EVERYTHING, created_by=manager,
        label_schema=[{"name": "cat", "color": "#ff0000", "kinds": ["polygon", "mask"]}],
    )  # fmt: skip
    annotator = make_user("faults-annotator", org, Role.ANNOTATOR)
    from labelhub.projects.models import ProjectMember

    ProjectMember.objects.get_or_create(project=project, user=manager)
    ProjectMember.objects.get_or_create(project=project, user=annotator)
    return token_issue(user=manager)[1], token_issue(user=annotator)[1], project.id


def sweep() -> None:
    """What celery beat sends every sweep interval, called directly (they publish to the broker)."""
    from django.db import connection

    from labelhub.datasets.jobs import jobs_sweep
    from labelhub.predictions.services import presegment_sweep

    connection.close()  # the cluster may have restarted since the last call
    presegment_sweep()
    jobs_sweep()


def state(project_id: int) -> dict:
    from django.db import connection
    from django.db.models import Exists, OuterRef

    from labelhub.datasets.models import Export, ExportStatus
    from labelhub.images.models import Image
    from labelhub.predictions.models import Prediction, PredictionStatus

    connection.close()
    ok = Prediction.objects.filter(image=OuterRef("pk"), kind="automatic", status=PredictionStatus.OK)
    images = Image.objects.filter(project_id=project_id)
    return {
        "unpredicted": images.exclude(Exists(ok)).count(),
        "exports_stuck": Export.objects.filter(project_id=project_id)
        .exclude(status=ExportStatus.DONE)
        .count(),
    }


def webhooks_stuck() -> str:
    try:
        from labelhub.webhooks import services as hooks
    except ImportError:
        return "n/a (no sweep yet)"
    if not hasattr(hooks, "deliveries_sweep"):
        return "n/a (no sweep yet)"
    from labelhub.webhooks.models import WebhookDelivery

    return str(WebhookDelivery.objects.exclude(status__in=["delivered", "failed"]).count())


def lost(client: Client, project_id: int) -> tuple[int, int]:
    """(acknowledged writes missing from the database, 5xx uploads whose image was committed anyway,
    5xx answers of exports, next-task and submits: not checkable one by one, listed on stderr)."""
    from labelhub.datasets.models import Export
    from labelhub.images.models import Image
    from labelhub.labeling.models import Task

    names = set(Image.objects.filter(project_id=project_id).values_list("original_name", flat=True))
    missing = sum(n not in names for n in client.acked_images)
    missing += len(set(client.acked_exports) - set(Export.objects.values_list("id", flat=True)))
    moved = set(
        Task.objects.filter(id__in=client.acked_submits)
        .exclude(stage="annotate")
        .values_list("id", flat=True)
    )
    missing += len(set(client.acked_submits) - moved)
    committed_5xx = sum(name in names for name, status in client.failed_uploads if status >= 500)
    return missing, committed_5xx, client.other_5xx


def recover(stack: Stack, project_id: int, restored: float) -> tuple[dict, float | None]:
    """After the fault is undone: wait out the stale window, sweep once, allow one sweep interval."""
    time.sleep(STALE + 1)
    sweep()
    deadline = time.monotonic() + SWEEP
    while time.monotonic() < deadline:
        now = state(project_id)
        if not any(now.values()):
            return now, time.monotonic() - restored
        time.sleep(0.5)
    return state(project_id), None


def big_export(stack: Stack, client: Client, images: int) -> int:
    """An export of a bulk-made project large enough to be running when its worker is killed."""
    from labelhub.projects.models import Project
    from tests.integration.test_faults import _big_project

    source = Project.objects.get(pk=client.project)
    big = Project.objects.create(organization=source.organization, name=f"faults-big-{Project.objects.count()}", prelabel="none",
                                 label_schema=source.label_schema)  # fmt: skip
    _big_project(big, images, 12)
    r = client.manager.post(
        f"{client.url}/api/v1/projects/{big.id}/exports/", json={"format": "coco"}, timeout=60
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage", type=float, default=8.0, help="seconds the broker is down in (iii)")
    parser.add_argument("--export-images", type=int, default=3000)
    args = parser.parse_args()
    stack = Stack(args)
    rows = []
    seen = [0, 0]  # 5xx counted by earlier scenarios
    try:
        stack.start()
        manager, annotator, project = setup_project()
        client = Client(stack.url, manager, annotator, project)
        load(client, "warm", 3)  # everything up: the pipeline works
        assert wait_for(lambda: not any(state(project).values()), 60), state(project)

        def scenario(name: str, fault) -> None:
            print(f"scenario {name} ...", file=sys.stderr, flush=True)
            before = dict(client.statuses)
            first_write = len(client.seconds)
            restored = fault()
            slowest = max(client.seconds[first_write:], default=0.0)
            cpu_alive = stack.procs["cpu"].poll() is None  # before any restart: did it survive the fault?
            after, ttr = recover(stack, project, restored)
            missing, bad, unverified = lost(client, project)
            unverified, bad = unverified - seen[0], bad - seen[1]  # this scenario's
            seen[0], seen[1] = seen[0] + unverified, seen[1] + bad
            n5xx = sum(v - before.get(k, 0) for k, v in client.statuses.items() if k >= 500 or k == 0)
            statuses = {k: v - before.get(k, 0) for k, v in client.statuses.items() if v - before.get(k, 0)}
            rows.append((name, after["unpredicted"], after["exports_stuck"], webhooks_stuck(), missing, bad, unverified, n5xx,
                         f"{ttr:.1f} s" if ttr is not None else "not recovered", f"{slowest:.2f} s",
                         "yes" if cpu_alive else "no (died)", statuses))  # fmt: skip

        def redis_killed() -> float:
            t = threading.Thread(target=load, args=(client, "i", 9))
            t.start()
            time.sleep(2)
            stack.kill("redis-queue")
            time.sleep(4)
            stack.start_redis("redis-queue")
            restored = time.monotonic()
            t.join()
            return restored

        def worker_killed() -> float:
            from labelhub.datasets.models import Export

            export_id = big_export(stack, client, args.export_images)
            assert wait_for(lambda: Export.objects.get(pk=export_id).progress_done > 0, 120, 0.05)
            stack.kill("cpu")
            for _ in range(8):  # a pre-segmentation batch in flight on the gpu worker
                client.upload("ii")
            time.sleep(0.3)
            stack.kill("gpu")
            stack.start_worker("cpu")
            stack.start_worker("gpu")
            return time.monotonic()

        def broker_outage() -> float:
            t = threading.Thread(target=load, args=(client, "iii", args.outage + 4), kwargs={"exports": False,
                                                                                          "submits": False})  # fmt: skip
            t.start()
            time.sleep(2)
            stack.kill("redis-queue")
            time.sleep(args.outage)
            stack.start_redis("redis-queue")
            restored = time.monotonic()
            t.join()
            return restored

        def broker_killed_under_prefork() -> float:
            """The broker's redis-server SIGKILLed while the prefork cpu worker holds a message (an export
            being written: acks_late), writes going on; the worker is NOT restarted by hand."""
            from labelhub.datasets.models import Export

            export_id = big_export(stack, client, args.export_images)
            assert wait_for(lambda: Export.objects.get(pk=export_id).progress_done > 0, 120, 0.05)
            t = threading.Thread(target=load, args=(client, "v", 8), kwargs={"exports": False})
            t.start()
            time.sleep(1)
            stack.kill("redis-queue")
            time.sleep(4)
            stack.start_redis("redis-queue")
            restored = time.monotonic()
            t.join()
            return restored

        def pg_restart() -> float:
            t = threading.Thread(target=load, args=(client, "iv", 8))
            t.start()
            time.sleep(2)
            stack.pg("-m", "fast", "restart")
            restored = time.monotonic()
            t.join()
            return restored

        scenario("(i) broker Redis SIGKILLed 4 s during uploads/submits/exports", redis_killed)
        scenario("(ii) cpu worker SIGKILLed mid-export, gpu worker mid-batch", worker_killed)
        scenario(f"(iii) broker down {args.outage:g} s during uploads", broker_outage)
        scenario("(iv) pg_ctl restart -m fast during writes", pg_restart)
        scenario("(v) broker SIGKILLed 4 s while the prefork cpu worker holds an export", broker_killed_under_prefork)
    finally:
        stack.stop()
    print(
        f"acked writes lost: cumulative, checked after each scenario; stale window {STALE} s, one sweep interval allowed after the sweep: {SWEEP:g} s"
    )
    print("| scenario | images without a prediction | exports stuck | webhook deliveries stuck | acked writes lost "
          "| 5xx for committed uploads | 5xx of exports/next-task/submits | 5xx/conn errors (all) | time to recovery "
          "| slowest write | cpu worker alive after the fault | answers |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"acknowledged: {len(client.acked_images)} uploads, {len(client.acked_exports)} exports, "
          f"{len(client.acked_submits)} submits")  # fmt: skip


if __name__ == "__main__":
    main()
