"""Interactive evaluation: NoC@85/90 of the configured segmentation backend on accepted tasks, run on
the `cpu` queue under its claim.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.jobs import ClaimLost, JobKind
from labelhub.core.queue import enqueue_on_commit
from labelhub.labeling.models import Task
from labelhub.predictions.backends import image_pixels
from labelhub.projects.models import Project

from .dataset import accepted_revisions
from .models import Evaluation, EvaluationStatus

log = logging.getLogger(__name__)


EVALUATION_JOBS = JobKind(Evaluation, waiting=(EvaluationStatus.QUEUED,), running=EvaluationStatus.RUNNING)


EVALUATION_LIMITS: dict[str, tuple[int, int]] = {"max_clicks": (1, 20), "max_tasks": (1, 1000)}


def evaluation_request(
    *, project: Project, user=None, options: dict[str, Any] | None = None, enqueue: bool = True
) -> Evaluation:
    """Queue an evaluation of the project's configured interactive backend (SAM or classical) on its
    accepted tasks, by the standard click protocol (workers.sam.clicks). Options: ``max_clicks``
    (1-20, default 20) and ``max_tasks`` (the first N accepted tasks by id; default all)."""
    values = dict(options or {})
    unknown = sorted(set(values) - set(EVALUATION_LIMITS))
    if unknown:
        raise DomainError(f"Unknown evaluation option {unknown[0]}.", field=unknown[0])
    for key, value in values.items():
        lo, hi = EVALUATION_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise DomainError(f"{key} is a whole number from {lo} to {hi}.", field=key)
    if settings.LABELHUB_SAM_RANDOM_SEED and not settings.LABELHUB_SAM_CHECKPOINT:
        # Never report quality for random weights: their figures mean nothing.
        raise DomainError(
            "The segmentation backend runs random SAM weights; their accuracy is not evaluated.",
            code="random_weights",
            field="backend",
        )
    pairs = accepted_revisions(project=project)[: values.get("max_tasks", 1000)]
    if not pairs:
        raise DomainError(
            "The project has no accepted tasks to evaluate on.", code="not_enough_data", field="project"
        )
    evaluation = Evaluation.objects.create(
        project=project,
        requested_by=user,
        max_clicks=values.get("max_clicks", 20),
        dataset=[list(p) for p in pairs],
        progress={"tasks_done": 0, "tasks": len(pairs), "objects_done": 0},
    )
    if enqueue:
        enqueue_on_commit("labelhub.learning.gpu.run_evaluation", evaluation.id)
    return evaluation


def evaluation_run(*, evaluation_id: int) -> Evaluation | None:
    """Run a queued evaluation (idempotent: one done or failed is left alone, returns None). Each
    region of a task's accepted revision is one object; NoC@85/90 are means over all objects. A live run
    holding the evaluation (core/jobs.py) makes a redelivered message do nothing."""
    token = EVALUATION_JOBS.claim(evaluation_id)
    if token is None:
        log.info("evaluation %s: not claimable (finished, or a live run holds it)", evaluation_id)
        return None
    evaluation = Evaluation.objects.get(id=evaluation_id)
    try:
        with EVALUATION_JOBS.heartbeat(evaluation_id, token):
            return _evaluate_claimed(evaluation, token)
    except ClaimLost:
        log.warning(
            "evaluation %s: run %s lost its claim to a later run; it wrote nothing", evaluation_id, token
        )
        return None


def _evaluate_claimed(evaluation: Evaluation, token: int) -> Evaluation:
    """Run `evaluation`, claimed by run `token`; every write is conditional on the claim (ClaimLost)."""
    from labelhub.labeling.models import AnnotationRevision
    from labelhub.predictions.backends import segmentation_backend
    from labelhub.regions.validation import region_mask
    from workers.sam.clicks import run_clicks

    evaluation_id = evaluation.id
    m = evaluation.max_clicks
    try:
        backend = segmentation_backend()
        evaluation.backend, evaluation.model_version = backend.model_name, backend.checkpoint_sha256
        revisions = AnnotationRevision.objects.in_bulk([r for _, r in evaluation.dataset])
        tasks = Task.objects.select_related("image").in_bulk([t for t, _ in evaluation.dataset])
        results, n85, n90 = [], [], []
        for done, (task_id, revision_id) in enumerate(evaluation.dataset, start=1):
            image = tasks[task_id].image
            objects = []
            regions = revisions[revision_id].regions
            if regions:
                [embedding] = backend.embed([image_pixels(image)])
            for region in regions:
                gt = region_mask(region, image.height, image.width)
                if not gt.any():
                    continue
                run = run_clicks(backend, embedding, gt, max_clicks=m)
                row = {
                    "region": region.get("id"),
                    "label": region.get("label"),
                    "clicks": [[round(x, 1), round(y, 1), lab] for x, y, lab in run.clicks],
                    "ious": [round(v, 6) for v in run.ious],
                    "noc85": run.noc(0.85, m),
                    "noc90": run.noc(0.90, m),
                }
                n85.append(row["noc85"])
                n90.append(row["noc90"])
                objects.append(row)
            results.append({"task": task_id, "revision": revision_id, "objects": objects})
            EVALUATION_JOBS.write(
                evaluation_id,
                token,
                progress={"tasks_done": done, "tasks": len(evaluation.dataset), "objects_done": len(n85)},
            )
    except ClaimLost:
        raise
    except Exception as exc:
        log.exception("evaluation %s failed", evaluation_id)
        evaluation.status = EvaluationStatus.FAILED
        evaluation.error = f"{type(exc).__name__}: {exc}"[:2000]
        evaluation.finished_at = timezone.now()
        EVALUATION_JOBS.write(
            evaluation_id,
            token,
            status=evaluation.status,
            error=evaluation.error,
            finished_at=evaluation.finished_at,
            backend=evaluation.backend,
            model_version=evaluation.model_version,
        )
        return evaluation
    evaluation.results = results
    evaluation.progress = {"tasks_done": len(results), "tasks": len(results), "objects_done": len(n85)}
    evaluation.noc85 = round(sum(n85) / len(n85), 4) if n85 else None
    evaluation.noc90 = round(sum(n90) / len(n90), 4) if n90 else None
    evaluation.status = EvaluationStatus.DONE
    evaluation.finished_at = timezone.now()
    EVALUATION_JOBS.write(
        evaluation_id,
        token,
        **{
            f: getattr(evaluation, f)
            for f in (
                "results",
                "progress",
                "noc85",
                "noc90",
                "status",
                "finished_at",
                "backend",
                "model_version",
            )
        },
    )
    return evaluation
