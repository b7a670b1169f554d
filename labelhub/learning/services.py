"""Writes for project models: training requests, the training run, promotion and pre-labelling.

The compute is `workers.train` (no Django); this module turns accepted annotations into its inputs,
stores what it returns and applies the promotion rule.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import subprocess
import time
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
from labelhub.core.jobs import ClaimLost, Heartbeat, JobKind
from labelhub.core.queue import enqueue_on_commit
from labelhub.images.models import Image
from labelhub.labeling.models import Task, TaskStatus
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.predictions.backends import image_pixels
from labelhub.predictions.models import PredictionStatus
from labelhub.predictions.services import (
    PRESEGMENT_JOBS,
    prediction_fail,
    prediction_save_regions,
    prediction_start,
    region_from_mask,
)
from labelhub.projects.models import Prelabel, Project

from .dataset import accepted_revisions, examples, prelabel_maps, split_heldout
from .models import (
    Evaluation,
    EvaluationStatus,
    ModelVersion,
    ProjectModel,
    TrainingJob,
    VersionStatus,
)
from .tiled import prelabel_regions_tiled

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
# The held-out figure that decides a promotion (mean over the foreground classes).
PROMOTION_METRIC = "dice"


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
EVALUATION_JOBS = JobKind(Evaluation, waiting=(EvaluationStatus.QUEUED,), running=EvaluationStatus.RUNNING)


def _device() -> str:
    if settings.LABELHUB_TRAIN_DEVICE:
        return settings.LABELHUB_TRAIN_DEVICE
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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


def _current_scores(*, pm: ProjectModel, version: ModelVersion, images, labels) -> dict:
    """What the current pre-labeller scores on these held-out tasks: the active version run on the
    images, or (no version promoted yet) the pre-labels the tasks started from."""
    from workers.train import mean_scores, segmentation_scores
    from workers.train.inference import predict_labels

    n = len(version.classes) + 1
    if pm.active_version_id is not None:
        active = pm.active_version
        model, config = _load(active)
        preds = [predict_labels(model, image, device=config.device) for image in images]
        source = active.prediction_model_name
    else:
        preds = prelabel_maps([tuple(p) for p in version.dataset["heldout"]], classes=version.classes)
        source = "prelabels"
    rows = [segmentation_scores(p, t, classes=list(range(1, n))) for p, t in zip(preds, labels, strict=True)]
    return {"source": source, "metrics": {k: None if v is None else round(v, 6) for k, v in mean_scores(rows).items()}}


def version_promote(*, version: ModelVersion, heldout_images, heldout_labels) -> bool:
    """The promotion rule: the version becomes the project's pre-labeller only if its held-out
    PROMOTION_METRIC beats the current pre-labeller's on the same held-out tasks. Both are recorded."""
    with transaction.atomic():
        pm = ProjectModel.objects.select_for_update().get(id=version.project_model_id)
        current = _current_scores(pm=pm, version=version, images=heldout_images, labels=heldout_labels)
        mine = version.metrics.get(PROMOTION_METRIC) or 0.0
        theirs = current["metrics"].get(PROMOTION_METRIC) or 0.0
        promoted = mine > theirs
        version.promotion = {
            "rule": f"held-out {PROMOTION_METRIC} above the current pre-labeller's",
            "candidate": version.metrics,
            "current": current,
            "promoted": promoted,
        }
        fields = ["promotion"]
        if promoted:
            version.promoted_at = timezone.now()
            fields.append("promoted_at")
            pm.active_version = version
            pm.save(update_fields=["active_version"])
        version.save(update_fields=fields)
    return promoted


_MODELS: dict[int, tuple[Any, Any]] = {}


