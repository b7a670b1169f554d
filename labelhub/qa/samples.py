"""QualitySamples: each comparison behind the metrics and the quality report, computed once, in the
transaction of the action that makes it (a gold task's submit, a first review, a task done), so that
reading the figures of 10,000 tasks adds rows up instead of rasterizing every annotation again.

- gold: a first-stage submission of a gold task against its gold regions (honeypots included);
- review: a submission against what the first review stage passed on: accepted unchanged (every region
  correct, nothing rasterized) or fixed (the fix is the reference);
- prelabel: a done task's pre-label (its first revision authored by no one) against its accepted
  revision, with the AI-assist counts of labelhub/qa/metrics.py.
"""

from __future__ import annotations

from collections import Counter

from labelhub.core.events import DomainEvent
from labelhub.labeling.models import AnnotationRevision, EventKind, Task, TaskReplica
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.predictions.models import Prediction
from labelhub.regions.validation import region_mask

from .cache import samples_changed
from .models import QualitySample, SampleKind
from .quality import all_correct, region_errors
from .segmentation import compare, perfect


def _regions(task_id: int, number: int | None) -> list[dict]:
    if not number:
        return []
    return (
        AnnotationRevision.objects.filter(annotation__task_id=task_id, number=number)
        .values_list("regions", flat=True)
        .first()
        or []
    )


def _judged(task: Task, submitted: list[dict], reference: list[dict]) -> dict:
    project, image = task.project, task.image
    return region_errors(
        submitted,
        reference,
        height=image.height,
        width=image.width,
        metric=project.quality_metric,
        bound=project.quality_bound,
    )


def _scores(task: Task, submitted: list[dict], reference: list[dict]) -> dict:
    image = task.image
    return compare(
        submitted, reference, classes=task.project.class_names, height=image.height, width=image.width
    )


def _store(
    task: Task, *, user, kind: str, revision: int, judged: dict, scores: dict, data: dict
) -> QualitySample:
    samples_changed(task.project_id)
    return QualitySample.objects.create(
        project_id=task.project_id,
        task=task,
        user=user,
        kind=kind,
        revision=revision,
        units=judged["units"],
        correct=judged["correct"],
        errors=judged["errors"],
        per_class=judged["per_class"],
        scores=scores,
        data=data,
    )


def sample_gold(*, task: Task, user, revision: int, regions: list[dict] | None = None) -> QualitySample:
    """A gold task's submission (revision `revision`, or `regions` where given: a honeypot pass kept in
    its TaskReplica once the revision is gone) judged against its gold regions."""
    submitted = _regions(task.pk, revision) if regions is None else regions
    judged = _judged(task, submitted, task.gold_regions)
    data = {k: judged[k] for k in ("matches", "missing", "extra")}
    return _store(
        task,
        user=user,
        kind=SampleKind.GOLD,
        revision=revision,
        judged=judged,
        scores=_scores(task, submitted, task.gold_regions),
        data=data,
    )


def sample_review(*, task: Task, action: str, revision: int) -> QualitySample | None:
    """The first review of the task's latest submission: what the annotator submitted against what the
    reviewer passed on (revision `revision`)."""
    submit = (
        task.events.filter(kind=EventKind.SUBMITTED, from_stage=task.project.first_stage)
        .order_by("-created_at", "-id")
        .values_list("revision", flat=True)
        .first()
    )
    if submit is None:
        return None
    submitted = _regions(task.pk, submit)
    if action == EventKind.ACCEPTED or submit == revision:
        judged, scores, fixed = all_correct(submitted), perfect(submitted), False
    else:
        reference = _regions(task.pk, revision)
        judged, scores, fixed = _judged(task, submitted, reference), _scores(task, submitted, reference), True
    return _store(
        task,
        user=task.last_annotator,
        kind=SampleKind.REVIEW,
        revision=submit,
        judged=judged,
        scores=scores,
        data={"fixed": fixed, "reference_revision": revision},
    )


def _vertices(region: dict) -> Counter:
    points: Counter = Counter()
    for poly in region.get("polygons") or []:
        for ring in [poly["exterior"], *poly.get("holes", [])]:
            points.update((float(x), float(y)) for x, y in ring)
    return points


def _geometry(region: dict) -> tuple:
    return (region.get("label"), region.get("kind"), region.get("polygons"), region.get("rle"))


