"""Reads for exports, always scoped to the caller's organizations."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.accounts.selectors import organization_ids_for
from labelhub.core.errors import NotFound

from .models import Export, Import


def exports_visible(*, user) -> QuerySet[Export]:
    return Export.objects.filter(project__organization_id__in=organization_ids_for(user)).select_related(
        "project"
    )


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
    return Import.objects.filter(project__organization_id__in=organization_ids_for(user)).select_related(
        "project"
    )
