"""Import jobs: the upload stored and queued on the `cpu` queue, then run (the all-or-nothing import
itself is imports.py) and its outcome recorded on the job."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.queue import enqueue_on_commit
from labelhub.projects.models import Project

from . import imports
from .jobs import IMPORT_JOBS
from .models import Import, ImportStatus

log = logging.getLogger(__name__)


@transaction.atomic
def import_create(
    *,
    project: Project,
    fh: BinaryIO,
    file_name: str,
    size: int,
    format: str,  # noqa: A002 - the API's name
    target: str = "annotations",
    model_name: str = "",
    user=None,
    repair: bool = False,
) -> Import:
    """Store an uploaded dataset file and queue its import on the `cpu` queue once this commits. Checked
    here: the request (format, target, size) and the file's cheap checks (imports.import_precheck: a
    zip's entries, sizes and CRCs, the JSON nesting limit), so those answer 400 with nothing stored; the
    rest of the file's contents is the job's."""
    if format not in imports.IMPORT_FORMATS:
        raise DomainError(f"format is one of {list(imports.IMPORT_FORMATS)}.", field="format")
    if target not in imports.IMPORT_TARGETS:
        raise DomainError(f"as is one of {list(imports.IMPORT_TARGETS)}.", field="as")
    if size > settings.LABELHUB_IMPORT_MAX_BYTES:
        raise DomainError(
            f"The file is {size} bytes; the limit is {settings.LABELHUB_IMPORT_MAX_BYTES}.",
            field="file",
            code="file_too_large",
        )
    imports.import_precheck(fh=fh, file_name=file_name, fmt=format)
    job = Import.objects.create(
        project=project,
        format=format,
        target=target,
        model_name=model_name,
        repair=bool(repair),
        file_name=(file_name or "file")[:300],
        size_bytes=size,
        created_by=user,
    )
    job.file.save(f"{job.id}.upload", File(fh), save=False)
    try:
        job.save(update_fields=["file"])
    except BaseException:  # storage is not transactional: the row rolls back, so must the file
        job.file.storage.delete(job.file.name)
        raise
    enqueue_on_commit("labelhub.datasets.run_import", job.id)
    return job


def import_run(*, import_id: int) -> Import | None:
    """Run an import job: the whole file in one transaction (imports.import_file), then record what it
    wrote or every problem. Idempotent: a finished job is left as it is; an interrupted one (its
    transaction rolled back) runs again from the stored file."""
    job = Import.objects.select_related("project", "created_by").filter(id=import_id).first()
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    token = IMPORT_JOBS.claim(job.id)
    if token is None:
        return job  # another run holds it
    outcome: dict[str, Any]
    try:
        with IMPORT_JOBS.heartbeat(job.id, token), job.file.open("rb") as fh:
            result = imports.import_file(
                project=job.project,
                fh=fh,
                file_name=job.file_name,
                fmt=job.format,
                target=job.target,
                user=job.created_by,
                model_name=job.model_name,
                repair=job.repair,
            )
        written = result.images_matched or result.images_created
        outcome = {
            "status": ImportStatus.DONE,
            "result": asdict(result),
            "progress_done": written,
            "progress_total": written,
        }
    except DomainError as exc:  # a refused file: every problem is on the job
        details = exc.details if isinstance(exc.details, dict) else {}
        outcome = {
            "status": ImportStatus.FAILED,
            "error": {"code": exc.code, "message": exc.message, "field": exc.field},
            "problems": details.get("problems", []),
            "more_problems": details.get("more_problems", 0),
        }
    except Exception as exc:  # recorded on the job; the API shows it
        log.exception("import %s failed", job.id)
        outcome = {
            "status": ImportStatus.FAILED,
            "error": {
                "code": "import_failed",
                "message": f"{type(exc).__name__}: {exc}"[:2000],
                "field": None,
            },
        }
    name = job.file.name
    if not IMPORT_JOBS.held(job.id, token).update(file="", finished_at=timezone.now(), **outcome):
        log.warning("import %s: run %s lost its claim to a later run", job.id, token)
        job.refresh_from_db()
        return job
    if name:  # the upload has served its purpose
        job.file.storage.delete(name)
    job.refresh_from_db()
    return job
