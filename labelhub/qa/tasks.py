"""Celery tasks of the QA app (on the `cpu` queue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="labelhub.qa.figures_warm", acks_late=True)
def figures_warm(project_id: int) -> None:
    """Compute a project's default metrics figures and quality report into the cache after its samples
    changed (labelhub/qa/cache.py), so that the manager's next read finds them there."""
    from labelhub.projects.models import Project

    from .cache import warm_done
    from .metrics import project_metrics
    from .report import quality_report

    warm_done(project_id)
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    project_metrics(project=project)
    quality_report(project=project)  # per-user and windowed answers are cached on their first read
