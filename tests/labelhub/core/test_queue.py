"""A request whose transaction committed answers 2xx when the broker is down: the send after commit fails
against a real Redis port with nothing listening, is logged, and the row stays pending for a retry."""

from __future__ import annotations

import logging
import socket

import pytest

from labelhub.celery import app
from labelhub.datasets.models import Export


@pytest.fixture
def broker_down():
    """Celery publishing to a Redis port nobody listens on (a broker outage), eager mode off."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The app reads Django settings under the CELERY_ namespace: override those keys.
    down = {
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_BROKER_WRITE_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_CONNECTION_TIMEOUT": 1,
        "CELERY_TASK_PUBLISH_RETRY": False,
    }
    # Undo by removing the overrides again: writing the old values back would leave explicit
    # CELERY_* keys that shadow later `app.conf.task_always_eager = ...` toggles of other tests.
    changes = app.conf.changes
    saved = {k: changes[k] for k in down if k in changes}
    app.conf.update(down)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        for key in down:
            changes.pop(key, None)
        changes.update(saved)
        app._pool = None
        app.amqp._producer_pool = None


@pytest.mark.django_db
def test_export_request_answers_202_while_the_broker_is_down(
    org_a, broker_down, django_capture_on_commit_callbacks, caplog
):
    with caplog.at_level(logging.ERROR, logger="labelhub.core.queue"):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = org_a.clients["manager"].post(
                f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
            )
    assert response.status_code == 202, response.json()
    assert callbacks  # the send ran after the commit, and failed
    assert "could not queue labelhub.datasets.run_export" in caplog.text
    assert Export.objects.get(pk=response.json()["id"]).status == "pending"  # left for a retry
