"""Exports: the snapshot (which tasks, read in one transaction into export items) and its run (the
archive written by archive.py, then the "export.finished" event)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from labelhub.core.errors import DomainError
from labelhub.core.events import ExportFinished, announce
from labelhub.core.jobs import ClaimLost
from labelhub.core.queue import enqueue_on_commit
from labelhub.labeling.models import Task, TaskStatus
from labelhub.labeling.selectors import revision_current_id
from labelhub.projects.models import Project
from labelhub.qa.report import export_quality_check

from .archive import archive_write
from .formats import FORMATS
from .jobs import EXPORT_JOBS
from .models import Export, ExportItem, ExportStatus, Subset
from .split import split_clean

log = logging.getLogger(__name__)


# --- input ---------------------------------------------------------------------------------------


FILTER_FLAGS = ("accepted", "annotated", "include_empty", "include_unaccepted")


def filters_clean(filters: Any, *, project: Project) -> dict:
    """{"classes": [names] | None, "stages": [names] | None, "accepted": bool, "annotated": bool,
    "include_empty": bool}. Which tasks a snapshot holds, exactly:
    - accepted (default true): tasks accepted by the last stage of the pipeline (status done);
    - annotated (default false): tasks not accepted yet of which a human saved a revision;
    - include_empty (default false): tasks not accepted yet with no human revision (never labelled,
      at most AI pre-labels): without it, no unlabelled image passes for a true negative.
    The older `include_unaccepted: true` still means every task (annotated and include_empty)."""
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise DomainError("filters is an object.", field="filters")
    unknown = set(filters) - {"classes", "stages", *FILTER_FLAGS}
    if unknown:
        raise DomainError(f"Unknown keys: {sorted(unknown)}.", field="filters")
    out: dict[str, Any] = {"classes": None, "stages": None}
    for key, known in (("classes", project.class_names), ("stages", project.stage_names)):
        value = filters.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
            raise DomainError(f"{key} is a non-empty list of names.", field=f"filters.{key}")
        for i, name in enumerate(value):
            if name not in known:
                raise DomainError(
                    f"Unknown {key[:-1] if key == 'stages' else 'class'} {name!r}; the project has {known}.",
                    field=f"filters.{key}[{i}]",
                    code="unknown_class" if key == "classes" else "unknown_stage",
                )
        out[key] = list(dict.fromkeys(value))
    flags = {}
    for key in FILTER_FLAGS:
        value = filters.get(key, key == "accepted")
        if not isinstance(value, bool):
            raise DomainError(f"{key} is true or false.", field=f"filters.{key}")
        flags[key] = value
    legacy = flags.pop("include_unaccepted")
    out["accepted"] = flags["accepted"]
    out["annotated"] = flags["annotated"] or legacy
    out["include_empty"] = flags["include_empty"] or legacy
    if not (out["accepted"] or out["annotated"] or out["include_empty"]):
        raise DomainError("The filters select no task: accepted, annotated and include_empty are all false.",
                          field="filters.accepted")  # fmt: skip
    return out


def _tasks_selected(project: Project, filters: dict):
    """The tasks a snapshot holds (see filters_clean)."""
    from django.db.models import Exists, OuterRef, Q

    from labelhub.labeling.models import AnnotationRevision

    # Image datasets: a video's tasks are exported by the video formats (datasets/video.py).
    tasks = Task.objects.filter(project=project, image__isnull=False)
    human = Exists(AnnotationRevision.objects.filter(annotation__task=OuterRef("pk"), author__isnull=False))
    accepted = Q(status=TaskStatus.DONE)
    wanted = Q(pk__in=[])
    if filters.get("accepted", True):
        wanted |= accepted
    if filters.get("annotated") and filters.get("include_empty"):
        wanted |= ~accepted
    elif filters.get("annotated"):
        wanted |= ~accepted & Q(human)
    elif filters.get("include_empty"):
        wanted |= ~accepted & ~Q(human)
    tasks = tasks.filter(wanted)
    if filters["stages"]:
        tasks = tasks.filter(stage__in=filters["stages"])
    return tasks


# --- snapshot ------------------------------------------------------------------------------------


@transaction.atomic
def export_create(
    *,
    project: Project,
    user=None,
    format: str,  # noqa: A002 - the API's name
    filters: Any = None,
    split: Any = None,
    include_images: bool = False,
) -> Export:
    """Take a dataset snapshot: one ExportItem per selected task with the number and row of its current
    revision, read by one statement inside this transaction. Queue the archive once it commits."""
    if format not in FORMATS:
        raise DomainError(
            f"Unknown format {format!r}; one of {sorted(FORMATS)}.", field="format", code="unknown_format"
        )
    if not isinstance(include_images, bool):
        raise DomainError("include_images is true or false.", field="include_images")
    filters = filters_clean(filters, project=project)
    split = split_clean(split)
    export = Export.objects.create(
        project=project,
        format=format,
        filters=filters,
        split=split,
        include_images=include_images,
        created_by=user,
    )
    tasks = _tasks_selected(project, filters)
    rows = (
        tasks.annotate(revision_id=revision_current_id())
        .order_by("image_id")
        .values_list("id", "image_id", "annotation__current_revision", "revision_id")
    )
    batch: list[ExportItem] = []
    total = 0
    for task_id, image_id, number, revision_id in rows.iterator(
        chunk_size=settings.LABELHUB_EXPORT_CHUNK_SIZE
    ):
        batch.append(
            ExportItem(
                export=export,
                image_id=image_id,
                task_id=task_id,
                revision_number=number or 0,
                revision_id=revision_id,
                subset=Subset.TRAIN,
            )
        )
        if len(batch) >= 2000:
            ExportItem.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    ExportItem.objects.bulk_create(batch)
    total += len(batch)
    export.progress_total = total
    # The export's quality report (its tasks' honeypot and review evidence), kept with it and written
    # into its manifest; a project may refuse exports below its accuracy threshold (409).
    export.quality = export_quality_check(
        project=project, task_ids=ExportItem.objects.filter(export=export).values("task_id")
    )
    export.save(update_fields=["progress_total", "quality"])
    export_id = export.id
    enqueue_on_commit("labelhub.datasets.run_export", export_id)
    return export


def export_run(*, export_id: int) -> Export | None:
    """Write the archive of a snapshot to storage, streaming: the items are read in chunks, each image's
    entries are written as it comes, and the zip lives in a temporary file until it is uploaded."""
    export = Export.objects.select_related("project").filter(id=export_id).first()
    if export is None or export.status == ExportStatus.DONE:
        return export
    # The claim: only one run wins a pending (or stale running) export; a redelivered message for an
    # export another worker is writing finds nothing to claim and leaves it alone (see core/jobs.py).
    token = EXPORT_JOBS.claim(export.id, progress_done=0, error="")
    if token is None:
        return export
    try:
        with EXPORT_JOBS.heartbeat(export.id, token):
            archive_write(export, token)
    except ClaimLost:
        log.warning("export %s: run %s lost its claim to a later run; it wrote nothing", export.id, token)
        export.refresh_from_db()
        return export
    export.refresh_from_db()
    export_finished_hooks(export)
    return export


def export_finished_hooks(export: Export) -> None:
    """Tell the world an export finished (done or failed): the "export.finished" domain event, which the
    webhooks app delivers to the organization's and the project's webhooks. A subscriber's problem never
    fails the export."""
    announce(
        ExportFinished(
            export=export.id,
            project=export.project_id,
            format=export.format,
            status=export.status,
            images=export.progress_done,
            regions=export.annotations_count,
            size_bytes=export.size_bytes,
            sha256=export.sha256,
            download_url=export.download_path,
            error=export.error,
        ),
        organization_id=export.project.organization_id,
        project_id=export.project_id,
    )
