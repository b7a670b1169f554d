"""Reads for project models, scoped to the caller's organizations."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.accounts.selectors import organization_ids_for
from labelhub.core.errors import NotFound

from .models import Evaluation, ModelVersion, ProjectModel


def versions_for_project(*, project_id: int) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(project_model__project_id=project_id)
        .select_related("project_model", "job")
        .order_by("-number")
    )


def version_get(*, user, version_id) -> ModelVersion:
    """A model version of one of the user's organizations' projects, else NotFound."""
    try:
        pk = int(version_id)
    except (TypeError, ValueError):
        raise NotFound("No such model version.") from None
    version = (
        ModelVersion.objects.select_related("project_model__project", "job")
        .filter(pk=pk, project_model__project__organization_id__in=organization_ids_for(user))
        .first()
    )
    if version is None:
        raise NotFound("No such model version.")
    return version


def active_version_id(*, project_id: int) -> int | None:
    pm = ProjectModel.objects.filter(project_id=project_id).only("active_version_id").first()
    return pm.active_version_id if pm else None


def evaluation_get(*, user, evaluation_id) -> Evaluation:
    """An evaluation of one of the user's organizations' projects, else NotFound."""
    try:
        pk = int(evaluation_id)
    except (TypeError, ValueError):
        raise NotFound("No such evaluation.") from None
    evaluation = Evaluation.objects.filter(
        pk=pk, project__organization_id__in=organization_ids_for(user)
    ).first()
    if evaluation is None:
        raise NotFound("No such evaluation.")
    return evaluation
