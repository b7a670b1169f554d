"""Reads of the QA app that check who may see them."""

from __future__ import annotations

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import NotFound
from labelhub.labeling.selectors import task_get
from labelhub.projects.models import Project

from .models import QualitySample, SampleKind


def report_require(*, viewer, project: Project) -> None:
    """The quality report rests on honeypots: managers and owners only (Forbidden for others)."""
    role_require(
        user=viewer,
        organization_id=project.organization_id,
        roles=MANAGING_ROLES,
        action="read the quality report",
    )


def task_feedback(*, user, task_id: int) -> dict:
    """The caller's latest honeypot score on this task, where the project enables immediate feedback.
    Every other case answers the same 404, so the endpoint tells nothing before a honeypot's submit."""
    task = task_get(user=user, task_id=task_id, honeypots=True)  # read after the honeypot was handed back
    sample = None
    if task.project.immediate_feedback and task.is_gold:
        sample = (
            QualitySample.objects.filter(task=task, user=user, kind=SampleKind.GOLD).order_by("-id").first()
        )
    if sample is None:
        raise NotFound("No feedback for this task.")
    project = task.project
    return {
        "task": task.pk,
        "passed": sample.units == sample.correct,
        "accuracy": round(sample.correct / sample.units, 6) if sample.units else None,
        "units": sample.units,
        "correct": sample.correct,
        "errors": sample.errors,
        "matches": sample.data.get("matches", []),
        "missing": sample.data.get("missing", []),
        "extra": sample.data.get("extra", []),
        "expected": task.gold_regions,
        "bound": {"metric": project.quality_metric, "value": project.quality_bound},
    }
