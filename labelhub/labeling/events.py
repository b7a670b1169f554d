"""Events of the labeling domain, in two senses:

- the task's timeline: `event_record` writes a TaskEvent row (who, when, from which stage to which),
  inside the service's transaction; the timeline and the metrics read these rows, never rewrite them;
- domain events for the apps above labeling (webhooks, qa): a tiny in-process publish/subscribe, so that
  labeling never imports them. Subscribers register in their AppConfig.ready(). `publish` hands an event
  to each subscriber once the current transaction commits (transaction.on_commit; at once outside a
  transaction), so nobody hears of a change that rolled back. A subscriber registered with
  `in_transaction=True` runs at once inside the publisher's transaction instead: for records that must
  commit or roll back with the change itself (a gold task's score is part of its submission).

An after-commit subscriber that fails is logged and never fails the change that was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from .models import Task, TaskEvent

log = logging.getLogger(__name__)

# The domain events published (their `name`s).
TASK_STAGE_CHANGED = "task.stage_changed"  # a task moved to another stage (or to done)
TASK_SUBMITTED = "task.submitted"  # first-stage work handed on: payload {"task", "user", "revision"}
EXPORT_FINISHED = "export.finished"  # published by datasets: an export is done or failed


def event_record(
    task: Task,
    kind: str,
    *,
    at: datetime,
    actor=None,
    from_stage: str = "",
    to_stage: str = "",
    revision: int | None = None,
    data: dict | None = None,
) -> TaskEvent:
    """One row of the task's timeline."""
    return TaskEvent.objects.create(
        task=task,
        kind=kind,
        actor=actor,
        from_stage=from_stage,
        to_stage=to_stage,
        revision=revision,
        data=data or {},
        created_at=at,
    )


@dataclass(frozen=True)
class DomainEvent:
    name: str
    organization_id: int
    project_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)  # JSON-serializable
    # In-process extras for in-transaction subscribers (model instances); never serialized.
    context: dict[str, Any] = field(default_factory=dict, compare=False)


Handler = Callable[[DomainEvent], None]
_after_commit: dict[str, list[Handler]] = {}
_in_transaction: dict[str, list[Handler]] = {}


def subscribe(name: str, handler: Handler, *, in_transaction: bool = False) -> None:
    """Call `handler(event)` for every published event named `name` (registering twice is harmless)."""
    handlers = (_in_transaction if in_transaction else _after_commit).setdefault(name, [])
    if handler not in handlers:
        handlers.append(handler)


def publish(event: DomainEvent) -> None:
    """Deliver `event`: in-transaction subscribers now, the others once the transaction commits."""
    for handler in _in_transaction.get(event.name, ()):
        handler(event)
    handlers = list(_after_commit.get(event.name, ()))
    if handlers:
        transaction.on_commit(lambda: _dispatch(event, handlers))


def _dispatch(event: DomainEvent, handlers: list[Handler]) -> None:
    for handler in handlers:
        try:
            handler(event)
        except Exception:  # the change is committed; a subscriber's failure must not undo or hide it
            log.exception("subscriber %r of %s failed", handler, event.name)


def stage_changed_publish(task: Task, *, from_stage: str, action: str, actor, revision: int | None) -> None:
    """Announce that `task` moved from `from_stage` to its current stage."""
    publish(
        DomainEvent(
            name=TASK_STAGE_CHANGED,
            organization_id=task.project.organization_id,
            project_id=task.project_id,
            payload={
                "task": task.pk,
                "project": task.project_id,
                "image": task.image_id,
                "from_stage": from_stage,
                "to_stage": task.stage,
                "status": task.status,
                "action": action,
                "actor": getattr(actor, "username", None),
                "revision": revision,
            },
        )
    )
