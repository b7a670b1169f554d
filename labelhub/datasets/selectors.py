"""Reads for exports, always scoped to the projects the caller may see."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.core.errors import NotFound
from labelhub.projects.selectors import project_ids_visible

from .models import Export, Import


def exports_visible(*, user) -> QuerySet[Export]:
    return Export.objects.filter(project_id__in=project_ids_visible(user)).select_related("project")


def export_get(*, user, export_id: int) -> Export:
    export = exports_visible(user=user).filter(id=export_id).first()
    if export is None:
        raise NotFound("No such export.")
    return export


def export_snapshot(*, export: Export) -> list[tuple[int, int, int, str]]:
    """(image id, task id, revision number, subset) of every item, in image-id order."""
    return list(
        export.items.order_by("image_id").values_list("image_id", "task_id", "revision_number", "subset")
    )


def imports_visible(*, user) -> QuerySet[Import]:
    return Import.objects.filter(project_id__in=project_ids_visible(user)).select_related("project")
