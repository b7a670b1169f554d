"""Propagation: request (checked like an annotation write: the task's lease holder or a manager), run
(on a worker: the streaming loop of workers.video.propagate, results written into the task through the
one annotation write path every LABELHUB_VIDEO_PROPAGATE_CHUNK frames), cancel.

Seeds: the track's shape on the seed frame (a mask or polygons), or a prompt on that frame (points with
positive/negative labels, and/or a box, in the frame's pixels). SAM 2 takes the prompt natively on its
conditioning frame; the fallback asks the project's interactive segmenter (the backend a click in the
app uses: SAM when configured, else the classical one) for the seed mask and carries that. A prompt's
mask is written on the seed frame as a keyframe (a person chose the frame and placed the prompt) with
source "ai" and the model that made it.

Rules: a propagated shape never replaces a keyframe (a person's shape); the run stops before the next
keyframe of the track in its direction (what a person drew there is the better seed). Every shape
written names its model and version. A lost object (an empty mask) is written as `outside` and ends
the run; a prompt that gives an empty mask on the seed frame fails the job and writes nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import Conflict, DomainError
from labelhub.core.queue import enqueue_on_commit
from labelhub.labeling.annotations import WRITER_ROLES, Writer, annotation_write
from labelhub.labeling.leases import lease_require
from labelhub.labeling.models import Task
from labelhub.labeling.pipeline import done_refuse
from labelhub.labeling.selectors import revision_current
from labelhub.regions.validation import region_mask
from labelhub.videos.services import frame_array
from workers.geometry import mask_to_rle, rle_to_mask
from workers.video.propagate import run

from .models import Backend, Direction, JobStatus, PropagationJob

log = logging.getLogger(__name__)
TASK_NAMES = {Backend.SAM2: "labelhub.tracking.gpu.propagate", Backend.FLOW: "labelhub.tracking.propagate"}


def sam2_configured() -> bool:
    return bool(settings.LABELHUB_SAM2_CHECKPOINT or settings.LABELHUB_SAM2_RANDOM_SEED)


def _frames_planned(task: Task, seed: int, direction: str, count: int, keyframes: set[int]) -> list[int]:
    if direction == Direction.FORWARD:
        numbers = range(seed + 1, min(task.frame_stop, seed + 1 + count))
    else:
        numbers = range(seed - 1, max(task.frame_start, seed - count) - 1, -1)
    planned = []
    for n in numbers:
        if n in keyframes:  # stop before the next keyframe of the track
            break
        planned.append(n)
    return planned


def prompt_clean(*, points: Any, point_labels: Any, box: Any, height: int, width: int) -> dict:
    """A seed prompt checked against the frame (workers.sam.interface.validate_prompt, the rules of a click
    in the app): DomainError naming `points`, `point_labels` or `box` (code `invalid_prompt`) when one
    is malformed or outside the frame. Returns {points, point_labels, box} as plain lists (None where
    not given)."""
    from workers.sam import PromptError
    from workers.sam.interface import validate_prompt

    for name, value in (("points", points), ("point_labels", point_labels)):
        if isinstance(value, list) and len(value) > settings.LABELHUB_MAX_PROMPT_POINTS:
            raise DomainError(
                f"At most {settings.LABELHUB_MAX_PROMPT_POINTS} points per prompt.",
                field=name,
                code="too_many_points",
            )
    for name, value in (("points", points), ("point_labels", point_labels), ("box", box)):
        if value is not None and not isinstance(value, list):
            raise DomainError(f"{name} is a list.", field=name, code="invalid_prompt")
    try:
        prompt = validate_prompt((height, width), points=points, point_labels=point_labels, box=box)
    except PromptError as exc:
        raise DomainError(str(exc), field=exc.field, code="invalid_prompt") from exc
    return {
        "points": prompt.points.tolist() if prompt.points is not None else None,
        "point_labels": prompt.point_labels.tolist() if prompt.point_labels is not None else None,
        "box": prompt.box.tolist() if prompt.box is not None else None,
    }


@transaction.atomic
def propagation_request(
    *,
    task: Task,
    user,
    track: str,
    frame: int,
    direction: str,
    frames: int,
    backend: str = "auto",
    points: Any = None,
    point_labels: Any = None,
    box: Any = None,
    label: str | None = None,
) -> PropagationJob:
    """Queue a propagation of `track` from `frame`: seeded by the track's shape there, or, with
    `points` (+ `point_labels`) and/or `box`, by the mask that prompt gives on that frame (`label`
    names the class of a new track)."""
    role = role_require(
        user=user, organization_id=task.project.organization_id, roles=WRITER_ROLES, action="propagate tracks"
    )
    if not task.video_id:
        raise DomainError("Only a video task's tracks propagate.", field="task", code="not_a_video_task")
    done_refuse(task, what="its annotation is final")
    if role not in MANAGING_ROLES:
        lease_require(task=task, user=user)
    if direction not in Direction.values:
        raise DomainError("direction is 'forward' or 'backward'.", field="direction")
    limit = settings.LABELHUB_VIDEO_PROPAGATE_MAX_FRAMES
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= limit:
        raise DomainError(f"frames is a number of frames, 1..{limit}.", field="frames")
    if backend == "auto":
        backend = Backend.SAM2 if sam2_configured() else Backend.FLOW
    if backend not in Backend.values:
        raise DomainError("backend is 'auto', 'sam2' or 'flow'.", field="backend")
    if backend == Backend.SAM2 and not sam2_configured():
        raise DomainError(
            "No SAM 2 checkpoint is configured (LABELHUB_SAM2_CHECKPOINT); use backend 'flow'.",
            field="backend",
            code="model_unavailable",
        )
    current = revision_current(annotation=task.annotation)
    shapes = [r for r in (current.regions if current else []) if r.get("track") == track]
    seed = next((r for r in shapes if r.get("frame") == frame), None)
    video = task.video
    prompt = None
    if points is not None or point_labels is not None or box is not None:
        if (
            isinstance(frame, bool)
            or not isinstance(frame, int)
            or not task.frame_start <= frame < task.frame_stop
        ):
            raise DomainError(
                f"Frame {frame} is outside this task's frames {task.frame_start}..{task.frame_stop - 1}.",
                field="frame",
                code="invalid_frame",
            )
        prompt = prompt_clean(
            points=points, point_labels=point_labels, box=box, height=video.height, width=video.width
        )
        if seed is not None and seed.get("keyframe"):
            raise DomainError(
                f"Track {track!r} has a keyframe on frame {frame}: propagate from it (without points or "
                "box), or prompt on another frame.",
                field="frame",
                code="keyframe_exists",
            )
        track_label = shapes[0]["label"] if shapes else None
        if label is not None and track_label is not None and label != track_label:
            raise DomainError(
                f"Track {track!r} is {track_label!r}; a track keeps one class.",
                field="label",
                code="track_class_changed",
            )
        label = label or track_label
        if not label:
            raise DomainError(
                f"Track {track!r} has no shape yet: name its class (label).", field="label", code="required"
            )
        if label not in task.project.class_names:
            raise DomainError(
                f"Unknown class {label!r}; the project's classes are {task.project.class_names}.",
                field="label",
                code="unknown_class",
            )
        seed_rle = None
    else:
        if label is not None:
            raise DomainError(
                "label names the class of a track seeded by points or a box; a shape seed has its own.",
                field="label",
            )
        if seed is None:
            raise DomainError(
                f"Track {track!r} has no shape on frame {frame} (give points or a box to seed from a prompt).",
                field="frame",
                code="no_seed_shape",
            )
        if seed.get("outside"):
            raise DomainError(
                f"Track {track!r} is outside the view on frame {frame}.", field="frame", code="no_seed_shape"
            )
        mask = region_mask(seed, video.height, video.width)
        if not mask.any():
            raise DomainError("The seed shape is empty.", field="frame", code="no_seed_shape")
        label = seed["label"]
        seed_rle = mask_to_rle(mask)
    keyframes = {r["frame"] for r in shapes if r.get("keyframe")} - {frame}
    planned = _frames_planned(task, frame, direction, frames, keyframes)
    if not planned:
        raise DomainError(
            f"No frame to propagate to {direction} of frame {frame} in this task (its end, or a keyframe).",
            field="direction",
            code="nothing_to_propagate",
        )
    job = PropagationJob.objects.create(
        task=task,
        track=track,
        label=label,
        seed_frame=frame,
        seed_rle=seed_rle,
        seed_prompt=prompt,
        direction=direction,
        backend=backend,
        frames_total=len(planned),
        requested_by=user,
    )
    enqueue_on_commit(TASK_NAMES[backend], job.pk)
    return job


@transaction.atomic
def propagation_cancel(*, job: PropagationJob, user) -> PropagationJob:
    role_require(
        user=user,
        organization_id=job.task.project.organization_id,
        roles=WRITER_ROLES,
        action="cancel propagation",
    )
    job = PropagationJob.objects.select_for_update().get(pk=job.pk)
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        job.cancel_requested = True
        if job.status == JobStatus.QUEUED:
            job.status, job.finished_at = JobStatus.CANCELLED, timezone.now()
        job.save(update_fields=["cancel_requested", "status", "finished_at", "updated_at"])
    return job


_SAM2 = None


def _segment_prompt(backend, frame: np.ndarray, *, points=None, point_labels=None, box=None) -> np.ndarray:
    embedding = backend.embed([frame])[0]
    return backend.predict(embedding, points=points, point_labels=point_labels, box=box).mask


def propagator_for(backend: str, direction: str, *, prompted: bool = False):
    """A fresh propagator (SAM 2's model is loaded once per worker process and shared). `prompted`: the
    fallback is wrapped so that a prompt seed goes through the project's interactive segmenter (the
    backend of a click in the app) to become the seed mask."""
    global _SAM2
    if backend == Backend.FLOW:
        from workers.video.flow import FlowPropagator
        from workers.video.propagate import PromptSeeded

        if not prompted:
            return FlowPropagator()
        from labelhub.predictions.backends import segmentation_backend

        segmenter = segmentation_backend()
        return PromptSeeded(
            FlowPropagator(),
            lambda frame, **prompt: _segment_prompt(segmenter, frame, **prompt),
            {"name": segmenter.model_name, "version": segmenter.checkpoint_sha256},
        )
    from workers.video.sam2_tracker import Sam2Propagator, load_sam2

    if _SAM2 is None:
        seed = settings.LABELHUB_SAM2_RANDOM_SEED
        _SAM2 = load_sam2(
            settings.LABELHUB_SAM2_VARIANT,
            settings.LABELHUB_SAM2_CHECKPOINT or None,
            expected_sha256=settings.LABELHUB_SAM2_CHECKPOINT_SHA256 or None,
            seed=int(seed) if seed and not settings.LABELHUB_SAM2_CHECKPOINT else None,
            device=settings.LABELHUB_SAM2_DEVICE or "cpu",
            image_size=settings.LABELHUB_SAM2_IMAGE_SIZE or None,
        )
    return Sam2Propagator(_SAM2, reverse=direction == Direction.BACKWARD)


def _shape(job: PropagationJob, number: int, mask: np.ndarray, model: dict) -> dict:
    return {
        "id": f"{job.track}-{number}",
        "label": job.label,
        "kind": "mask",
        "rle": mask_to_rle(mask),
        "source": "ai",
        "frame": number,
        "track": job.track,
        "keyframe": False,
        "outside": not mask.any(),
        "occluded": False,
        "model": model,
    }


def _write(job: PropagationJob, shapes: list[dict]) -> bool:
    """Merge `shapes` into the task's current revision (never over a keyframe). False when the task
    can take no more (accepted meanwhile)."""
    for _attempt in range(5):
        task = Task.objects.select_related("project", "video").get(pk=job.task_id)
        current = revision_current(annotation=task.annotation)
        regions = list(current.regions) if current else []
        index = {(r.get("track"), r.get("frame")): i for i, r in enumerate(regions)}
        for shape in shapes:
            at = index.get((shape["track"], shape["frame"]))
            if at is None:
                index[(shape["track"], shape["frame"])] = len(regions)
                regions.append(shape)
            elif not regions[at].get("keyframe"):
                shape = {**shape, "id": regions[at]["id"]}
                regions[at] = shape
        try:
            annotation_write(
                task=task,
                author=None,
                base_revision=current.number if current else 0,
                regions=regions,
                writer=Writer.PROPAGATION,
            )
            return True
        except Conflict as exc:
            if exc.code != "stale_revision":
                return False
    raise Conflict("The task kept changing while propagating; try again.", code="stale_revision")


def propagation_run(job_id: int) -> PropagationJob:
    """Run a job on this worker: frames read one at a time from storage, results written every
    LABELHUB_VIDEO_PROPAGATE_CHUNK frames, progress on the job, cancel honoured between frames."""
    with transaction.atomic():
        job = (
            PropagationJob.objects.select_for_update(of=("self",))
            .select_related("task__video")
            .get(pk=job_id)
        )
        if job.status != JobStatus.QUEUED:
            return job  # cancelled while queued, or a redelivered message
        job.status = JobStatus.RUNNING
        job.save(update_fields=["status", "updated_at"])
    task, video = job.task, job.task.video
    try:
        propagator = propagator_for(job.backend, job.direction, prompted=job.seed_prompt is not None)
        model = {"name": propagator.model_name, "version": propagator.model_version}
        job.model_name, job.model_version = model["name"], model["version"][:200]
        job.save(update_fields=["model_name", "model_version", "updated_at"])
        current = revision_current(annotation=task.annotation)
        keyframes = {
            r["frame"]
            for r in (current.regions if current else [])
            if r.get("track") == job.track and r.get("keyframe")
        } - {job.seed_frame}
        planned = _frames_planned(task, job.seed_frame, job.direction, job.frames_total, keyframes)

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            for n in planned:
                yield n, frame_array(video, n)

        checked = [0.0, False]

        def cancelled() -> bool:
            now = time.monotonic()
            if now - checked[0] > 0.25:
                checked[0] = now
                checked[1] = PropagationJob.objects.filter(pk=job.pk, cancel_requested=True).exists()
            return checked[1]

        buffer: list[dict] = []
        chunk = max(1, settings.LABELHUB_VIDEO_PROPAGATE_CHUNK)
        done = 0
        for step in run(
            propagator,
            seed_frame=job.seed_frame,
            seed_mask=rle_to_mask(job.seed_rle).astype(bool) if job.seed_prompt is None else None,
            seed_prompt=job.seed_prompt,
            seed_image=frame_array(video, job.seed_frame),
            frames=frames(),
            cancelled=cancelled,
        ):
            if step.seed:  # the prompt's mask on the seed frame: a keyframe made by a model
                if not step.mask.any():
                    raise DomainError(
                        f"The prompt gave an empty mask on frame {job.seed_frame}; nothing to propagate.",
                        field="points" if job.seed_prompt.get("points") else "box",
                        code="empty_seed",
                    )
                job.seed_rle = mask_to_rle(step.mask)
                job.save(update_fields=["seed_rle", "updated_at"])
                buffer.append({**_shape(job, step.frame, step.mask, propagator.seed_model), "keyframe": True})
                continue
            buffer.append(_shape(job, step.frame, step.mask, model))
            done += 1
            if len(buffer) >= chunk:
                if not _write(job, buffer):
                    break
                _progress(job, done, step.frame)
                buffer = []
        if buffer and _write(job, buffer) and done:
            _progress(job, done, buffer[-1]["frame"])
        job.refresh_from_db(fields=["cancel_requested"])
        job.status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.DONE
    except Exception as exc:
        log.exception("propagation %s failed", job.pk)
        job.status, job.error = JobStatus.FAILED, str(exc)[:2000]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "updated_at"])
    return job


def _progress(job: PropagationJob, done: int, last: int) -> None:
    job.frames_done, job.last_frame = done, last
    PropagationJob.objects.filter(pk=job.pk).update(
        frames_done=done, last_frame=last, updated_at=timezone.now()
    )
