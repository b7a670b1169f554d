"""Export jobs are claimed by a conditional update: a redelivered message never writes an export another
run is writing, a stale running one (its worker died) runs again, and the sweep finishes pending ones
whose message was lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labelhub.datasets import services
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
    services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.RUNNING and export.started_at == started and not export.file


@pytest.mark.django_db
def test_a_stale_running_export_runs_again(org_a, settings):
    export = pending_export(org_a)
    old = timezone.now() - timedelta(seconds=settings.LABELHUB_JOB_STALE_SECONDS + 5)
    Export.objects.filter(pk=export.pk).update(status=ExportStatus.RUNNING, started_at=old, progress_done=7)
    services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE and export.file


@pytest.mark.django_db
def test_the_sweep_finishes_an_export_whose_message_was_lost(org_a, django_capture_on_commit_callbacks):
    export = pending_export(org_a)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_sweep() == {"exports": 1, "imports": 0}
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE
    assert services.jobs_sweep() == {"exports": 0, "imports": 0}
