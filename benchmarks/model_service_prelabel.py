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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
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

    call_command("migrate", verbosity=0)

    from labelhub.accounts.models import Organization
    from labelhub.images.models import Image
    from labelhub.labeling.models import Annotation, AnnotationRevision, Task
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
                for i in range(args.images)
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
        in_calls = 0.0
        call = model_services.service_call

        def timed(*a, **kw):
            nonlocal in_calls
            t = time.perf_counter()
            try:
                return call(*a, **kw)
            finally:
                in_calls += time.perf_counter() - t

        model_services.service_call = timed
        ids = [i.id for i in images]
        model_services.images_predict_service(service_id=service.id, image_ids=ids[: args.batch])  # warm-up
        Prediction.objects.all().delete()
        AnnotationRevision.objects.filter(annotation__task__project=project).delete()
        Annotation.objects.update(current_revision=0)
        in_calls = 0.0
        (logs / "predict.jsonl").unlink(missing_ok=True)
        import cProfile

        profile = cProfile.Profile(time.thread_time) if args.profile else None
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        if profile:
            profile.enable()
        for start in range(0, len(ids), args.batch):
            model_services.images_predict_service(
                service_id=service.id, image_ids=ids[start : start + args.batch]
            )
        total = time.perf_counter() - t0
        cpu = time.thread_time() - cpu0
        if profile:
            import pstats

            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        ok = Prediction.objects.filter(service=service, status="ok").count()
        seeded = Annotation.objects.filter(task__project=project, current_revision=1).count()
        own = sum(json.loads(line)["seconds"] for line in (logs / "predict.jsonl").read_text().splitlines())
        n = args.images
        print(
            f"images {n}, batch {args.batch}, predictions ok {ok}, tasks seeded {seeded}, database {os.environ['DATABASE_URL'].split(':')[0]}"
        )
        print(
            f"whole pre-label:            {total:8.2f} s  {n / total:7.1f} images/s  {total / n * 1000:7.2f} ms/image"
        )
        print(f"inside the service's calls: {in_calls:8.2f} s  {in_calls / n * 1000:7.2f} ms/image")
        print(f"backend model's own time:   {own:8.2f} s  {own / n * 1000:7.2f} ms/image")
        print(
            f"LabelHub overhead:          {total - in_calls:8.2f} s  {(total - in_calls) / n * 1000:7.2f} ms/image"
        )
        print(f"LabelHub CPU (this thread): {cpu:8.2f} s  {cpu / n * 1000:7.2f} ms/image")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()


if __name__ == "__main__":
    main()
