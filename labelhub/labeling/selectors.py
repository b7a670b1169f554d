"""Reads for tasks and annotations, always scoped to the projects the caller may see."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import NotFound
from labelhub.core.prepared import Prepared
from labelhub.projects.selectors import project_ids_visible, project_visible

from .models import Annotation, AnnotationRevision, EventKind, Task, TaskEvent


def tasks_visible(*, user) -> QuerySet[Task]:
    """The tasks of the projects `user` may see, with their image and annotation."""
    return Task.objects.filter(project_id__in=project_ids_visible(user)).select_related("image", "annotation")


# Sentinels of the prepared reads below: ids no row has, a revision number no annotation reaches (in
# the range of its field: Django compiles an out-of-range integer to "no rows").
_TASK, _ANNOTATION, _NUMBER = -(2**62) - 21, -(2**62) - 22, 2**31 - 7

_task_by_id = Prepared(
    lambda task_id: Task.objects.filter(id=task_id).select_related(
        "image", "project", "annotation", "assignee"
    )[:1],
    _TASK,
)
_revision = Prepared(
    lambda annotation_id, number: AnnotationRevision.objects.filter(
        annotation_id=annotation_id, number=number
    ).select_related("author")[:1],
    _ANNOTATION,
    _NUMBER,
)


def task_get(*, user, task_id: int) -> Task:
    """A task the user may see (with its image, project, annotation and assignee), else NotFound.
    Read by primary key, then checked against its project (`project_visible`)."""
    if not 0 < task_id < 2**63:
        raise NotFound("No such task.")  # no query with an id the database cannot hold
    found = _task_by_id(task_id)
    if not found or not project_visible(user=user, project=found[0].project):
        raise NotFound("No such task.")
    return found[0]


def revision_current(*, annotation: Annotation) -> AnnotationRevision | None:
    """The annotation's current revision; None when nothing was saved yet. The one query for it."""
    if annotation.current_revision == 0:
        return None
    found = _revision(annotation.pk, annotation.current_revision)
    if not found:
        return None
    found[0].annotation = annotation  # as the related manager's read sets it
    return found[0]


def revision_current_id() -> Subquery:
    """The id of a task's current revision, as a subquery to annotate a Task queryset with (null: none)."""
    return Subquery(
        AnnotationRevision.objects.filter(
            annotation__task=OuterRef("pk"), number=OuterRef("annotation__current_revision")
        ).values("id")[:1]
    )


def annotation_revision_get(*, task: Task, number: int | None = None) -> AnnotationRevision | None:
    """The given revision of a task's annotation, or the current one; None when nothing was saved yet."""
    if number is None:
        return revision_current(annotation=task.annotation)
    revision = task.annotation.revisions.filter(number=number).select_related("author").first()
    if revision is None:
        raise NotFound(f"Revision {number} does not exist.", field="revision")
    return revision


def task_gold_get(*, user, task: Task) -> dict:
    """Whether the task is a gold task and its known-correct regions: for managers and owners only."""
    role_require(
        user=user,
        organization_id=task.project.organization_id,
        roles=MANAGING_ROLES,
        action="see or mark gold tasks",
    )
    return {"task": task.pk, "is_gold": task.is_gold, "regions": task.gold_regions}


def task_events_visible(*, user, task: Task) -> QuerySet[TaskEvent]:
    """The task's timeline events in commit order. Gold status is for managers and owners only: an
    annotator or reviewer never sees the event that marked a task gold, so a gold task reads like any;
    nor other people's passes over a honeypot or a consensus task."""
    events = task.events.select_related("actor").order_by("created_at", "id")
    if role_of(user=user, organization_id=task.project.organization_id) not in MANAGING_ROLES:
        events = events.exclude(kind=EventKind.GOLD_MARKED)
        project = task.project
        if task.stage == project.first_stage and (
            (task.is_gold and project.honeypot_rate > 0) or (not task.is_gold and task.replicas.exists())
        ):
            # A task several people annotate independently (a honeypot, a consensus pass): each sees
            # only their own pass, as on a task handed to them alone.
            events = events.filter(actor=user)
    return events
