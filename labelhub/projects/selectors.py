"""Reads for projects, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Iterable

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
