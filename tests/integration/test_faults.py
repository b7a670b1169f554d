"""Nothing is lost when Redis or a worker fails (issue 11), with real processes: a redis-server this test
starts and SIGKILLs, and Celery workers (separate processes on the test database) that one SIGKILLs."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.celery import app
from labelhub.datasets import exports, jobs
from labelhub.datasets.models import Export, ExportStatus
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects.models import Prelabel
from tests.helpers import disc_image_bytes, upload

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, timeout: float, message, interval: float = 0.2):
    """Poll `what()` until it is truthy; fail with `message()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"not within {timeout} s: {message()}")


class RedisServer:
    """A redis-server of this test's own on `port`, without persistence (a restart loses every queued
    message, as a crashed broker without AOF would)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log, self.proc = port, log, None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), 20, lambda: self.log.read_text()[-2000:], 0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    yield server
    server.kill()


@contextmanager
def app_broker(url: str | None):
    """This process's Celery app publishes to `url` (None: the suite's broker) with eager mode off, as
    the API of a deployment does; the overrides are removed again afterwards."""
    values = {"CELERY_TASK_ALWAYS_EAGER": False}
    if url:
        values |= {"CELERY_BROKER_URL": url, "CELERY_BROKER_WRITE_URL": url}
    changes = app.conf.changes
    saved = {k: changes[k] for k in values if k in changes}
    app.conf.update(values)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        for key in values:
            changes.pop(key, None)
        changes.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


class Worker:
    """`celery worker` as a separate process on the test database and media folder."""

    # The pool of the `gpu` worker in deploy/entrypoint.sh; PREFORK is the `cpu` worker's (as deployed:
    # prefork, with the worker heartbeat, gossip and mingle on).
    SOLO = ["--pool", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    PREFORK = ["--pool", "prefork", "--concurrency", "2"]

    def __init__(
        self,
        settings,
        log: Path,
        broker: str,
        queues: str,
        env: dict[str, str],
        pool: list[str] | None = None,
    ) -> None:
        db = connection.settings_dict
        self.log = log
        environ = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": "",
            "LABELHUB_TASKS_EAGER": "0",
            "LABELHUB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LABELHUB_SAM_CHECKPOINT": "",
            **env,
        }
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "labelhub",
                    "worker",
                    "-Q",
                    queues,
                    *(pool or self.SOLO),
                    "-n",
                    f"faults-{log.stem}@%h",
                    "-l",
                    "INFO",
                ],  # fmt: skip
                cwd=ROOT,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    def alive(self) -> None:
        assert self.proc.poll() is None, self.tail()

    def ready(self, timeout: float = 60) -> None:
        wait_for(lambda: self.alive() or " ready." in self.log.read_text(), timeout, self.tail)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def worker(settings, log: Path, broker: str, queues: str, pool: list[str] | None = None, **env: str):
    started = Worker(settings, log, broker, queues, env, pool)
    try:
        started.ready()
        yield started
    finally:
        started.stop()


def zip_members(export: Export) -> dict[str, bytes]:
    with export.file.open("rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def coco_of(members: dict[str, bytes]) -> dict[str, list]:
    """The images and annotations of every subset file of a COCO archive."""
    out: dict[str, list] = {"images": [], "annotations": []}
    for name, data in members.items():
        if name.startswith("annotations/instances_"):
            part = json.loads(data)
            out["images"] += part["images"]
            out["annotations"] += part["annotations"]
    return out


def test_redis_killed_during_uploads_submits_and_exports_loses_nothing(org_a, own_redis, settings, tmp_path):
    """The broker (and results) Redis dies with the API and a worker running: uploads, a submit and an
    export request still answer 2xx and are committed; Redis comes back empty (no persistence), and one
    run of each sweep brings every image its prediction and finishes the export, with nothing twice."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    settings.LABELHUB_CLASSICAL_EVERYTHING = True
    org_a.project.prelabel = Prelabel.EVERYTHING
    org_a.project.save(update_fields=["prelabel"])
    manager, annotator = org_a.clients[Role.MANAGER], org_a.clients[Role.ANNOTATOR]
    env = {
        "CELERY_RESULT_BACKEND": own_redis.url(1),
        "LABELHUB_PRESEGMENT_ON_UPLOAD": "1",
        "LABELHUB_CLASSICAL_EVERYTHING": "1",
        "LABELHUB_PRESEGMENT_STALE_SECONDS": "0",  # the sweep: every image without a finished prediction
    }
    with (
        app_broker(own_redis.url(0)),
        worker(settings, tmp_path / "w.log", own_redis.url(0), "cpu,gpu", **env) as w,
    ):

        def predicted() -> int:
            return Prediction.objects.filter(kind="automatic", status=PredictionStatus.OK).count()

        # Redis up: the first upload is pre-segmented by the worker (the pipeline works end to end).
        assert upload(manager, org_a.project.id, ("a.png", disc_image_bytes(seed=1))).status_code == 201
        wait_for(lambda: w.alive() or predicted() == 1, 60, w.tail)

        own_redis.kill()
        answers = []
        for seed in (2, 3, 4):
            answers.append(upload(manager, org_a.project.id, (f"b{seed}.png", disc_image_bytes(seed=seed))))
        claimed = annotator.post(f"/api/v1/projects/{org_a.project.id}/next-task/")
        answers.append(claimed)
        answers.append(annotator.post(f"/api/v1/tasks/{claimed.json()['id']}/submit/"))
        answers.append(
            manager.post(
                f"/api/v1/projects/{org_a.project.id}/exports/",
                {"format": "coco", "filters": {"annotated": True, "include_empty": True}},  # every task
                format="json",
            )
        )
        assert [a.status_code for a in answers] == [201, 201, 201, 200, 200, 202], [
            a.content[:300] for a in answers
        ]
        # Committed: 4 images, the submit moved the task on, the export is pending (its message was lost).
        assert Image.objects.filter(project=org_a.project).count() == 4
        submitted = org_a.project.tasks.get(pk=claimed.json()["id"])
        assert submitted.stage != "annotate", submitted.stage
        export = Export.objects.get(pk=answers[-1].json()["id"])
        assert export.status == ExportStatus.PENDING
        assert predicted() == 1

        own_redis.start()  # same port, empty
        app.send_task("labelhub.predictions.presegment_sweep")
        app.send_task("labelhub.datasets.jobs_sweep")

        def recovered() -> bool:
            w.alive()
            export.refresh_from_db()
            return predicted() == 4 and export.status == ExportStatus.DONE

        wait_for(recovered, 60, lambda: f"{predicted()} predicted, export {export.status}\n{w.tail()}")

    images = list(Image.objects.filter(project=org_a.project))
    assert len(images) == 4
    for image in images:  # one prediction each, and one AI revision seeded from it
        assert Prediction.objects.filter(image=image, kind="automatic").count() == 1
        assert AnnotationRevision.objects.filter(annotation__task__image=image, author=None).count() == 1
    assert Export.objects.filter(project=org_a.project).count() == 1
    assert export.attempts == 1 and export.progress_done == export.progress_total == 4
    coco = coco_of(zip_members(export))
    assert sorted(i["file_name"] for i in coco["images"]) == ["a.png", "b2.png", "b3.png", "b4.png"]


def _big_project(project, images: int, polygons_per_image: int) -> int:
    """`images` accepted tasks of `polygons_per_image` star polygons each, inserted in bulk (the export
    needs rows, not decodable files). Returns the number of regions."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from labelhub.labeling.models import Annotation, Task, TaskStatus
    from tests.helpers import image_bytes

    stored = default_storage.save("faults/shared.png", ContentFile(image_bytes(8, 8)))
    rng = random.Random(7)
    rows = Image.objects.bulk_create(
        [
            Image(
                project=project,
                file=stored,
                original_name=f"frame_{i:05d}.png",
                width=640,
                height=480,
                format="PNG",
                sha256=f"{i:064x}",
                size_bytes=100,
            )  # fmt: skip
            for i in range(images)
        ]
    )
    tasks = Task.objects.bulk_create(
        [Task(project=project, image=img, stage="done", status=TaskStatus.DONE) for img in rows]
    )
    annotations = Annotation.objects.bulk_create([Annotation(task=t, current_revision=1) for t in tasks])

    def star(cx: float, cy: float, r: float, n: int) -> list[list[float]]:
        import math

        return [
            [cx + r * (1 if k % 2 else 0.5) * math.cos(2 * math.pi * k / n),
             cy + r * (1 if k % 2 else 0.5) * math.sin(2 * math.pi * k / n)]
            for k in range(n)
        ]  # fmt: skip

    revisions = []
    for ann in annotations:
        regions = [
            {"id": f"r{j}", "label": "cat", "kind": "polygon", "source": "human", "prediction_id": None,
             "score": None, "polygons": [{"exterior": star(rng.uniform(60, 580), rng.uniform(60, 420),
                                                           rng.uniform(10, 50), 24), "holes": []}]}
            for j in range(polygons_per_image)
        ]  # fmt: skip
        revisions.append(
            AnnotationRevision(annotation=ann, number=1, regions=regions, stage="done", summary={})
        )
    AnnotationRevision.objects.bulk_create(revisions, batch_size=500)
    return images * polygons_per_image


def _hold_table_lock(table: str):
    """A connection of its own holding an ACCESS EXCLUSIVE lock on `table` until it is closed."""
    import psycopg

    db = connection.settings_dict
    held = psycopg.connect(
        dbname=db["NAME"], user=db["USER"] or None, password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None,
    )  # fmt: skip
    held.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
    return held


def test_a_worker_killed_mid_export_is_run_again_once_after_the_stale_window(org_a, settings, tmp_path):
    """A real worker is SIGKILLed while it writes an export (its message stays unacknowledged in Redis, not
    redelivered for the visibility timeout's 2 h). Once its heartbeat is stale the sweep queues the export
    again, a new worker writes it once, with every item, and the run that is alive, though it runs
    past the stale window, is never taken over by the sweep or a redelivered message."""
    if connection.vendor != "postgresql" or not os.environ.get("CELERY_BROKER_URL", "").startswith(
        "redis://"
    ):
        pytest.skip("needs PostgreSQL and a Redis broker (bin/test sets both)")
    broker = os.environ["CELERY_BROKER_URL"]
    redis.Redis.from_url(broker).flushdb()
    stale, beat = 3, 0.3
    settings.LABELHUB_JOB_STALE_SECONDS = stale
    settings.LABELHUB_JOB_HEARTBEAT_SECONDS = beat
    env = {"LABELHUB_JOB_STALE_SECONDS": str(stale), "LABELHUB_JOB_HEARTBEAT_SECONDS": str(beat)}
    images = int(os.environ.get("LABELHUB_FAULTS_EXPORT_IMAGES", "3000"))
    regions = _big_project(org_a.project, images, 12)

    with app_broker(None), worker(settings, tmp_path / "first.log", broker, "cpu", **env) as first:
        response = org_a.clients[Role.MANAGER].post(
            f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
        )
        assert response.status_code == 202, response.json()
        export = Export.objects.get(pk=response.json()["id"])
        assert export.progress_total == images

        def progress() -> int:
            first.alive()
            export.refresh_from_db()
            assert export.status != ExportStatus.DONE, "the export finished before the kill: make it larger"
            return export.progress_done

        wait_for(progress, 60, first.tail, 0.05)
        first.kill()
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING and 0 < export.progress_done < images
        assert export.attempts == 1

    with app_broker(None), worker(settings, tmp_path / "second.log", broker, "cpu", **env) as second:
        # Not stale yet right after the kill (a fresh heartbeat): nothing to sweep. Then it goes stale.
        wait_for(
            lambda: (timezone.now() - Export.objects.get(pk=export.pk).heartbeat_at).total_seconds() > stale,
            30,
            lambda: "the heartbeat did not go stale",
        )
        # The new run must be alive past the stale window whatever this machine's speed: a lock held on
        # the revisions it reads (a slow query, as far as the run can tell) holds it there, heartbeating.
        held = _hold_table_lock(AnnotationRevision._meta.db_table)
        try:
            assert jobs.jobs_sweep() == {"exports": 1, "imports": 0}  # queued again, to the new worker

            def claimed() -> bool:
                second.alive()
                export.refresh_from_db()
                return export.status == ExportStatus.RUNNING and export.attempts == 2

            wait_for(claimed, 30, second.tail)
            wait_for(
                lambda: (
                    (timezone.now() - Export.objects.get(pk=export.pk).started_at).total_seconds() > stale + 1
                ),
                30,
                lambda: "the second run did not get past the stale window",
            )
            # The new run is alive: past the stale window since it started, neither a sweep nor a
            # redelivered message (run here, in this process) takes it over.
            export.refresh_from_db()
            assert export.status == ExportStatus.RUNNING and export.attempts == 2
            assert (timezone.now() - export.heartbeat_at).total_seconds() < stale, "the heartbeat stopped"
            taken_over = [jobs.jobs_sweep()["exports"]]
            exports.export_run(export_id=export.pk)
            export.refresh_from_db()
            assert export.status == ExportStatus.RUNNING and export.attempts == 2
        finally:
            held.close()  # the lock goes with its transaction: the run goes on

        def finished() -> bool:
            second.alive()
            export.refresh_from_db()
            return export.status == ExportStatus.DONE

        wait_for(finished, 90, second.tail, 0.5)
        log = second.log.read_text()

    assert taken_over and set(taken_over) == {0}, f"checks while running past the stale window: {taken_over}"
    assert export.attempts == 2  # the killed run and the one that finished: no third
    assert export.progress_done == export.progress_total == images
    assert log.count("labelhub.datasets.run_export") and log.count("succeeded") == 1, log[-3000:]
    members = zip_members(export)
    coco = coco_of(members)
    assert len(coco["images"]) == images and len({i["id"] for i in coco["images"]}) == images
    assert len(coco["annotations"]) == regions == export.annotations_count
    manifest = json.loads(members["labelhub/manifest.json"])
    assert manifest["images"] == images and manifest["regions"] == regions
    snapshot = members["labelhub/snapshot.csv"].decode().splitlines()
    assert len(snapshot) == images + 1


def test_the_prefork_cpu_worker_survives_the_broker_killed_while_it_holds_a_message(
    org_a, own_redis, settings, tmp_path
):
    """The `cpu` worker as deployed (prefork) holds a webhook delivery's message (acks_late; the receiver
    has not answered yet) when the broker's redis-server is SIGKILLed. Writes during the outage answer
    2xx; the worker stays alive through the outage (kombu used to fail closing its channel:
    `'NoneType' object has no attribute 'hostname'`, see core/broker.py), finishes the attempt it held,
    reconnects to the restarted (empty) broker, and one sweep delivers what the outage left pending."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    from labelhub.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
    from labelhub.webhooks.services import deliveries_sweep, webhook_emit
    from tests.labelhub.labeling.builders import make_tasks, next_task
    from tests.labelhub.webhooks.test_webhooks import Receiver

    settings.LABELHUB_WEBHOOK_SWEEP_SECONDS = 0  # the sweep takes every due delivery at once
    project = org_a.project
    make_tasks(project, 2)
    annotator = org_a.clients[Role.ANNOTATOR]
    gate = threading.Event()
    log = tmp_path / "cpu.log"
    with (
        Receiver([200], gate=gate) as receiver,
        app_broker(own_redis.url(0)),
        worker(settings, log, own_redis.url(0), "cpu", pool=Worker.PREFORK) as w,
    ):
        Webhook.objects.create(organization=org_a.organization, url=receiver.url, secret="s3cret")
        (held,) = webhook_emit(organization=org_a.organization, event="export.finished", payload={"n": 0})
        # A pool process is in the middle of the delivery: the message is taken and not acknowledged.
        wait_for(lambda: w.alive() or receiver.arrived.is_set(), 60, w.tail)

        own_redis.kill()
        answers = []
        for _ in range(2):  # each submit commits and queues a delivery that the broker cannot take
            claimed = next_task(annotator, project.id, "annotate")
            answers += [claimed, annotator.post(f"/api/v1/tasks/{claimed.json()['id']}/submit/")]
        assert [a.status_code for a in answers] == [200, 200, 200, 200], [a.content[:300] for a in answers]
        pending = list(WebhookDelivery.objects.exclude(pk=held.pk).values_list("pk", flat=True))
        assert len(pending) == 2

        gate.set()  # the receiver answers the held attempt; its acknowledgement cannot reach the broker
        wait_for(
            lambda: w.alive() or WebhookDelivery.objects.get(pk=held.pk).status == DeliveryStatus.DELIVERED,
            60,
            w.tail,
        )
        wait_for(lambda: w.alive() or "Cannot connect to" in log.read_text(), 60, w.tail)
        w.alive()

        own_redis.start()  # same port, empty
        wait_for(lambda: w.alive() or log.read_text().count("Connected to") >= 2, 60, w.tail)
        assert deliveries_sweep() == 2  # what celery beat sends every LABELHUB_WEBHOOK_SWEEP_SECONDS

        def delivered() -> bool:
            w.alive()
            return WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3

        wait_for(delivered, 60, w.tail)
        w.alive()
    assert "Unrecoverable error" not in log.read_text()
    assert len(receiver.requests) == 3  # each delivery once
    assert WebhookDelivery.objects.get(pk=held.pk).attempts == 1
