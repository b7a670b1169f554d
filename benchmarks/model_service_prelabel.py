"""Benchmark for issue 26: pre-labels of N images through a local Label Studio ML backend.

Usage (from the repo root)::

    .venv/bin/python benchmarks/model_service_prelabel.py --images 1000 [--batch 8] [--database-url URL]

The backend is the real `label-studio-ml` 1.0.9 server (its own venv, tests/lsml/env.py) serving
tests/lsml/backend_model.py: per image it fetches the image from LabelHub's signed URL and returns a
polygon, a rectangle and a 640x480 brush mask (label-studio-converter's RLE). LabelHub is served by a
threaded WSGI server in this process (the backend fetches the images from it). The images (640x480
PNG, all rows sharing one stored file, with their tasks) are bulk-created in a fresh project; then
`images_predict_service` runs batch after batch in this process, as a `cpu` worker runs them.

Printed, per image: the whole pre-label (wall time / N, and images/s); the time inside the service's
HTTP calls (/setup + /predict, which includes the backend fetching the image); the backend model's own
`predict` time (logged by the backend); and LabelHub's overhead = whole - time in the service calls
(building tasks and signed URLs, checking and converting results, decoding the brush RLE, storing the
prediction and seeding the task's annotation), in wall time and as the CPU time of the thread that runs
the pre-labels (`time.thread_time`: what LabelHub itself computes, robust to other load on the machine;
the database server's own time is not in it).

Database: ``--database-url`` (default ``$DATABASE_URL``, else a fresh SQLite file in a temp folder).
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
os.environ.setdefault("LABELHUB_TASKS_EAGER", "1")


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGI(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def legacy_predict_service(*, service_id: int, image_ids: list[int]) -> dict:
    """The per-image write path that `images_predict_service` used before its writes were batched
    (kept here, unchanged in behaviour, to measure the batched path against in one run): each image's
    prediction claimed, stored and its task seeded by the one-image functions of predictions/services.py,
    one transaction per image."""
    from labelhub.core.errors import DomainError
    from labelhub.images.models import Image
    from labelhub.predictions import model_services as ms
    from labelhub.predictions.models import ModelService, Prediction, PredictionStatus
    from labelhub.predictions.services import prediction_fail, prediction_save_regions, prediction_start
    from workers.lsml import ResultError, prediction_shapes

    service = ModelService.objects.select_related("project").filter(id=service_id).first()
    project = service.project
    images = list(Image.objects.filter(id__in=image_ids, project=project).order_by("id"))
    results: dict = {}
    todo = []
    done = {
        p.image_id: p
        for p in Prediction.objects.filter(image__in=images, service=service, status=PredictionStatus.OK)
    }
    for image in images:
        if image.id in done:
            results[image.id] = done[image.id]
            continue
        prediction = prediction_start(image=image, model_name=ms._model_name(service),
                                      checkpoint_sha256=ms._checkpoint(service), kind=ms.PREDICTION_KIND)  # fmt: skip
        if prediction is None:
            continue
        image.project = project
        prediction.service, prediction.image = service, image
        todo.append((image, prediction))
    Prediction.objects.filter(id__in=[p.id for _, p in todo], service__isnull=True).update(service=service)
    if not todo:
        return results
    started = time.perf_counter()
    try:
        version = ms.service_setup(service)
        answer = ms.service_call(service, "POST", "/predict", {
            "tasks": [ms.task_json(image) for image, _ in todo],
            "model_version": version or service.model_version or None,
            "project": ms.project_key(project),
            "label_config": ms.label_config_of(project),
            "params": {"login": None, "password": None, "context": None},
        })  # fmt: skip
        predictions, top_version = ms._predictions_of(answer, len(todo))
    except ms.ServiceError as exc:
        ms._failure(service, exc.reason)
        for image, prediction in todo:
            prediction_fail(prediction=prediction, error=exc.reason)
            results[image.id] = prediction
        return results
    ms._success(service, top_version or version)
    per_image = (time.perf_counter() - started) / len(todo)
    classes = project.class_names
    for (image, prediction), item in zip(todo, predictions, strict=True):
        t0 = time.perf_counter() - per_image
        try:
            shapes, _, item_version = prediction_shapes(item, width=image.width, height=image.height,
                                                         classes=classes, limits=ms._limits())  # fmt: skip
            regions = ms.prediction_regions(
                shapes=shapes, image=image, service=service, prediction_id=prediction.id
            )
        except ResultError as exc:
            prediction_fail(prediction=prediction, error=f"{ms.REFUSED}: {exc}")
            results[image.id] = prediction
            continue
        prediction.model_version = (item_version or top_version or version or "")[:200]
        try:
            results[image.id] = prediction_save_regions(prediction=prediction, regions=regions, started=t0)
        except DomainError as exc:
            prediction_fail(prediction=prediction, error=f"{ms.REFUSED}: {exc.message} ({exc.field})")
            results[image.id] = prediction
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--paths",
        default="batched,per-image",
        help="the write paths compared, taking turns batch by batch: batched (LabelHub's), per-image "
        "(the one-image write path it replaced, kept here to measure against)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the run; the top 25 by own time")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lh-bench-ms-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/db.sqlite3"
    os.environ["LABELHUB_MEDIA_ROOT"] = str(tmp / "media")
    os.environ["LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE"] = "1"
    os.environ["LABELHUB_MODEL_SERVICE_BATCH"] = str(args.batch)
    os.environ["LABELHUB_PRESEGMENT_ON_UPLOAD"] = "0"
    if os.environ["DATABASE_URL"].startswith("postgres"):
        import psycopg

        base, name = os.environ["DATABASE_URL"].rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                conn.execute(f'create database "{name}"')
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)

    from labelhub.accounts.models import Organization
    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, Task
    from labelhub.predictions import model_services
    from labelhub.predictions.models import ModelService, Prediction
    from labelhub.projects.models import Project
    from tests.helpers import disc_image_bytes
    from tests.lsml.env import lsml_python

    # LabelHub over HTTP, for the backend to fetch the images
    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingWSGI, handler_class=Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.LABELHUB_PUBLIC_URL = f"http://127.0.0.1:{server.server_port}"

    # the backend
    logs = tmp / "logs"
    logs.mkdir()
    (tmp / "models").mkdir()
    from tests.lsml.fixtures import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            str(lsml_python()),
            str(REPO / "tests/lsml/backend_model.py"),
            str(port),
            str(tmp / "models"),
            str(logs),
        ],
        env={**os.environ, "LH_BACKEND_TIMES_ONLY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        org, _ = Organization.objects.get_or_create(
            slug="bench-ms", defaults={"name": "Bench model services"}
        )
        project = Project.objects.create(
            organization=org,
            name=f"ms-{time.time():.0f}",
            label_schema=[{"name": "car", "color": "#ff0000", "kinds": ["polygon", "mask"]}],
        )
        total = (args.images + 2 * args.batch) * len(args.paths.split(","))
        stored = default_storage.save("bench/shared.png", ContentFile(disc_image_bytes(640, 480)))
        images = Image.objects.bulk_create(
            [
                Image(
                    project=project,
                    file=stored,
                    original_name=f"f{i:06d}.png",
                    width=640,
                    height=480,
                    format="PNG",
                    sha256=f"{i:064x}",
                    size_bytes=100,
                )  # fmt: skip
                for i in range(total)
            ]
        )
        tasks = Task.objects.bulk_create(
            [Task(project=project, image=i, stage=project.first_stage) for i in images]
        )
        Annotation.objects.bulk_create([Annotation(task=t, current_revision=0) for t in tasks])
        service = ModelService.objects.create(
            project=project,
            name="bench",
            url=f"http://127.0.0.1:{port}",
            uses=["prelabel"],
            timeout_seconds=60,
        )
        calls = {"in": 0.0}
        call = model_services.service_call

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return call(*a, **kw)
            finally:
                calls["in"] += time.perf_counter() - t

        model_services.service_call = timed
        paths = {"batched": model_services.images_predict_service, "per-image": legacy_predict_service}
        paths = {name: paths[name] for name in args.paths.split(",")}
        ids = [i.id for i in images]
        # the first batches: warm-up, then one batch per path with its queries counted (not timed)
        queries: dict[str, int] = {}
        for run in paths.values():
            run(service_id=service.id, image_ids=ids[: args.batch])
            ids = ids[args.batch :]
        for name, run in paths.items():
            with CaptureQueriesContext(connection) as captured:
                run(service_id=service.id, image_ids=ids[: args.batch])
            queries[name] = len(captured.captured_queries)
            ids = ids[args.batch :]
        counted = Prediction.objects.filter(service=service, status="ok").count()
        (logs / "predict.jsonl").unlink(missing_ok=True)
        import cProfile

        profile = cProfile.Profile(time.thread_time) if args.profile else None
        figures = {name: {"wall": 0.0, "cpu": 0.0, "calls": 0.0, "images": 0} for name in paths}
        if profile:
            profile.enable()
        # the paths take turns, batch by batch, so both see the machine's load alike
        batches = [ids[k : k + args.batch] for k in range(0, len(ids), args.batch)]
        for k, batch in enumerate(batches):
            name = list(paths)[k % len(paths)]
            calls["in"] = 0.0
            cpu0, t0 = time.thread_time(), time.perf_counter()
            paths[name](service_id=service.id, image_ids=batch)
            f = figures[name]
            f["wall"] += time.perf_counter() - t0
            f["cpu"] += time.thread_time() - cpu0
            f["calls"] += calls["in"]
            f["images"] += len(batch)
        if profile:
            import pstats

            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        ok = Prediction.objects.filter(service=service, status="ok").count() - counted
        seeded = Annotation.objects.filter(task__project=project, current_revision=1).count() - counted
        own = sum(json.loads(line)["seconds"] for line in (logs / "predict.jsonl").read_text().splitlines())
        n = sum(f["images"] for f in figures.values())
        print(
            f"images {n} timed (+{counted} warm-up and counted), batch {args.batch}, predictions ok {ok}, "
            f"tasks seeded {seeded}, database {os.environ['DATABASE_URL'].split(':')[0]}"
        )
        print(f"backend model's own time:    {own / n * 1000:8.2f} ms/image (both paths)")
        for name, f in figures.items():
            m = f["images"]
            print(
                f"[{name}] {m} images: whole {f['wall'] / m * 1000:.2f} ms/image ({m / f['wall']:.1f} images/s), "
                f"inside the service's calls {f['calls'] / m * 1000:.2f}, LabelHub overhead (wall) "
                f"{(f['wall'] - f['calls']) / m * 1000:.2f}, LabelHub CPU (this thread) {f['cpu'] / m * 1000:.2f} "
                f"ms/image; {queries[name]} queries for a batch of {args.batch} ({queries[name] / args.batch:.1f} per image)"
            )
        if len(figures) == 2:
            a, b = (figures[name] for name in ("batched", "per-image"))
            print(
                "batched / per-image: CPU per image "
                f"{(a['cpu'] / a['images']) / (b['cpu'] / b['images']):.2f}, overhead (wall) per image "
                f"{((a['wall'] - a['calls']) / a['images']) / ((b['wall'] - b['calls']) / b['images']):.2f}"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()


if __name__ == "__main__":
    main()
