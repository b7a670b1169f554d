"""Training of project models: the request (checked against LIMITS), the run on the `cpu` queue under its
claim, and the retraining rule (every `retrain_every` accepted tasks).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent
from labelhub.core.jobs import ClaimLost, JobKind
from labelhub.core.queue import enqueue_on_commit
from labelhub.labeling.models import Task, TaskStatus
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.projects.models import Project

from .dataset import accepted_revisions, examples, split_heldout
from .models import ModelVersion, ProjectModel, TrainingJob, VersionStatus
from .promotion import version_promote
from .weights import _device

log = logging.getLogger(__name__)


# Bounds of what a training request may ask for: (minimum, maximum).
LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "steps_per_epoch": (1, 10000),
    "minutes": (0.05, 24 * 60),
    "batch_size": (1, 64),
    "crop": (32, 2048),
    "lr": (1e-6, 1.0),
    "width": (4, 64),
    "depth": (1, 6),
    "seed": (0, 2**31 - 1),
    "heldout_fraction": (0.05, 0.5),
    "min_area": (0, 10**6),
}


INTEGER = {"epochs", "steps_per_epoch", "batch_size", "crop", "width", "depth", "seed", "min_area"}


# min_area: pre-label pieces (and pinholes) smaller than this many pixels are merged away.
DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "steps_per_epoch": 10,
    "seed": 0,
    "heldout_fraction": 0.2,
    "min_area": 16,
}


@functools.cache
def code_version() -> str:
    """The git commit of the running code, else ``"unknown"`` (a deployed image without .git)."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()[:40] or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _clean_request(*, project: Project, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(LIMITS) - {"stuff_classes"}
    if unknown:
        name = sorted(unknown)[0]
        raise DomainError(f"Unknown training option {name}.", field=name)
    cleaned = {**DEFAULTS}
    for key, value in values.items():
        if key == "stuff_classes":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DomainError("stuff_classes is a list of class names.", field=key)
            missing = sorted(set(value) - set(project.class_names))
            if missing:
                raise DomainError(f"stuff_classes names unknown classes {missing}.", field=key)
            cleaned[key] = value
            continue
        lo, hi = LIMITS[key]
        ok_type = isinstance(value, int) if key in INTEGER else isinstance(value, int | float)
        if value is None and key == "minutes":
            continue
        if isinstance(value, bool) or not ok_type or not lo <= value <= hi:
            kind = "a whole number" if key in INTEGER else "a number"
            raise DomainError(f"{key} is {kind} from {lo:g} to {hi:g}.", field=key)
        cleaned[key] = value
    return cleaned


def training_request(
    *,
    project: Project,
    user=None,
    options: dict[str, Any] | None = None,
    trigger: str = "manual",
    enqueue: bool = True,
) -> TrainingJob:
    """Queue the training of a new model version on the project's accepted tasks (the `train` queue;
    ``enqueue=False``: the caller runs :func:`version_train` itself). Options: the keys of LIMITS and
    ``stuff_classes``. Needs two accepted tasks (one held out)."""
    options = _clean_request(project=project, values=dict(options or {}))
    pairs = accepted_revisions(project=project)
    if len(pairs) < 2:
        raise DomainError(
            f"Training needs at least 2 accepted tasks (one is held out); the project has {len(pairs)}.",
            code="not_enough_data",
            field="project",
        )
    seed = int(options.pop("seed"))
    train, heldout = split_heldout(pairs, fraction=float(options.pop("heldout_fraction")), seed=seed)
    stuff = options.pop("stuff_classes", [])
    classes = project.class_names
    with transaction.atomic():
        pm, _ = ProjectModel.objects.select_for_update().get_or_create(project=project)
        number = (pm.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            project_model=pm,
            number=number,
            config={**options, "n_classes": len(classes) + 1, "seed": seed},
            classes=classes,
            stuff_classes=stuff,
            seed=seed,
            code_version=code_version(),
            dataset={"train": train, "heldout": heldout},
        )
        job = TrainingJob.objects.create(version=version, trigger=trigger, requested_by=user)
        pm.accepted_at_last_training = len(pairs)
        pm.save(update_fields=["accepted_at_last_training"])
        if enqueue:
            enqueue_on_commit("labelhub.learning.train.train_version", version.id)
    return job


# The running claims (core/jobs.py): a queued version or evaluation, or one whose run's heartbeat went
# stale (its worker was killed; acks_late redelivers the message). A redelivered message while the first
# run is alive finds the row held and does nothing.
TRAINING_JOBS = JobKind(ModelVersion, waiting=(VersionStatus.QUEUED,), running=VersionStatus.TRAINING)


