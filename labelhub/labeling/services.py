"""Writes for tasks and comments. Annotation revisions are written by annotations.py (the one write
path); the QA pipeline's actions are leases.py, reviews.py and assignments.py."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from labelhub.accounts.selectors import role_require
from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent
from labelhub.images.models import Image
from labelhub.videos.models import Video

from .annotations import WRITER_ROLES, annotation_prelabel, annotations_prelabel
from .models import Annotation, Comment, Task
from .selectors import revision_current


def tasks_create_for_video(*, video: Video) -> list[Task]:
    """Tasks covering the video's frames: LABELHUB_VIDEO_TASK_FRAMES each, consecutive ones sharing
    LABELHUB_VIDEO_TASK_OVERLAP frames (the last one may be shorter)."""
    size = max(1, settings.LABELHUB_VIDEO_TASK_FRAMES)
    overlap = min(max(0, settings.LABELHUB_VIDEO_TASK_OVERLAP), size - 1)
    tasks, start = [], 0
    while True:
        stop = min(start + size, video.frame_count)
        task = Task.objects.create(
            project=video.project,
            video=video,
            frame_start=start,
            frame_stop=stop,
            stage=video.project.first_stage,
        )
        Annotation.objects.create(task=task)
        tasks.append(task)
        if stop >= video.frame_count:
            return tasks
        start = stop - overlap


def on_video_added(event: DomainEvent) -> None:
    """Subscriber of "video.added" (in the adding transaction): the video's tasks."""
    tasks_create_for_video(video=event.context["video"])


def task_create_for_image(*, image: Image) -> Task:
    task = Task.objects.create(project=image.project, image=image, stage=image.project.first_stage)
    Annotation.objects.create(task=task)
    return task


@transaction.atomic
def comment_create(
    *, task: Task, author, text: str, region_id: str = "", x=None, y=None, frame=None
) -> Comment:
    """A comment by a member on the task, pinned to a region of the current revision, to a point (x, y in
    pixels) or to neither; in a video task also to a frame (required there with a point or a region: the
    region must be a shape on that frame)."""
    role_require(
        user=author, organization_id=task.project.organization_id, roles=WRITER_ROLES, action="comment"
    )
    if not isinstance(text, str) or not text.strip():
        raise DomainError("A comment needs text.", field="text")
    annotation = task.annotation
    media = task.image if task.image_id else task.video
    if frame is not None:
        if not task.video_id:
            raise DomainError("Only a video task's comments name a frame.", field="frame")
        if (
            isinstance(frame, bool)
            or not isinstance(frame, int)
            or not task.frame_start <= frame < task.frame_stop
        ):
            raise DomainError(
                f"frame is a frame of this task ({task.frame_start}..{task.frame_stop - 1}).", field="frame"
            )
    elif task.video_id and (region_id or x is not None):
        raise DomainError("In a video task a pinned comment names its frame.", field="frame", code="required")
    if region_id:
        current = revision_current(annotation=annotation)
        ids = (
            {r["id"] for r in current.regions if frame is None or r.get("frame") == frame}
            if current
            else set()
        )
        if region_id not in ids:
            where = f" on frame {frame}" if frame is not None else ""
            raise DomainError(f"No region '{region_id}'{where} in the current revision.", field="region_id")
    if (x is None) != (y is None):
        raise DomainError("A point needs both x and y.", field="x" if x is None else "y")
    if x is not None and not (0 <= x <= media.width and 0 <= y <= media.height):
        raise DomainError("The point lies outside the image.", field="x")
    return Comment.objects.create(
        task=task,
        author=author,
        text=text.strip(),
        region_id=region_id,
        x=x,
        y=y,
        frame=frame,
        revision=annotation.current_revision,
    )


def comment_system(*, task: Task, text: str) -> Comment:
    """A comment by LabelHub itself (no author), on the current revision: why an automatic action
    happened (an automatic send-back)."""
    return Comment.objects.create(
        task=task, author=None, text=text, revision=task.annotation.current_revision
    )


@transaction.atomic
def comment_resolve(*, comment: Comment, user, resolved: bool = True) -> Comment:
    role_require(
        user=user,
        organization_id=comment.task.project.organization_id,
        roles=WRITER_ROLES,
        action="resolve comments",
    )
    comment.resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.save(update_fields=["resolved", "resolved_by"])
    return comment


def on_images_added(event: DomainEvent) -> None:
    """Subscriber of "images.added" (in the adding transaction): one task per new image."""
    for image in event.context["images"]:
        task_create_for_image(image=image)


def on_prediction_ready(event: DomainEvent) -> None:
    """Subscriber of "prediction.ready" (in the prediction's transaction): seed the image's untouched
    task with the AI regions."""
    task = Task.objects.filter(image=event.context["image"]).first()
    if task is not None:
        annotation_prelabel(task=task, regions=event.context["regions"])


def on_predictions_ready(event: DomainEvent) -> None:
    """Subscriber of "predictions.ready" (in the batch's transaction): seed the images' untouched tasks
    with their AI regions at once; the images whose regions the project's rules refuse are handed back
    in the event's `refused` (the publisher records those predictions as failed, with the reason)."""
    _, refused = annotations_prelabel(items=event.context["items"])
    event.context["refused"].update(refused)
