"""Reads for tasks and annotations, always scoped to the projects the caller may see."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.core.errors import NotFound
from labelhub.projects.selectors import project_ids_visible

from .models import AnnotationRevision, Task


def tasks_visible(*, user) -> QuerySet[Task]:
    return Task.objects.filter(project_id__in=project_ids_visible(user)).select_related(
        "image", "project", "annotation", "assignee"
    )


def task_get(*, user, task_id: int) -> Task:
    task = tasks_visible(user=user).filter(id=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    return task


def annotation_revision_get(*, task: Task, number: int | None = None) -> AnnotationRevision | None:
    """The given revision of a task's annotation, or the current one; None when nothing was saved yet."""
    annotation = task.annotation
    wanted = annotation.current_revision if number is None else number
    revision = annotation.revisions.filter(number=wanted).select_related("author").first()
    if revision is None and number is not None:
        raise NotFound(f"Revision {number} does not exist.", field="revision")
    return revision
