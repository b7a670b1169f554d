"""Queueing Celery tasks from services by task name.

A service queues its app's task once the transaction commits; the task (in tasks.py) calls the
service. Looking the task up by name keeps that a one-way import (tasks -> services), so no module
imports the one that imports it. The task modules are imported when Celery autodiscovers them (every
app's AppConfig.ready imports its tasks module, so the API process knows them too).
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def task_named(name: str):
    """The registered Celery task `name` (KeyError when no tasks module registered it)."""
    return current_app.tasks[name]


def enqueue_on_commit(name: str, *args: Any) -> None:
    """Queue task `name` with `args` once the current transaction commits (at once outside one): the
    worker must see the rows the transaction wrote."""
    transaction.on_commit(lambda: task_named(name).delay(*args))