def ai_assist_counts(prelabel: list[dict], final: list[dict], *, height: int, width: int) -> dict | None:
    """One task's AI-assist counts (summed by the metrics): AI regions of the pre-label kept (same id),
    their summed IoU with what was accepted, unchanged, deleted, human regions added, polygon vertices
    moved or added / removed. None when the pre-label has no AI region."""
    from workers.train.metrics import iou

    ai = [r for r in prelabel if r.get("source") == "ai" or r.get("prediction_id") is not None]
    if not ai:
        return None
    out = dict.fromkeys(("ai_regions", "kept", "deleted", "unchanged", "human_regions_added"), 0)
    out.update(iou_sum=0.0, vertices_moved_or_added=0, vertices_removed=0)
    by_id = {r["id"]: r for r in final}
    ai_ids = {r["id"] for r in ai}
    out["human_regions_added"] = sum(1 for r in final if r["id"] not in ai_ids)
    for region in ai:
        out["ai_regions"] += 1
        after = by_id.get(region["id"])
        if after is None:
            out["deleted"] += 1
            continue
        out["kept"] += 1
        if _geometry(after) == _geometry(region):
            out["unchanged"] += 1
            out["iou_sum"] += 1.0
            continue
        out["iou_sum"] += iou(region_mask(region, height, width), region_mask(after, height, width))
        before_pts, after_pts = _vertices(region), _vertices(after)
        out["vertices_moved_or_added"] += sum((after_pts - before_pts).values())
        out["vertices_removed"] += sum((before_pts - after_pts).values())
    return out


def sample_prelabel(*, task: Task, revision: int) -> QualitySample | None:
    """A done task's pre-label against its accepted revision `revision` (None without a pre-label)."""
    pre = (
        AnnotationRevision.objects.filter(annotation__task=task, author__isnull=True)
        .order_by("number")
        .values_list("regions", flat=True)
        .first()
    )
    if pre is None:
        return None
    final = _regions(task.pk, revision)
    prediction_ids = {r.get("prediction_id") for r in pre} - {None}
    models = sorted(
        set(Prediction.objects.filter(id__in=prediction_ids).values_list("model_name", flat=True))
    )
    image = task.image
    return _store(
        task,
        user=task.last_annotator,
        kind=SampleKind.PRELABEL,
        revision=revision,
        judged=_judged(task, pre, final),
        scores=_scores(task, pre, final),
        data={
            "model": ",".join(models) or "none",
            "ai_assist": ai_assist_counts(pre, final, height=image.height, width=image.width),
        },
    )


def on_task_stage_changed(event: DomainEvent) -> None:
    """Subscriber of "task.stage_changed" (in the transaction): the first review's sample, and the
    pre-label's once the task is done."""
    payload = event.payload
    action = payload["action"]
    if action not in (EventKind.ACCEPTED, EventKind.FIX_ACCEPTED):
        return
    task = Task.objects.select_related("project", "image", "last_annotator").get(pk=payload["task"])
    if task.video_id:  # image samples; a video task's propagated vs kept shapes: tasks/{id}/video-metrics/
        return
    stages = task.project.stage_names
    if len(stages) > 1 and payload["from_stage"] == stages[1]:
        sample_review(task=task, action=action, revision=payload["revision"])
    if payload["to_stage"] == STAGE_DONE:
        sample_prelabel(task=task, revision=payload["revision"])


def samples_rebuild(*, project) -> int:
    """Compute a project's samples again from its stored history (after an upgrade, or a change of its
    quality settings); the number written."""
    QualitySample.objects.filter(project=project).delete()
    samples_changed(project.pk)
    written = 0
    tasks = Task.objects.filter(project=project).select_related("project", "image", "last_annotator")
    stages = project.stage_names
    for task in tasks.iterator(chunk_size=500):
        events = task.events.order_by("created_at", "id").values_list(
            "kind", "from_stage", "to_stage", "actor_id", "revision"
        )
        last_submit = None
        for kind, from_stage, to_stage, actor_id, revision in events:
            if kind == EventKind.SUBMITTED and from_stage == project.first_stage:
                last_submit = (actor_id, revision)
                if task.is_gold and actor_id is not None:
                    passed = TaskReplica.objects.filter(
                        task=task, user_id=actor_id, submitted_at__isnull=False
                    )
                    regions = passed.values_list("regions", flat=True).first()
                    sample = sample_gold(task=task, user=None, revision=revision or 0, regions=regions)
                    sample.user_id = actor_id
                    sample.save(update_fields=["user"])
                    written += 1
            elif kind in (EventKind.ACCEPTED, EventKind.FIX_ACCEPTED) and last_submit is not None:
                if len(stages) > 1 and from_stage == stages[1]:
                    written += sample_review(task=task, action=kind, revision=revision or 0) is not None
                if to_stage == STAGE_DONE:
                    written += sample_prelabel(task=task, revision=revision or 0) is not None
    return written


def on_image_deleting(event: DomainEvent) -> None:
    """Subscriber of "image.deleting" (in its transaction): the image's tasks take their samples along."""
    samples_changed(event.project_id)
