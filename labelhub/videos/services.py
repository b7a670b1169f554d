"""Video ingest: cheap refusals first (size, then the headers: container, codec, resolution, duration,
declared frame count), then one decode that stores every frame under its number. All or nothing: a
failure at any frame (a truncated file, mixed frame sizes in an archive) removes the frames this request
wrote, and no row is created.

Storage: one JPEG per frame through Django's default storage (the filesystem, or S3 with
LABELHUB_S3_BUCKET), so the app fetches and prefetches single frames and a worker reads exactly the frames
it propagates through (benchmarks/video_ingest.py measures the ingest speed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent, VideoAdded, announce
from labelhub.core.files import files_delete_on_commit
from labelhub.projects.models import Project
from workers.video.decode import Limits, VideoError, frames_open

from .models import Video


def limits() -> Limits:
    return Limits(
        max_seconds=settings.LABELHUB_VIDEO_MAX_SECONDS,
        max_frames=settings.LABELHUB_VIDEO_MAX_FRAMES,
        max_width=settings.LABELHUB_VIDEO_MAX_WIDTH,
        max_height=settings.LABELHUB_VIDEO_MAX_HEIGHT,
    )


def frame_encode(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, settings.LABELHUB_VIDEO_FRAME_QUALITY],
    )
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def frame_decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def video_add(*, project: Project, name: str, data: bytes, user=None, field: str = "file") -> Video:
    """Store a video (or a zip of frames) in `project`, its frames decoded and stored, its tasks created
    (the "video.added" event). Raises DomainError (400) naming `field` and the problem."""
    role_require(
        user=user, organization_id=project.organization_id, roles=MANAGING_ROLES, action="add videos"
    )
    if not data:
        raise DomainError("The file is empty.", field=field, code="not_a_video")
    if len(data) > settings.LABELHUB_VIDEO_MAX_BYTES:
        raise DomainError(
            f"The file is {len(data)} bytes; the limit is {settings.LABELHUB_VIDEO_MAX_BYTES}.",
            field=field,
            code="file_too_large",
        )
    sha = hashlib.sha256(data).hexdigest()
    existing = Video.objects.filter(project=project, sha256=sha).first()
    if existing is not None:
        raise DomainError(
            f"This video is already in the project (video {existing.pk}).",
            field=field,
            code="duplicate_video",
        )
    try:
        info, frames = frames_open(data, limits())
    except VideoError as exc:
        raise DomainError(f"{name}: {exc.message}", field=field, code=exc.code) from exc
    video = Video(
        project=project,
        original_name=Path(name).name[:255] or "video",
        container=info.container,
        codec=info.codec,
        width=info.width,
        height=info.height,
        fps_num=info.fps.numerator,
        fps_den=info.fps.denominator,
        frame_count=0,
        sha256=sha,
        size_bytes=len(data),
        uploaded_by=user,
    )
    storage = Video._meta.get_field("file").storage
    written: list[str] = []
    try:
        count = 0
        for number, rgb in enumerate(frames()):
            written.append(storage.save(video.frame_name(number), ContentFile(frame_encode(rgb))))
            count = number + 1
        video.frame_count = count
        with transaction.atomic():
            video.file.save("source", ContentFile(data), save=False)
            written.append(video.file.name)
            video.save()
            announce(
                VideoAdded(video=video.pk),
                organization_id=project.organization_id,
                project_id=project.pk,
                context={"video": video},
            )
    except BaseException as exc:
        for stored in written:  # nothing half-stored: the frames this request wrote go
            storage.delete(stored)
        if isinstance(exc, VideoError):
            raise DomainError(f"{name}: {exc.message}", field=field, code=exc.code) from exc
        raise
    return video


def frame_read(video: Video, number: int) -> bytes:
    if not (0 <= number < video.frame_count):
        raise DomainError(
            f"Frame {number} is outside the video (0..{video.frame_count - 1}).",
            field="frame",
            code="no_such_frame",
        )
    with Video._meta.get_field("file").storage.open(video.frame_name(number), "rb") as fh:
        return fh.read()


def frame_array(video: Video, number: int) -> np.ndarray:
    return frame_decode(frame_read(video, number))


def _frame_names(video: Video) -> list[str]:
    return [video.frame_name(n) for n in range(video.frame_count)] + [video.file.name]


@transaction.atomic
def video_delete(*, video: Video, user) -> None:
    role_require(
        user=user, organization_id=video.project.organization_id, roles=MANAGING_ROLES, action="delete videos"
    )
    files_delete_on_commit(video.file.storage, _frame_names(video))
    video.delete()


def on_project_deleting(event: DomainEvent) -> None:
    storage = Video._meta.get_field("file").storage
    for video in Video.objects.filter(project=event.context["project"]).iterator():
        files_delete_on_commit(storage, _frame_names(video))
