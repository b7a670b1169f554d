"""Video exports and imports: a video's tracks gathered from its tasks' current revisions (frames in the
overlap of two tasks: the earlier task's shape, the later's where the earlier has none, so tracks join
across the overlap), written in a video format; imports split the shapes back into the tasks that cover
their frames, through the one annotation write path (Writer.IMPORT)."""

from __future__ import annotations

from django.db import transaction

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import DomainError
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.selectors import revision_current
from labelhub.videos.models import Video

from .formats.video import VIDEO_FORMATS, VIDEO_IMPORT_FORMATS


def video_meta(video: Video) -> dict:
    stem = video.original_name.rsplit(".", 1)[0] or f"video{video.pk}"
    return {
        "name": video.original_name,
        "stem": stem,
        "width": video.width,
        "height": video.height,
        "frame_count": video.frame_count,
    }


def video_shapes(video: Video) -> list[dict]:
    seen: set[tuple[str, int]] = set()
    shapes = []
    for task in video.tasks.order_by("frame_start").select_related("annotation"):
        current = revision_current(annotation=task.annotation)
        for r in current.regions if current else []:
            key = (r["track"], r["frame"])
            if key not in seen:
                seen.add(key)
                shapes.append(r)
    return shapes


def video_export(*, video: Video, user, format: str) -> bytes:
    role_require(
        user=user, organization_id=video.project.organization_id, roles=MANAGING_ROLES, action="export videos"
    )
    if format not in VIDEO_FORMATS:
        raise DomainError(f"format is one of {sorted(VIDEO_FORMATS)}.", field="format")
    return VIDEO_FORMATS[format](video_meta(video), video_shapes(video), video.project.label_schema)


@transaction.atomic
def video_import(*, video: Video, user, format: str, data: bytes) -> int:
    """Replace the tracks of the video's tasks with the file's (all or nothing). Returns shapes written."""
    role_require(
        user=user, organization_id=video.project.organization_id, roles=MANAGING_ROLES, action="import videos"
    )
    if format not in VIDEO_IMPORT_FORMATS:
        raise DomainError(f"format is one of {sorted(VIDEO_IMPORT_FORMATS)}.", field="format")
    shapes = VIDEO_IMPORT_FORMATS[format](data, video_meta(video))
    for i, s in enumerate(shapes):
        if not 0 <= s["frame"] < video.frame_count:
            raise DomainError(f"Shape {i} is on frame {s['frame']}, outside the video.", field="file")
    written = 0
    for task in video.tasks.order_by("frame_start"):
        mine = [s for s in shapes if task.frame_start <= s["frame"] < task.frame_stop]
        current = revision_current(annotation=task.annotation)
        annotation_write(
            task=task,
            author=user,
            base_revision=current.number if current else 0,
            regions=mine,
            writer=Writer.IMPORT,
        )
        written += len(mine)
    return written
