"""Reads for projects, scoped to the projects the caller may see: every project of the organizations
they own or manage, and the projects they are a member of in the others."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q, QuerySet

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require, roles_by_organization
from labelhub.core.errors import NotFound

from .models import Project, ProjectMember


def project_ids_visible(user) -> QuerySet:
    """Ids of the projects `user` may see, as a subquery (filter with `project_id__in=`)."""
    # The user's memberships are read first (one row per organization): nesting them as subqueries cost
    # more to compile than the reads themselves on every request that lists anything.
    roles = roles_by_organization(user=user)
    managed = [org for org, role in roles if role in MANAGING_ROLES]
    others = [org for org, role in roles if role not in MANAGING_ROLES]
    joined = (
        list(
            ProjectMember.objects.filter(user=user, project__organization_id__in=others).values_list(
                "project_id", flat=True
            )
        )
        if others
        else []
    )
    return Project.objects.filter(Q(organization_id__in=managed) | Q(id__in=joined)).values("id")


def project_visible(*, user, project: Project) -> bool:
    """Whether `user` may see `project`: owners and managers of its organization, and its members.

    Two single-table reads by primary key or unique pair instead of the nested subquery of
    `project_ids_visible`, whose compilation alone cost a task read more than its queries (the hot
    path of the labeling app: one object whose project is already in hand)."""
    role = role_of(user=user, organization_id=project.organization_id)
    if role is None:
        return False
    return role in MANAGING_ROLES or ProjectMember.objects.filter(project_id=project.id, user=user).exists()


def projects_visible(*, user) -> QuerySet[Project]:
    return Project.objects.filter(id__in=project_ids_visible(user))


def project_get(*, user, project_id, roles: Iterable[str] | None = None, action: str = "") -> Project:
    """A project the user may see, else NotFound (other organizations' projects, and the projects of
    their own organization they are not a member of, do not exist for them). With `roles`, the user's
    role in the organization must be one of them (Forbidden otherwise)."""
    try:
        pk = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("No such project.") from None
    if not 0 < pk < 2**63:
        raise NotFound("No such project.")
    project = projects_visible(user=user).filter(pk=pk).first()
    if project is None:
        raise NotFound("No such project.")
    if roles is not None:
        role_require(user=user, organization_id=project.organization_id, roles=roles, action=action)
    return project


def project_counts(*, project: Project) -> dict:
    """Images, videos, tasks per stage and status, and predictions per status. Read through the project's
    reverse relations (tasks, images -> predictions, videos): projects imports no app above it."""
    by_stage: dict[str, dict[str, int]] = {name: {} for name in project.stage_names}
    for row in project.tasks.values("stage", "status").annotate(n=Count("id")):
        by_stage.setdefault(row["stage"], {})[row["status"]] = row["n"]
    predictions = {
        row["status"]: row["n"]
        for row in project.images.filter(predictions__isnull=False)
        .values(status=F("predictions__status"))
        .annotate(n=Count("predictions__id"))
    }
    return {
        "images": project.images.count(),
        "videos": project.videos.count(),
        "tasks": project.tasks.count(),
        "by_stage": by_stage,
        "predictions": predictions,
    }
