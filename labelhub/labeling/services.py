"""Writes for tasks, annotations and comments."""

from __future__ import annotations

from django.db import transaction

from labelhub.core.errors import Conflict, DomainError
from labelhub.images.models import Image

from .models import Annotation, AnnotationRevision, Comment, Task, TaskStatus
from .regions import regions_clean, regions_diff


def task_create_for_image(*, image: Image) -> Task:
    task = Task.objects.create(project=image.project, image=image, stage=image.project.first_stage)
    Annotation.objects.create(task=task)
    return task


@transaction.atomic
def annotation_save(
    *, task: Task, author, base_revision: int, regions: list, stage: str | None = None
) -> AnnotationRevision:
    """Add a revision on top of `base_revision`, the revision the writer read.

    A writer who read an older revision than the current one gets Conflict (409) and nothing is saved,
    so two people editing the same task never overwrite each other.
    """
    annotation = Annotation.objects.select_for_update().get(task=task)
    if isinstance(base_revision, bool) or not isinstance(base_revision, int) or base_revision < 0:
        raise DomainError("revision is the revision number you read (0 for none).", field="revision")
    if base_revision != annotation.current_revision:
        raise Conflict(
            f"Revision {base_revision} is stale: the annotation is at revision {annotation.current_revision}. "
            "Read it again and reapply your change.",
            field="revision",
            code="stale_revision",
            details={"current_revision": annotation.current_revision},
        )
    image = task.image
    project = task.project
    cleaned = regions_clean(
        regions,
        width=image.width,
        height=image.height,
        class_names=project.class_names,
        stuff=project.stuff_classes,
        exclusive=project.segmentation != "instance",
    )
    previous = (
        annotation.revisions.filter(number=annotation.current_revision)
        .values_list("regions", flat=True)
        .first()
        or []
    )
    revision = AnnotationRevision.objects.create(
        annotation=annotation,
        number=annotation.current_revision + 1,
        regions=cleaned,
        author=author,
        stage=stage or task.stage,
        summary=regions_diff(previous, cleaned),
    )
    annotation.current_revision = revision.number
    annotation.save(update_fields=["current_revision", "updated_at"])
    return revision


def annotation_prelabel(*, task: Task, regions: list[dict]) -> AnnotationRevision | None:
    """Seed an untouched task with AI regions (revision 1, no author). A task someone has saved keeps its work."""
    with transaction.atomic():
        annotation = Annotation.objects.select_for_update().get(task=task)
        if annotation.current_revision != 0:
            return None
        return annotation_save(task=task, author=None, base_revision=0, regions=regions, stage=task.stage)


@transaction.atomic
def comment_create(*, task: Task, author, text: str, region_id: str = "", x=None, y=None) -> Comment:
    if not isinstance(text, str) or not text.strip():
        raise DomainError("A comment needs text.", field="text")
    annotation = task.annotation
    if region_id:
        current = annotation.revisions.filter(number=annotation.current_revision).first()
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
    comment.resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.save(update_fields=["resolved", "resolved_by"])
    return comment


__all__ = [
    "TaskStatus",
    "annotation_prelabel",
    "annotation_save",
    "comment_create",
    "comment_resolve",
    "task_create_for_image",
]
