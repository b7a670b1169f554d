"""The job claims of exports and imports (core/jobs.py) and the sweep that queues again what a lost
message or a dead worker left behind."""

from __future__ import annotations

from django.utils import timezone

from labelhub.core.jobs import JobKind
from labelhub.core.queue import send_or_log

from .models import Export, ExportStatus, Import, ImportStatus

# The running claims of exports and imports (core/jobs.py): pending, or running with a stale heartbeat.
EXPORT_JOBS = JobKind(Export, waiting=(ExportStatus.PENDING,), running=ExportStatus.RUNNING)
IMPORT_JOBS = JobKind(Import, waiting=(ImportStatus.PENDING,), running=ImportStatus.RUNNING)


def jobs_sweep(*, now=None) -> dict[str, int]:
    """Queue again every export and import that is pending (its message may be lost with a broker
    outage) or stale running (its worker died). Safe to repeat: each run claims its row first."""
    now = now or timezone.now()
    exports = list(Export.objects.filter(EXPORT_JOBS.claimable(now)).values_list("id", flat=True))
    jobs = list(Import.objects.filter(IMPORT_JOBS.claimable(now)).values_list("id", flat=True))
    for export_id in exports:
        send_or_log("labelhub.datasets.run_export", export_id)
    for job_id in jobs:
        send_or_log("labelhub.datasets.run_import", job_id)
    return {"exports": len(exports), "imports": len(jobs)}
