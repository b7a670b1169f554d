"""A real Celery worker process consumes pre-segmentation from Redis and writes to PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.celery import app
from labelhub.images.models import Image
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.predictions.tasks import presegment_images
from tests.helpers import disc_image_bytes, upload

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def broker_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("integration tests need CELERY_BROKER_URL=redis://... (bin/test sets it)")
    return url


@pytest.fixture
def worker_queue() -> str:
    return "gpu"


@pytest.fixture
def worker(settings, tmp_path, worker_queue):
    """Start `celery worker -Q <worker_queue>` (`gpu` unless a test overrides the fixture) as a separate
    process on the test database and media folder."""
    yield from _worker(settings, tmp_path, worker_queue)


@pytest.fixture
def interactive_worker(settings, tmp_path):
    """Start `celery worker -Q interactive` (the click decoder) as a separate process."""
    yield from _worker(settings, tmp_path, "interactive")


def _worker(
    settings, tmp_path, queue: str, name: str | None = None, env_extra: dict | None = None, flush: bool = True
):
    url = broker_url()
    if flush:  # the first of several workers empties the broker
        redis.Redis.from_url(url).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": url,
        "LABELHUB_TASKS_EAGER": "0",
        "LABELHUB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LABELHUB_SAM_CHECKPOINT": "",
        "CELERY_RESULT_BACKEND": os.environ.get("CELERY_RESULT_BACKEND", ""),
        **(env_extra or {}),
    }
    log = tmp_path / f"{name or 'worker'}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "labelhub",
                "worker",
                "-Q",
                queue,
                "--pool",
                "solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{name or queue}@%h",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield proc, log
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_worker_consumes_presegmentation_from_redis(org_a, worker, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    proc, log = worker
    assert (
        upload(org_a.clients[Role.MANAGER], org_a.project.id, ("disc.png", disc_image_bytes())).status_code
        == 201
    )
    image = Image.objects.get()
    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        result = presegment_images.apply_async(args=[[image.id]])
    finally:
        app.conf.task_always_eager = always_eager
    # The message sits in Redis on the `gpu` queue until the worker takes it.
    deadline = time.monotonic() + 120
    prediction = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        prediction = Prediction.objects.filter(image=image, status=PredictionStatus.OK).first()
        if prediction is not None:
            break
        time.sleep(0.5)
    assert prediction is not None, log.read_text()[-3000:]
    assert prediction.model_name == "classical-grabcut" and prediction.checkpoint_sha256 == "none"
    assert prediction.regions and all(r["source"] == "ai" for r in prediction.regions)
    # The worker logs "succeeded" after the task's commit, so the row can be seen a moment before the line.
    while True:
        text = log.read_text()
        if (result.id in text and "succeeded" in text) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result.id in text and "succeeded" in text
    # The worker pre-labelled the task: revision 1 holds the AI regions, with no author.
    revision = image.task.annotation.revisions.get(number=1)
    assert revision.author is None
    assert [r["prediction_id"] for r in revision.regions] == [prediction.id] * len(revision.regions)
    assert settings.CELERY_TASK_ACKS_LATE


def test_interactive_click_decoded_by_an_interactive_worker(org_a, interactive_worker, settings):
    """LABELHUB_INTERACTIVE_DECODER=worker: the API publishes the click to the `interactive` queue
    (no `gpu` worker runs here, so a click routed there would time out), that worker decodes it from
    the cached embedding and the answer comes back through the result backend."""
    if connection.vendor != "postgresql" or not os.environ.get("CELERY_RESULT_BACKEND"):
        pytest.skip("needs PostgreSQL and CELERY_RESULT_BACKEND (bin/test sets both)")
    proc, log = interactive_worker
    assert (
        upload(org_a.clients[Role.MANAGER], org_a.project.id, ("disc.png", disc_image_bytes())).status_code
        == 201
    )
    image = Image.objects.get()
    settings.LABELHUB_INTERACTIVE_DECODER = "worker"
    settings.LABELHUB_INTERACTIVE_TIMEOUT = 60
    settings.CELERY_TASK_ALWAYS_EAGER = False
    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        response = org_a.clients[Role.ANNOTATOR].post(
            f"/api/v1/images/{image.id}/segment/", {"points": [[48, 40]], "point_labels": [1]}, format="json"
        )
    finally:
        app.conf.task_always_eager = always_eager
    assert response.status_code == 200, (response.json(), log.read_text()[-2000:])
    assert response.json()["model_name"] == "classical-grabcut"
    assert "labelhub.predictions.interactive.segment" in log.read_text()
    assert proc.poll() is None