def version_train(*, version_id: int, on_epoch: Callable[[dict], None] | None = None) -> ModelVersion | None:
    """Train a queued version, store its weights and metrics, and apply the promotion rule; the
    version's `progress` follows every epoch (and ``on_epoch`` gets each row: the CLI's bar).
    Idempotent: a version already trained or failed is left as it is (returns None), and so is one a live
    run holds (core/jobs.py)."""
    token = TRAINING_JOBS.claim(version_id)
    if token is None:
        log.info("model version %s: not claimable (finished, or a live run holds it)", version_id)
        return None
    TrainingJob.objects.filter(version_id=version_id).update(attempts=F("attempts") + 1)
    version = ModelVersion.objects.select_related("project_model__project").get(id=version_id)
    try:
        with TRAINING_JOBS.heartbeat(version_id, token):
            return _train_claimed(version, token, on_epoch=on_epoch)
    except ClaimLost:
        log.warning(
            "model version %s: run %s lost its claim to a later run; it wrote nothing", version_id, token
        )
        return None


def _train_claimed(version: ModelVersion, token: int, *, on_epoch) -> ModelVersion:
    """Train `version`, claimed by run `token`; every write is conditional on the claim (ClaimLost)."""
    from workers.train import TrainConfig, train_model

    version_id = version.id
    try:
        classes = version.classes
        train_x, train_y = examples([tuple(p) for p in version.dataset["train"]], classes=classes)
        held = [tuple(p) for p in version.dataset["heldout"]]
        held_x, held_y = examples(held, classes=classes)
        fields = {f for f in TrainConfig.__dataclass_fields__}
        config = TrainConfig(
            **{k: v for k, v in version.config.items() if k in fields},
            device=_device(),
            threads=settings.LABELHUB_TRAIN_THREADS or None,
        )

        def progress(row: dict) -> None:
            TRAINING_JOBS.write(version.id, token, progress=row)
            if on_epoch is not None:
                on_epoch(row)

        result = train_model(
            train_x, train_y, config=config, heldout_images=held_x, heldout_labels=held_y, progress=progress
        )
    except ClaimLost:
        raise
    except Exception as exc:
        log.exception("training model version %s failed", version_id)
        version.status = VersionStatus.FAILED
        version.error = f"{type(exc).__name__}: {exc}"[:2000]
        version.finished_at = timezone.now()
        TRAINING_JOBS.write(
            version_id, token, status=version.status, error=version.error, finished_at=version.finished_at
        )
        return version
    with transaction.atomic():
        if not TRAINING_JOBS.held(version_id, token).select_for_update().exists():
            raise ClaimLost(f"model version {version_id}, run {token}")
        version.weights_sha256 = hashlib.sha256(result.weights).hexdigest()
        version.weights.save("weights.pt", ContentFile(result.weights), save=False)
        version.metrics = {k: None if v is None else round(v, 6) for k, v in result.metrics.items()}
        version.history = result.history
        version.progress = result.history[-1] if result.history else {}
        version.parameters = result.parameters
        version.config = {**version.config, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch}
        version.status = VersionStatus.READY
        version.finished_at = timezone.now()
        version.save()
    version_promote(version=version, heldout_images=held_x, heldout_labels=held_y)
    return version


def on_task_stage_changed(event: DomainEvent) -> None:
    """Subscriber of "task.stage_changed" (after commit): a task accepted past the last stage may
    trigger the retraining rule."""
    if event.payload.get("to_stage") != STAGE_DONE or event.project_id is None:
        return
    project = Project.objects.filter(id=event.project_id, retrain_every__gt=0).first()
    if project is not None:
        retrain_due(project=project)


def retrain_due(*, project: Project) -> TrainingJob | None:
    """The retraining rule: queue a new version once `project.retrain_every` more tasks were accepted
    since the last training was queued, unless one is queued or training. Returns the job queued."""
    if project.retrain_every <= 0:
        return None
    accepted = Task.objects.filter(project=project, status=TaskStatus.DONE).count()
    pm = ProjectModel.objects.filter(project=project).first()
    last = pm.accepted_at_last_training if pm else 0
    if accepted - last < project.retrain_every:
        return None
    if pm and pm.versions.filter(status__in=[VersionStatus.QUEUED, VersionStatus.TRAINING]).exists():
        return None
    options = {}
    latest = pm.versions.order_by("-number").first() if pm else None
    if latest is not None:  # the same recipe as the last version
        keys = set(LIMITS) - {"heldout_fraction"}
        options = {k: v for k, v in latest.config.items() if k in keys}
        options["stuff_classes"] = latest.stuff_classes
    return training_request(project=project, options=options, trigger=TrainingJob.Trigger.RETRAIN)


def retrain_sweep() -> list[int]:
    """Apply the retraining rule to every project that has one. Returns the version ids queued."""
    queued = []
    for project in Project.objects.filter(retrain_every__gt=0).order_by("id"):
        job = retrain_due(project=project)
        if job is not None:
            queued.append(job.version_id)
    return queued
