"""Reads for tasks and annotations, always scoped to the projects the caller may see."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from labelhub.accounts.models import MANAGING_ROLES, Membership
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import NotFound
from labelhub.core.prepared import Prepared
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_ids_visible, project_visible

from .models import Annotation, AnnotationRevision, EventKind, Task, TaskEvent


def honeypots_hidden(*, user) -> Q:
    """The tasks hidden from `user`: the honeypots (gold tasks of a project that mixes them into queues
    at a rate, `honeypot_rate` > 0) of the organizations they do not manage, other than the one they
    hold or that is reserved for them. A honeypot stays in the first stage's pool, each labeler's pass
    over it is scored and undone, so its row (first stage for ever, held by one labeler after another)
    would tell it apart from ordinary tasks: it is absent from lists and reads like a task that does not
    exist, while the one a labeler holds reads like any task of theirs (nothing in it says gold)."""
    managed = Membership.objects.filter(user=user, role__in=MANAGING_ROLES).values("organization_id")
    return (
        Q(is_gold=True, project__honeypot_rate__gt=0)
        & ~Q(assignee=user)
        & ~Q(project__organization_id__in=managed)
    )


def tasks_visible(*, user, project_id: int | None = None) -> QuerySet[Task]:
    """The tasks of the projects `user` may see (honeypots hidden: `honeypots_hidden`), with their image
    and annotation; with `project_id`, those of that project (none if the user may not see it), its
    visibility checked by two single-table reads rather than a subquery of every visible project
    compiled into each query of a task list."""
    if project_id is None:
        tasks = Task.objects.filter(project_id__in=project_ids_visible(user))
    else:
        project = next(iter(_project_of(project_id)), None)
        if project is None or not project_visible(user=user, project=project):
            return Task.objects.none()
        tasks = Task.objects.filter(project_id=project_id)
        if project.honeypot_rate <= 0 or role_of(user=user, organization_id=project.organization_id) in MANAGING_ROLES:
            # nothing to hide here: no honeypots mixed in, or the caller manages them (no subquery)
            return tasks.select_related("image", "annotation")
    return tasks.exclude(honeypots_hidden(user=user)).select_related("image", "annotation")


def _honeypot_hidden(task: Task, user) -> bool:
    if not (task.is_gold and task.project.honeypot_rate > 0) or task.assignee_id == user.pk:
        return False
    return role_of(user=user, organization_id=task.project.organization_id) not in MANAGING_ROLES


# Sentinels of the prepared reads below: ids no row has, a revision number no annotation reaches (in
# the range of its field: Django compiles an out-of-range integer to "no rows").
_TASK, _ANNOTATION, _NUMBER, _PROJECT = -(2**62) - 21, -(2**62) - 22, 2**31 - 7, -(2**62) - 24

_project_of = Prepared(
    lambda pk: Project.objects.filter(pk=pk).only("id", "organization_id", "honeypot_rate")[:1], _PROJECT
)
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


def task_get(*, user, task_id: int, honeypots: bool = False) -> Task:
    """A task the user may see (with its image, project, annotation and assignee), else NotFound.
    Read by primary key, then checked against its project (`project_visible`) and, unless `honeypots`
    (a caller that checks for itself, like immediate feedback), `honeypots_hidden`."""
    if not 0 < task_id < 2**63:
        raise NotFound("No such task.")  # no query with an id the database cannot hold
    found = _task_by_id(task_id)
    if not found or not project_visible(user=user, project=found[0].project):
        raise NotFound("No such task.")
    if not honeypots and _honeypot_hidden(found[0], user):
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
