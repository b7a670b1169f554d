"""Reads for projects, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F

from labelhub.accounts.selectors import organization_ids_for, role_require
from labelhub.core.errors import NotFound

from .models import Project


def project_get(*, user, project_id, roles: Iterable[str] | None = None, action: str = "") -> Project:
    """A project of one of the user's organizations, else NotFound (another organization's projects do
    not exist for you). With `roles`, the user's role there must be one of them (Forbidden otherwise)."""
    try:
        pk = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("No such project.") from None
    project = Project.objects.filter(pk=pk, organization_id__in=organization_ids_for(user)).first()
    if project is None:
        raise NotFound("No such project.")
    if roles is not None:
        role_require(user=user, organization_id=project.organization_id, roles=roles, action=action)
    return project


def project_counts(*, project: Project) -> dict:
    """Images, tasks per stage and status, and predictions per status. Read through the project's
    reverse relations (tasks, images -> predictions): projects imports no app above it."""
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
        "tasks": project.tasks.count(),
        "by_stage": by_stage,
        "predictions": predictions,
    }
