"""Reads for exports, always scoped to the projects the caller may see."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
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


def export_download_check(*, user, export: Export) -> None:
    """Who may download an export's archive: owners and managers, and every member of the project when
    it sets `members_download_exports` (Forbidden otherwise)."""
    if not export.project.members_download_exports:
        role_require(
            user=user,
            organization_id=export.project.organization_id,
            roles=MANAGING_ROLES,
            action="download exports of this project",
        )


def export_snapshot(*, export: Export) -> list[tuple[int, int, int, str]]:
    """(image id, task id, revision number, subset) of every item, in image-id order."""
    return list(
        export.items.order_by("image_id").values_list("image_id", "task_id", "revision_number", "subset")
    )


def imports_visible(*, user) -> QuerySet[Import]:
    return Import.objects.filter(project_id__in=project_ids_visible(user)).select_related("project")


def export_diff(*, export: Export, against: Export) -> dict:
    """What changed from dataset version `against` to `export` (two snapshots of one project):
    items (images) added, removed and changed (another annotation revision), and for each changed
    item the region ids added, removed and changed (`labelhub.regions.validation.regions_diff`); the
    regions of an added or removed item count as added or removed. Classes filters are not applied:
    this compares the revisions the snapshots hold."""
    from labelhub.core.errors import DomainError
    from labelhub.labeling.models import AnnotationRevision
    from labelhub.regions.validation import regions_diff

    if against.project_id != export.project_id:
        raise DomainError("Both exports must be versions of the same project.", field="against")
    new = dict(export.items.values_list("image_id", "revision_id"))
    old = dict(against.items.values_list("image_id", "revision_id"))
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(new) & set(old) if new[i] != old[i])
    wanted = {new[i] for i in added + changed} | {old[i] for i in removed + changed}
    wanted.discard(None)
    revisions = {
        rid: (number, regions)
        for rid, number, regions in AnnotationRevision.objects.filter(id__in=wanted).values_list(
            "id", "number", "regions"
        )
    }

    def regions_of(revision_id: int | None) -> list[dict]:
        return revisions[revision_id][1] if revision_id in revisions else []

    def number_of(revision_id: int | None) -> int:
        return revisions[revision_id][0] if revision_id in revisions else 0

    counts = {"added": 0, "removed": 0, "changed": 0}
    for i in added:
        counts["added"] += len(regions_of(new[i]))
    for i in removed:
        counts["removed"] += len(regions_of(old[i]))
    changes = []
    for i in changed:
        d = regions_diff(regions_of(old[i]), regions_of(new[i]))
        for key in counts:
            counts[key] += len(d[key])
        changes.append(
            {"image": i, "from_revision": number_of(old[i]), "to_revision": number_of(new[i]), **d}
        )
    return {
        "export": export.id,
        "against": against.id,
        "items": {
            "added": added,
            "removed": removed,
            "changed": changed,
            "unchanged": len(new) - len(added) - len(changed),
        },
        "regions": counts,
        "changes": changes,
    }
