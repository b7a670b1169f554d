"""Export jobs are claimed by a conditional update: a redelivered message never writes an export another
run is writing, a stale running one (its worker died) runs again, and the sweep finishes pending ones
whose message was lost."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from labelhub.datasets import archive, exports, jobs
from labelhub.datasets.models import Export, ExportStatus


def pending_export(org_a) -> Export:
    # No on-commit callbacks run inside the test transaction: the queued message is "lost".
    response = org_a.clients["manager"].post(
        f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
    )
    assert response.status_code == 202, response.json()
    export = Export.objects.get(pk=response.json()["id"])
    assert export.status == ExportStatus.PENDING
    return export


@pytest.mark.django_db
def test_a_redelivered_message_leaves_a_running_export_alone(org_a):
    export = pending_export(org_a)
    started = timezone.now()
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING, started_at=started)
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.RUNNING and export.started_at == started and not export.file


@pytest.mark.django_db
def test_a_stale_running_export_runs_again(org_a, settings):
    export = pending_export(org_a)
    old = timezone.now() - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS + 5)
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING, started_at=old, progress_done=7)
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.file


@pytest.mark.django_db
def test_the_sweep_finishes_an_export_whose_message_was_lost(org_a, django_capture_on_commit_callbacks):
    export = pending_export(org_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.jobs_sweep() == {"exports": 1, "imports": 0}
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE
    assert jobs.jobs_sweep() == {"exports": 0, "imports": 0}


@pytest.mark.django_db
def test_a_long_running_export_with_a_live_heartbeat_is_left_alone(org_a, settings):
    """Started long ago (longer than the stale window) but its heartbeat is fresh: its worker is alive, so
    neither the sweep nor a redelivered message takes it over (before heartbeats, one would have)."""
    export = pending_export(org_a)
    old = timezone.now() - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS * 3)
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.RUNNING, started_at=old, heartbeat_at=timezone.now(), attempts=1
    )
    assert jobs.jobs_sweep() == {"exports": 0, "imports": 0}
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.RUNNING and export.attempts == 1 and not export.file


@pytest.mark.django_db
def test_a_stale_heartbeat_is_claimed_again_and_counted(org_a, settings):
    export = pending_export(org_a)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS + 5)
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.RUNNING, started_at=stale, heartbeat_at=stale, attempts=1
    )
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.file and export.attempts == 2
    assert export.heartbeat_at >= now


@pytest.mark.django_db
def test_a_run_that_lost_its_claim_writes_nothing(org_a, settings):
    """Run 1 stalled past the stale window and run 2 claimed the export: run 1's writes are conditional
    on its claim, so it leaves neither a status nor an archive behind."""
    from labelhub.core.jobs import ClaimLost
    from labelhub.datasets.jobs import EXPORT_JOBS

    export = pending_export(org_a)
    assert EXPORT_JOBS.claim(export.pk) == 1
    stale = timezone.now() - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS + 5)
    Export.objects.filter(pk=export.pk).update(heartbeat_at=stale)
    assert EXPORT_JOBS.claim(export.pk) == 2
    storage = Export._meta.get_field("file").storage
    with pytest.raises(ClaimLost):
        archive.archive_write(Export.objects.select_related("project").get(pk=export.pk), 1)
    export.refresh_from_db()
    assert export.status == ExportStatus.RUNNING and export.attempts == 2 and not export.file
    folder = Path(storage.path(f"projects/{org_a.project.id}/exports"))
    assert not folder.exists() or not any(folder.iterdir())


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_stamps_a_running_export(org_a, settings):
    from labelhub.datasets.jobs import EXPORT_JOBS

    settings.LABELHUB_JOB_HEARTBEAT_SECONDS = 0.05
    export = Export.objects.create(project=org_a.project, format="coco")  # a row no run was sent for
    token = EXPORT_JOBS.claim(export.pk)
    first = Export.objects.get(pk=export.pk).heartbeat_at
    with EXPORT_JOBS.heartbeat(export.pk, token):
        deadline = time.monotonic() + 10
        while Export.objects.get(pk=export.pk).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.05)
    assert Export.objects.get(pk=export.pk).heartbeat_at > first
    # another run's claim: the beats of run `token` stamp nothing
    Export.objects.filter(pk=export.pk).update(attempts=token + 1)
    assert EXPORT_JOBS.heartbeat(export.pk, token).beat() == 0
