"""Events of the labeling domain, in two senses:

- the task's timeline: `event_record` writes a TaskEvent row (who, when, from which stage to which),
  inside the service's transaction; the timeline and the metrics read these rows, never rewrite them;
- labeling's publisher of "task.stage_changed" for the apps above it (qa, webhooks, learning): the
  event and its payload are declared in the one catalogue, labelhub.core.events, where subscribers
  import them from; labeling never imports its subscribers.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import DateTimeField, Func

from labelhub.core.events import TaskStageChanged, announce

from .models import Task, TaskEvent


class ClockTimestamp(Func):
    """PostgreSQL's clock_timestamp(): the time of the insert itself, not the transaction's start."""

    template = "clock_timestamp()"
    output_field = DateTimeField()


__all__ = ["event_record", "stage_changed_publish"]


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
    """One row of the task's timeline. On PostgreSQL its time is the database clock at the insert, so
    event order is commit order: a task's events are written under its row lock (or after the change
    they follow committed), while `at` (the service's start) may predate a concurrent commit. `at` is
    the time elsewhere; the returned row's created_at is then unevaluated (re-read it if needed)."""
    return TaskEvent.objects.create(
        task=task,
        kind=kind,
        actor=actor,
        from_stage=from_stage,
        to_stage=to_stage,
        revision=revision,
        data=data or {},
        created_at=ClockTimestamp() if connection.vendor == "postgresql" else at,
    )


def stage_changed_publish(task: Task, *, from_stage: str, action: str, actor, revision: int | None) -> None:
    """Announce that `task` moved from `from_stage` to its current stage."""
    announce(
        TaskStageChanged(
            task=task.pk,
            project=task.project_id,
            image=task.image_id,
            from_stage=from_stage,
            to_stage=task.stage,
            status=task.status,
            action=action,
            actor=getattr(actor, "username", None),
            revision=revision,
        ),
        organization_id=task.project.organization_id,
        project_id=task.project_id,
    )
