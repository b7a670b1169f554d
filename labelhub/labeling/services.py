"""Writes for tasks and comments. Annotation revisions are written by annotations.py (the one write
path); the QA pipeline's actions are leases.py, reviews.py and assignments.py."""

from __future__ import annotations

import time

from django.db import transaction

from labelhub.accounts.selectors import role_require
from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent
from labelhub.images.models import Image

from .annotations import WRITER_ROLES, annotation_prelabel
from .models import Annotation, Comment, Task
from .selectors import revision_current


def task_create_for_image(*, image: Image) -> Task:
    task = Task.objects.create(project=image.project, image=image, stage=image.project.first_stage)
    Annotation.objects.create(task=task)
    return task


@transaction.atomic
def comment_create(*, task: Task, author, text: str, region_id: str = "", x=None, y=None) -> Comment:
    """A comment by a member on the task, pinned to a region of the current revision, to a point (x, y in
    pixels) or to neither."""
    role_require(
        user=author, organization_id=task.project.organization_id, roles=WRITER_ROLES, action="comment"
    )
    if not isinstance(text, str) or not text.strip():
        raise DomainError("A comment needs text.", field="text")
    annotation = task.annotation
    if region_id:
        current = revision_current(annotation=annotation)
        ids = {r["id"] for r in current.regions} if current else set()
        if region_id not in ids:
            raise DomainError(f"No region '{region_id}' in the current revision.", field="region_id")
    if (x is None) != (y is None):
        raise DomainError("A point needs both x and y.", field="x" if x is None else "y")
    if x is not None and not (0 <= x <= task.image.width and 0 <= y <= task.image.height):
        raise DomainError("The point lies outside the image.", field="x")
    return Comment.objects.create(
        task=task,
        author=author,
        text=text.strip(),
        region_id=region_id,
        x=x,
        y=y,
        revision=annotation.current_revision,
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


def polygonize(*, image: Image, rle: object) -> dict:
    """A mask of this image (COCO RLE, the image's size) in, its polygons under the project's
    simplifier and bound out: what predictions.interactive.segment_prompt returns for a mask it
    decoded, here for a mask decoded elsewhere (the browser's SAM decoder). Raises DomainError naming
    the field of a bad RLE."""
    from labelhub.predictions.interactive import project_polygons
    from workers.geometry import rle_to_mask

    from .regions import rle_clean

    t0 = time.perf_counter()
    rle = rle_clean(rle, "rle", image.width, image.height)
    mask = rle_to_mask(rle).astype(bool, copy=False)
    polygons = project_polygons(image.project, mask)
    project = image.project
    return {
        "polygons": polygons,
        "area": int(mask.sum()),
        "vertices": sum(len(p["exterior"]) + sum(len(h) for h in p["holes"]) for p in polygons),
        "simplifier": project.polygon_simplifier,
        "min_iou": project.polygon_min_iou,
        "max_distance": project.polygon_max_distance,
        "timing_ms": {"polygons": round((time.perf_counter() - t0) * 1000, 2)},
    }
