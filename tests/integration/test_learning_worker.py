"""The real job path of project models: the API queues training on Redis's `train` queue, a Celery
worker process trains, stores the weights in storage and applies the promotion rule, and new images
are pre-labelled by that worker with the promoted version."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.celery import app
from labelhub.images.models import Image
from labelhub.learning.models import ModelVersion, ProjectModel, VersionStatus
from labelhub.predictions.models import Prediction, PredictionStatus
from tests.helpers import disc_image_bytes, upload
from tests.integration.test_celery_worker import broker_url, worker  # noqa: F401  (fixture)
from tests.labelhub.learning.conftest import TINY, H, W, disc_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_queue():
    return "train"


def _wait(proc, log, found, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(log.read_text()[-3000:])


def test_a_train_worker_trains_promotes_and_prelabels(disc_project, worker, settings):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share: PostgreSQL")
    proc, log = worker
    org, project = disc_project, disc_project.project
    project.prelabel = "project_model"
    project.save()
    manager = org.clients[Role.MANAGER]
    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        response = manager.post(
            f"/api/v1/projects/{project.id}/models/train/", {**TINY, "heldout_fraction": 0.25}, format="json"
        )
        assert response.status_code == 202, response.content
        version_id = response.json()["model"]["id"]
        assert response.json()["model"]["status"] == "queued"
        version = _wait(
            proc,
            log,
            lambda: (
                ModelVersion.objects.filter(id=version_id)
                .exclude(status__in=[VersionStatus.QUEUED, VersionStatus.TRAINING])
                .first()
            ),
        )
        assert version.status == VersionStatus.READY, version.error
        # Weights in storage, matching their recorded SHA-256; the promotion recorded with both scores.
        import hashlib

        with version.weights.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == version.weights_sha256
        assert version.promotion["promoted"] and version.promotion["current"]["source"] == "prelabels"
        assert ProjectModel.objects.get(project=project).active_version_id == version.id
        assert "labelhub.learning.train.train_version[" in log.read_text()

        settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
        assert upload(manager, project.id, ("new.png", disc_image_bytes(W, H, seed=7))).status_code == 201
        image = Image.objects.get(original_name="new.png")
        prediction = _wait(
            proc, log, lambda: Prediction.objects.filter(image=image, status=PredictionStatus.OK).first()
        )
    finally:
        app.conf.task_always_eager = always_eager
    assert prediction.model_name == version.prediction_model_name
    assert prediction.checkpoint_sha256 == version.weights_sha256
    revision = image.task.annotation.revisions.get(number=1)
    assert revision.author is None and revision.regions
    assert {r["prediction_id"] for r in revision.regions} == {prediction.id}
