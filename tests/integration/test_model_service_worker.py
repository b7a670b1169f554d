"""A real `cpu` worker process runs model service pre-labels from Redis: a service slower than its
timeout fails its batch with the reason in about the timeout, and the same worker then pre-labels the
next batch through the real label-studio-ml backend (a slow service never holds a worker)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.celery import app
from labelhub.images.models import Image
from labelhub.predictions.models import ModelService, Prediction
from tests.helpers import disc_image_bytes, upload
from tests.integration.test_celery_worker import _worker
from tests.lsml.fixtures import backend, lsml_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_slow_service_fails_its_batch_and_the_worker_goes_on(
    org_a,
    backend,  # noqa: F811 - the fixture
    settings,
    tmp_path,
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    files = [(f"i{k}.png", disc_image_bytes(48, 40, seed=k)) for k in range(2)]
    assert upload(org_a.clients[Role.MANAGER], org_a.project.id, *files).status_code == 201
    first, second = Image.objects.order_by("id")
    slow = ModelService.objects.create(
        project=org_a.project, name="slow", url=backend.url, uses=["prelabel"], timeout_seconds=1
    )
    good = ModelService.objects.create(project=org_a.project, name="good", url=backend.url, uses=["prelabel"])
    env = {
        "LABELHUB_PUBLIC_URL": settings.LABELHUB_PUBLIC_URL,
        "LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE": "1",
        "LABELHUB_MODEL_SERVICE_MAX_ATTEMPTS": "1",
    }
    worker = _worker(settings, tmp_path, "cpu", env_extra=env)
    proc, log = next(worker)
    try:
        backend.mode("slow")
        always_eager = app.conf.task_always_eager
        app.conf.task_always_eager = False
        try:
            app.send_task("labelhub.predictions.service_predict", args=[slow.id, [first.id]])
            deadline = time.monotonic() + 120
            while not Prediction.objects.filter(service=slow, status="failed").exists():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            backend.mode("")
            app.send_task("labelhub.predictions.service_predict", args=[good.id, [second.id]])
        finally:
            app.conf.task_always_eager = always_eager
        while not Prediction.objects.filter(service=good, status="ok").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        next(worker, None)
    failed = Prediction.objects.get(service=slow)
    assert failed.error == "/predict: no answer within 1 s (the service's timeout)" and failed.regions == []
    done = Prediction.objects.get(service=good)
    assert done.image_id == second.id and len(done.regions) == 3 and done.model_version == "INITIAL"
    assert [r["prediction_id"] for r in second.task.annotation.revisions.get(number=1).regions] == [
        done.id
    ] * 3
