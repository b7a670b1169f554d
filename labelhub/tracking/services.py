"""Propagation: request (checked like an annotation write: the task's lease holder or a manager), run
(on a worker: the streaming loop of workers.video.propagate, results written into the task through the
one annotation write path every LABELHUB_VIDEO_PROPAGATE_CHUNK frames), cancel.

Rules: a propagated shape never replaces a keyframe (a person's shape); the run stops before the next
keyframe of the track in its direction (what a person drew there is the better seed). Every shape
written names its model and version. A lost object (an empty mask) is written as `outside` and ends
the run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

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


@transaction.atomic
def propagation_request(
    *, task: Task, user, track: str, frame: int, direction: str, frames: int, backend: str = "auto"
) -> PropagationJob:
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
    if seed is None:
        raise DomainError(
            f"Track {track!r} has no shape on frame {frame}.", field="frame", code="no_seed_shape"
        )
    if seed.get("outside"):
        raise DomainError(
            f"Track {track!r} is outside the view on frame {frame}.", field="frame", code="no_seed_shape"
        )
    video = task.video
    mask = region_mask(seed, video.height, video.width)
    if not mask.any():
        raise DomainError("The seed shape is empty.", field="frame", code="no_seed_shape")
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
        label=seed["label"],
        seed_frame=frame,
        seed_rle=mask_to_rle(mask),
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


def propagator_for(backend: str, direction: str):
    """A fresh propagator (SAM 2's model is loaded once per worker process and shared)."""
    global _SAM2
    if backend == Backend.FLOW:
        from workers.video.flow import FlowPropagator

        return FlowPropagator()
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
        propagator = propagator_for(job.backend, job.direction)
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
            seed_mask=rle_to_mask(job.seed_rle).astype(bool),
            seed_image=frame_array(video, job.seed_frame),
            frames=frames(),
            cancelled=cancelled,
        ):
            buffer.append(_shape(job, step.frame, step.mask, model))
            done += 1
            if len(buffer) >= chunk:
                if not _write(job, buffer):
                    break
                _progress(job, done, step.frame)
                buffer = []
        if buffer and _write(job, buffer):
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
