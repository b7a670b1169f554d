"""The manager's task list: one project's tasks with filters, a sort order and pages that stay cheap at
100,000 tasks.

Pages are read with LIMIT/OFFSET on an index that matches the sort (Task.Meta.indexes: `task_list_id`,
`task_list_updated`); the total is counted only up to COUNT_CAP rows (a capped count reads at most that
many index entries, so the first page costs the same with 10^5 or 10^6 tasks) and reported as a lower
bound beyond it. Open comments per row and the filters on them are EXISTS / COUNT subqueries over the
page's rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.core.errors import DomainError
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_get

from .models import AnnotationRevision, Comment, Task, TaskStatus

COUNT_CAP = 10_000
SORTS = {
    "id": ("id",),
    "-id": ("-id",),
    "updated_at": ("updated_at", "id"),
    "-updated_at": ("-updated_at", "-id"),
}
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class TaskListFilters:
    """What the list is narrowed to; None means no narrowing. `assignee` 0 means no assignee."""

    stage: str | None = None
    status: str | None = None
    assignee: int | None = None
    gold: bool | None = None
    open_comments: bool | None = None
    source: str | None = None  # "ai": the current revision still holds an AI region; "human": none


def _bool(raw: str | None, field: str) -> bool | None:
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise DomainError(f"{field} is true or false.", field=field)


def _int(raw: str | None, field: str, *, low: int, high: int) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DomainError(f"{field} is a whole number.", field=field) from None
    if not low <= value <= high:
        raise DomainError(f"{field} is between {low} and {high}.", field=field)
    return value


def task_list_filters_parse(*, params, project: Project) -> TaskListFilters:
    """Query parameters into filters; a bad value is a DomainError naming the parameter. An unknown
    stage is refused (it names the project's stages); an assignee id is not checked against the users
    table: someone else's id answers an empty list, like an id that does not exist."""
    stage = params.get("stage") or None
    if stage is not None and stage not in [*project.stage_names, "done"]:
        raise DomainError(f"stage is one of {[*project.stage_names, 'done']}.", field="stage")
    status = params.get("status") or None
    if status is not None and status not in TaskStatus.values:
        raise DomainError(f"status is one of {TaskStatus.values}.", field="status")
    raw_assignee = params.get("assignee")
    assignee = 0 if raw_assignee == "none" else _int(raw_assignee, "assignee", low=1, high=2**63 - 1)
    source = params.get("source") or None
    if source is not None and source not in ("ai", "human"):
        raise DomainError("source is ai or human.", field="source")
    return TaskListFilters(
        stage=stage,
        status=status,
        assignee=assignee,
        gold=_bool(params.get("gold"), "gold"),
        open_comments=_bool(params.get("open_comments"), "open_comments"),
        source=source,
    )


def _open_comments() -> Subquery:
    counted = (
        Comment.objects.filter(task=OuterRef("pk"), resolved=False)
        .order_by()
        .values("task")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _ai_in_current() -> Exists:
    """The task's current revision holds a region whose source is "ai" (JSON containment on the
    revision's regions: one probe of the revision's unique (annotation, number) index per task)."""
    return Exists(
        AnnotationRevision.objects.filter(
            annotation__task=OuterRef("pk"),
            number=OuterRef("annotation__current_revision"),
            regions__contains=[{"source": "ai"}],
        )
    )


def task_list_query(*, project: Project, filters: TaskListFilters, sort: str = "id") -> QuerySet[Task]:
    """The project's tasks narrowed by `filters` in `sort` order, each with `open_comments` (a count)."""
    if sort not in SORTS:
        raise DomainError(f"sort is one of {sorted(SORTS)}.", field="sort")
    tasks = Task.objects.filter(project=project)
    if filters.stage is not None:
        tasks = tasks.filter(stage=filters.stage)
    if filters.status is not None:
        tasks = tasks.filter(status=filters.status)
    if filters.assignee == 0:
        tasks = tasks.filter(assignee__isnull=True)
    elif filters.assignee is not None:
        tasks = tasks.filter(assignee_id=filters.assignee)
    if filters.gold is not None:
        tasks = tasks.filter(is_gold=filters.gold)
    if filters.open_comments is not None:
        has_open = Exists(Comment.objects.filter(task=OuterRef("pk"), resolved=False))
        tasks = tasks.filter(has_open if filters.open_comments else ~has_open)
    if filters.source is not None:
        tasks = tasks.filter(_ai_in_current() if filters.source == "ai" else ~_ai_in_current())
    return tasks.order_by(*SORTS[sort])


def task_list_count(tasks: QuerySet[Task]) -> tuple[int, bool]:
    """(count, exact): the number of matching tasks up to COUNT_CAP; beyond it (COUNT_CAP, False)."""
    n = tasks.order_by().values("pk")[: COUNT_CAP + 1].count()
    return (n, True) if n <= COUNT_CAP else (COUNT_CAP, False)


def task_list_page(*, user, project_id, params) -> dict:
    """One page of a project's task list for its managers: {count, count_exact, page, page_size,
    has_next, results: [Task with open_comments]}. NotFound for a project the user may not see,
    Forbidden for a member who does not manage."""
    project = project_get(user=user, project_id=project_id, roles=MANAGING_ROLES, action="list tasks")
    filters = task_list_filters_parse(params=params, project=project)
    tasks = task_list_query(project=project, filters=filters, sort=params.get("sort") or "id")
    page = _int(params.get("page"), "page", low=1, high=10**6) or 1
    size = _int(params.get("page_size"), "page_size", low=1, high=MAX_PAGE_SIZE) or 50
    start = (page - 1) * size
    rows = list(
        tasks.select_related("image", "assignee", "annotation").annotate(open_comments=_open_comments())[
            start : start + size + 1
        ]
    )
    count, exact = task_list_count(tasks)
    return {
        "count": count,
        "count_exact": exact,
        "page": page,
        "page_size": size,
        "has_next": len(rows) > size,
        "results": rows[:size],
    }


__all__ = ["COUNT_CAP", "TaskListFilters", "task_list_page", "task_list_query"]
