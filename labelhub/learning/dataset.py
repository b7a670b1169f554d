"""The training data of a project model: accepted tasks, their accepted revisions as label maps, and
the seeded held-out split."""

from __future__ import annotations

import hashlib

import numpy as np
from django.db.models import F

from labelhub.labeling.models import AnnotationRevision, Task, TaskStatus
from labelhub.predictions.backends import image_pixels
from labelhub.projects.models import Project
from labelhub.regions.validation import label_map


def accepted_revisions(*, project: Project) -> list[tuple[int, int]]:
    """``[(task_id, revision_id)]`` of the project's accepted tasks (status done), each at its current
    (accepted) annotation revision, by task id."""
    rows = (
        AnnotationRevision.objects.filter(
            annotation__task__project=project,
            annotation__task__status=TaskStatus.DONE,
            annotation__task__image__isnull=False,  # image tasks (video tasks train nothing here yet)
        )
        .filter(number=F("annotation__current_revision"))
        .order_by("annotation__task_id")
        .values_list("annotation__task_id", "id")
    )
    return [(t, r) for t, r in rows]


def split_heldout(
    pairs: list[tuple[int, int]], *, fraction: float, seed: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train, heldout): a task is held out when the SHA-256 of ``"{seed}:{task_id}"`` ranks it in the
    lowest ``fraction`` (at least one task each way when there are two or more). Stable: a task keeps
    its side as tasks are added, for the same seed."""
    ranked = sorted(pairs, key=lambda p: hashlib.sha256(f"{seed}:{p[0]}".encode()).hexdigest())
    n = min(max(1, round(len(pairs) * fraction)), len(pairs) - 1) if len(pairs) >= 2 else 0
    heldout = sorted(ranked[:n])
    train = sorted(ranked[n:])
    return train, heldout


def examples(
    pairs: list[tuple[int, int]], *, classes: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images (``(H, W, 3)`` uint8) and label maps of ``(task_id, revision_id)`` pairs, in order."""
    revisions = AnnotationRevision.objects.in_bulk([r for _, r in pairs])
    tasks = Task.objects.select_related("image").in_bulk([t for t, _ in pairs])
    images, labels = [], []
    for task_id, revision_id in pairs:
        image = tasks[task_id].image
        images.append(image_pixels(image))
        labels.append(
            label_map(revisions[revision_id].regions, classes=classes, height=image.height, width=image.width)
        )
    return images, labels


def prelabel_maps(pairs: list[tuple[int, int]], *, classes: list[str]) -> list[np.ndarray]:
    """Label maps of the tasks' pre-labels (their first revision authored by no one; empty if none)."""
    tasks = Task.objects.select_related("image").in_bulk([t for t, _ in pairs])
    first = {}
    for task_id, regions in (
        AnnotationRevision.objects.filter(annotation__task_id__in=list(tasks), author__isnull=True)
        .order_by("annotation__task_id", "number")
        .values_list("annotation__task_id", "regions")
    ):
        first.setdefault(task_id, regions)
    out = []
    for task_id, _ in pairs:
        image = tasks[task_id].image
        out.append(label_map(first.get(task_id, []), classes=classes, height=image.height, width=image.width))
    return out
