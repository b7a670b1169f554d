"""Queueing Celery tasks from services by task name.

A service queues its app's task once the transaction commits; the task (in tasks.py) calls the
service. Looking the task up by name keeps that a one-way import (tasks -> services), so no module
imports the one that imports it. The task modules are imported when Celery autodiscovers them (every
app's AppConfig.ready imports its tasks module, so the API process knows them too).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)


def task_named(name: str):
    """The registered Celery task `name` (KeyError when no tasks module registered it)."""
    return current_app.tasks[name]


def send_or_log(name: str, *args: Any) -> bool:
    """Send task `name` now; False (logged) when the broker refuses. Called after a commit, the caller's
    work is stored: a broker outage must not turn that into an error answer (the database row stays the
    record of the work, for a retry), nor into a slow one. So one try, no publish retries, a connection
    attempt bounded by LABELHUB_BROKER_SEND_TIMEOUT_SECONDS: the sweeps queue what was not sent."""
    try:
        task_named(name).apply_async(args=args, retry=False, ignore_result=True)
    except Exception:  # kombu/redis raise many kinds (OperationalError, ConnectionError, TimeoutError)
        log.exception("could not queue %s%r after commit; the row is left for a retry", name, args)
        return False
    return True


def enqueue_on_commit(name: str, *args: Any) -> None:
    """Queue task `name` with `args` once the current transaction commits (at once outside one): the
    worker must see the rows the transaction wrote. A failed send is logged, never raised."""
    transaction.on_commit(lambda: send_or_log(name, *args))
