"""A live job is never run twice: a training and an evaluation message delivered a second time while
the first run is alive (its worker process paused mid-run with SIGSTOP, its heartbeat fresh) are taken
by a second real worker process, which finds the row held and does nothing; the first run then finishes,
once (core/jobs.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from labelhub.celery import app
from labelhub.learning.models import Evaluation, EvaluationStatus, ModelVersion, TrainingJob, VersionStatus
from labelhub.learning.tasks import run_evaluation, train_version
from tests.integration.test_celery_worker import _worker
from tests.labelhub.learning.conftest import TINY, disc_project  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_workers(settings, tmp_path):
    """Two `celery worker -Q train,gpu` processes; the first run's stale window is far longer than the
    pause, so its claim stays live while its process is stopped."""
    env = {"LABELHUB_JOB_STALE_SECONDS": "600", "LABELHUB_JOB_HEARTBEAT_SECONDS": "30"}
    first = _worker(settings, tmp_path, "train,gpu", name="w1", env_extra=env)
    second = _worker(settings, tmp_path, "train,gpu", name="w2", env_extra=env, flush=False)
    workers = [next(first), next(second)]
    yield workers
    for proc, _ in workers:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    for gen in (first, second):
        next(gen, None)


def _until(found, workers, seconds=240.0, what=""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc, log in workers:
            assert proc.poll() is None, log.read_text()[-3000:]
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"waited for {what}: " + " | ".join(log.read_text()[-2000:] for _, log in workers))


def _run_twice(workers, *, task, job_id: int, row, running: str, task_name: str):
    """Message 1 is already queued for job `job_id`: wait until a worker claims it, pause that worker,
    deliver message 2 (taken by the other worker), check it did nothing while run 1 is alive, resume."""
    _until(lambda: row().status == running, workers, what=f"{task_name} claimed")
    holder = _until(
        lambda: next((w for w in workers if f"{task_name}[" in w[1].read_text()), None),
        workers,
        what=f"{task_name} received",
    )
    os.kill(holder[0].pid, signal.SIGSTOP)
    try:
        assert row().status == running, "run 1 finished before its worker was paused"
        other = next(w for w in workers if w is not holder)
        second = task.apply_async(args=[job_id])
        _until(
            lambda: f"{second.id}] succeeded" in other[1].read_text(),
            [other],
            seconds=120,
            what="message 2 handled",
        )
        line = next(x for x in other[1].read_text().splitlines() if f"{second.id}] succeeded" in x)
        assert line.rstrip().endswith("None"), line  # found the row held: did nothing
        assert row().status == running and row().attempts == 1
    finally:
        os.kill(holder[0].pid, signal.SIGCONT)


def test_training_and_evaluation_delivered_twice_while_alive_run_once(disc_project, two_workers):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the worker processes need a database they can share: PostgreSQL")
    org, project = disc_project, disc_project.project
    manager = org.clients["manager"]
    always_eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        response = manager.post(
            f"/api/v1/projects/{project.id}/models/train/",
            {**TINY, "epochs": 40, "heldout_fraction": 0.25},
            format="json",
        )
        assert response.status_code == 202, response.content
        version_id = response.json()["model"]["id"]
        _run_twice(
            two_workers,
            task=train_version,
            job_id=version_id,
            row=lambda: ModelVersion.objects.get(id=version_id),
            running=VersionStatus.TRAINING,
            task_name="labelhub.learning.train.train_version",
        )
        version = _until(
            lambda: ModelVersion.objects.exclude(status=VersionStatus.TRAINING).filter(id=version_id).first(),
            two_workers,
            what="training finished",
        )
        assert version.status == VersionStatus.READY, version.error
        assert version.attempts == 1 and TrainingJob.objects.get(version=version).attempts == 1

        response = manager.post(
            f"/api/v1/projects/{project.id}/evaluations/", {"max_clicks": 20}, format="json"
        )
        assert response.status_code == 202, response.content
        evaluation_id = response.json()["id"]
        _run_twice(
            two_workers,
            task=run_evaluation,
            job_id=evaluation_id,
            row=lambda: Evaluation.objects.get(id=evaluation_id),
            running=EvaluationStatus.RUNNING,
            task_name="labelhub.learning.gpu.run_evaluation",
        )
        evaluation = _until(
            lambda: (
                Evaluation.objects.exclude(status=EvaluationStatus.RUNNING).filter(id=evaluation_id).first()
            ),
            two_workers,
            what="evaluation finished",
        )
    finally:
        app.conf.task_always_eager = always_eager
    assert evaluation.status == EvaluationStatus.DONE, evaluation.error
    assert evaluation.attempts == 1 and evaluation.noc85 is not None