def _load(version: ModelVersion):
    """The version's network in eval mode (cached per process: versions never change)."""
    from workers.train import load_model

    if version.id not in _MODELS:
        with version.weights.open("rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != version.weights_sha256:
            raise DomainError(f"The weights of {version.prediction_model_name} do not match their SHA-256.")
        _MODELS.clear()  # one model per process is enough for a queue worker
        _MODELS[version.id] = load_model(data, device=_device())
    return _MODELS[version.id]


def prelabel_enqueue(*, image_ids: list[int]) -> None:
    """Queue pre-labelling by the project's own model once the transaction commits."""
    if image_ids:
        enqueue_on_commit("labelhub.learning.train.prelabel_images", list(image_ids))


def on_images_added(event: DomainEvent) -> None:
    """Subscriber of "images.added" (after commit): new images of a project whose `prelabel` is
    "project_model" are pre-labelled by its promoted version."""
    if not (event.payload["presegment"] and settings.LABELHUB_PRESEGMENT_ON_UPLOAD):
        return
    if event.payload["prelabel"] == Prelabel.PROJECT_MODEL:
        prelabel_enqueue(image_ids=event.payload["image_ids"])


def on_task_stage_changed(event: DomainEvent) -> None:
    """Subscriber of "task.stage_changed" (after commit): a task accepted past the last stage may
    trigger the retraining rule."""
    if event.payload.get("to_stage") != STAGE_DONE or event.project_id is None:
        return
    project = Project.objects.filter(id=event.project_id, retrain_every__gt=0).first()
    if project is not None:
        retrain_due(project=project)


def images_prelabel(*, image_ids: list[int]) -> list[int]:
    """Pre-label images with their project's promoted model version (one prediction per image, named
    after the version, checkpoint = its weights' SHA-256). Images of a project without a promoted
    version are left alone. Idempotent. Returns the ids of the predictions made."""
    from workers.train.inference import label_regions, predict_probabilities

    made = []
    images = Image.objects.select_related("project").filter(id__in=image_ids).order_by("id")
    for image in images:
        pm = ProjectModel.objects.select_related("active_version").filter(project=image.project).first()
        version = pm.active_version if pm else None
        if version is None:
            continue
        version.project_model = pm
        name, sha = version.prediction_model_name, version.weights_sha256
        if image.predictions.filter(
            model_name=name, checkpoint_sha256=sha, status=PredictionStatus.OK
        ).exists():
            continue
        prediction = prediction_start(image=image, model_name=name, checkpoint_sha256=sha)
        if prediction is None:  # a live run holds it
            continue
        started = time.perf_counter()
        try:
            model, config = _load(version)
            stuff = {version.classes.index(c) + 1 for c in version.stuff_classes}
            min_area = int(version.config.get("min_area", 16))
            if image.is_pyramid:  # tile by tile at full resolution, read from the pyramid (learning.tiled)
                with Heartbeat(PRESEGMENT_JOBS, [(prediction.id, prediction.claim_token)]):
                    regions = prelabel_regions_tiled(
                        image=image,
                        model=model,
                        device=config.device,
                        classes=version.classes,
                        stuff=stuff,
                        min_area=min_area,
                        prediction_id=prediction.id,
                    )
                prediction_save_regions(prediction=prediction, regions=regions, started=started)
                made.append(prediction.id)
                continue
            probs = predict_probabilities(model, image_pixels(image), device=config.device)
            regions = []
            for part in label_regions(probs, stuff=stuff, min_area=min_area):
                region = region_from_mask(
                    mask=part.mask,
                    project=image.project,
                    label=version.classes[part.class_index - 1],
                    score=part.score,
                    prediction_id=prediction.id,
                )
                if region is not None:
                    regions.append(region)
            prediction_save_regions(prediction=prediction, regions=regions, started=started)
            made.append(prediction.id)
        except Exception as exc:
            log.exception("pre-labelling image %s with %s failed", image.id, name)
            prediction_fail(prediction=prediction, error=f"{type(exc).__name__}: {exc}")
    return made


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


# --- Interactive evaluation: NoC@85/90 of the configured backend on accepted tasks ---------------

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
