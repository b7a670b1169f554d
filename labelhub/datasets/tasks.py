"""Celery tasks of the `cpu` queue: writing export archives, running dataset imports."""

from __future__ import annotations

from celery import shared_task

from . import exports, import_jobs, jobs


@shared_task(name="labelhub.datasets.run_export", bind=True, acks_late=True)
def run_export(self, export_id: int) -> dict:  # noqa: ARG001 - bound for retries and request info
    """Write the archive of an export snapshot. Idempotent: a finished export is left as it is, an
    interrupted one is written again from its (immutable) snapshot."""
    export = exports.export_run(export_id=export_id)
    return {"export": export_id, "status": export.status if export else "missing"}


@shared_task(name="labelhub.datasets.run_import", bind=True, acks_late=True)
def run_import(self, import_id: int) -> dict:  # noqa: ARG001 - bound for retries and request info
    """Run a dataset import job. Idempotent: a finished job is left as it is; an interrupted one (its
    transaction rolled back) runs again from the stored file."""
    job = import_jobs.import_run(import_id=import_id)
    return {"import": import_id, "status": job.status if job else "missing"}


@shared_task(name="labelhub.datasets.jobs_sweep")
def jobs_sweep() -> dict:
    """celery beat: queue again pending and stale running exports and imports."""
    return jobs.jobs_sweep()
