"""Segmentation quality of labels, with segmentation's own metrics (workers.train.metrics): pixel
accuracy, and Dice, IoU and Boundary F1 (2 px) averaged over the project's classes, computed on label
maps rasterized from the regions (0 = no class, i + 1 = the project's class i; later regions paint
over earlier ones). Three comparisons:

* ``prelabel``: a done task's pre-label (its first revision authored by no one) vs its accepted
  revision, per task, per model (the models named by the pre-label regions' predictions) and overall;
* ``annotator_vs_gold``: each first-stage submission of a gold task vs the gold regions, per user;
* ``annotator_vs_fix``: what an annotator submitted vs the reviewer's fix that was accepted, per user.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from labelhub.labeling.models import AnnotationRevision, EventKind, Task
from labelhub.predictions.models import Prediction

from .gold import region_mask

KEYS = ("pixel_accuracy", "dice", "iou", "boundary_f1")
TOLERANCE = 2.0  # Boundary F1 tolerance, pixels


def label_map(regions: list[dict], classes: list[str], height: int, width: int) -> np.ndarray:
    out = np.zeros((height, width), dtype=np.int32)
    index = {name: i + 1 for i, name in enumerate(classes)}
    for region in regions or []:
        c = index.get(region.get("label"))
        if c is not None:
            out[region_mask(region, height, width)] = c
    return out


def compare(a: list[dict], b: list[dict], *, classes: list[str], height: int, width: int) -> dict:
    """Scores of regions ``a`` against reference regions ``b`` (see the module docstring)."""
    from workers.train.metrics import segmentation_scores

    out = segmentation_scores(
        label_map(a, classes, height, width),
        label_map(b, classes, height, width),
        classes=list(range(1, len(classes) + 1)),
        tolerance=TOLERANCE,
    )
    return {k: round(out[k], 6) for k in KEYS}


def _means(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0, **{k: None for k in KEYS}}
    return {"n": len(rows), **{k: round(float(np.mean([r[k] for r in rows])), 6) for k in KEYS}}


def _revisions(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], list]:
    """Regions of (task_id, revision number) pairs, in one query."""
    if not pairs:
        return {}
    task_ids = {t for t, _ in pairs}
    rows = AnnotationRevision.objects.filter(annotation__task_id__in=task_ids).values_list(
        "annotation__task_id", "number", "regions"
    )
    return {(t, n): r for t, n, r in rows if (t, n) in pairs}


def segmentation_quality(*, project, tasks: list[Task], accepted_revision: dict[int, int], events) -> dict:
    """``{"prelabel": {"overall", "by_model", "per_task"}, "annotator_vs_gold": {"overall", "by_user"},
    "annotator_vs_fix": {"overall", "by_user"}}``; ``tasks`` are the done tasks (image selected) with
    ``accepted_revision`` their accepted revision numbers, ``events`` the TaskEvents in the window."""
    classes = project.class_names
    first: dict[int, list] = {}
    for task_id, regions in (
        AnnotationRevision.objects.filter(annotation__task_id__in=[t.pk for t in tasks], author__isnull=True)
        .order_by("annotation__task_id", "number")
        .values_list("annotation__task_id", "regions")
    ):
        first.setdefault(task_id, regions)
    finals = _revisions({(t, n) for t, n in accepted_revision.items()})
    prediction_ids = {r.get("prediction_id") for regions in first.values() for r in regions} - {None}
    model_of = dict(Prediction.objects.filter(id__in=prediction_ids).values_list("id", "model_name"))
    per_task, by_model = [], defaultdict(list)
    for task in tasks:
        pre = first.get(task.pk)
        if pre is None:
            continue
        scores = compare(
            pre,
            finals.get((task.pk, accepted_revision[task.pk]), []),
            classes=classes,
            height=task.image.height,
            width=task.image.width,
        )
        models = sorted({model_of.get(r.get("prediction_id")) for r in pre} - {None}) or ["none"]
        per_task.append({"task": task.pk, "model": ",".join(models), **scores})
        by_model[",".join(models)].append(scores)

    # First-stage submissions (gold tasks against their gold regions) and the fixes that followed them.
    submitted = list(
        events.filter(kind=EventKind.SUBMITTED)
        .select_related("task__image", "actor")
        .order_by("task_id", "created_at", "id")
    )
    fixes = list(
        events.filter(kind=EventKind.FIX_ACCEPTED).select_related("task__image").order_by("created_at", "id")
    )
    wanted = {(e.task_id, e.revision) for e in submitted + fixes if e.revision is not None}
    regions_of = _revisions(wanted)
    gold_rows, gold_users = [], defaultdict(list)
    for event in submitted:
        if not event.task.is_gold or event.actor is None:
            continue
        image = event.task.image
        scores = compare(
            regions_of.get((event.task_id, event.revision), []),
            event.task.gold_regions,
            classes=classes,
            height=image.height,
            width=image.width,
        )
        gold_rows.append(scores)
        gold_users[event.actor.username].append(scores)
    fix_rows, fix_users = [], defaultdict(list)
    for fix in fixes:
        before = [e for e in submitted if e.task_id == fix.task_id and e.created_at <= fix.created_at]
        if not before or before[-1].actor is None:
            continue
        sub = before[-1]
        image = fix.task.image
        if image is None:  # a video task: tasks/{id}/video-metrics/ compares its shapes
            continue
        scores = compare(
            regions_of.get((sub.task_id, sub.revision), []),
            regions_of.get((fix.task_id, fix.revision), []),
            classes=classes,
            height=image.height,
            width=image.width,
        )
        fix_rows.append(scores)
        fix_users[sub.actor.username].append(scores)
    return {
        "tolerance_px": TOLERANCE,
        "prelabel": {
            "overall": _means([{k: r[k] for k in KEYS} for r in per_task]),
            "by_model": {m: _means(rows) for m, rows in sorted(by_model.items())},
            "per_task": per_task,
        },
        "annotator_vs_gold": {
            "overall": _means(gold_rows),
            "by_user": {u: _means(r) for u, r in gold_users.items()},
        },
        "annotator_vs_fix": {
            "overall": _means(fix_rows),
            "by_user": {u: _means(r) for u, r in fix_users.items()},
        },
    }


__all__ = ["compare", "segmentation_quality"]
