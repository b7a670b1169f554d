"""Video metrics: how the propagated shapes compare with what was finally kept. For each track shape of
the task's current revision (the accepted one once the task is done) whose frame once held a shape a
model propagated (the last such shape in the revision history), the propagated mask is scored against
the kept one: J (IoU), F (DAVIS contour accuracy), J&F, Dice, pixel accuracy and Boundary F1 at 2 px
(the project's segmentation measure) per frame, then averaged per track and over the task."""

from __future__ import annotations

from labelhub.labeling.models import Task
from labelhub.labeling.selectors import revision_current
from labelhub.regions.validation import region_mask
from workers.train.metrics import segmentation_scores
from workers.video.metrics import frame_scores, mean_scores

from .segmentation import TOLERANCE


def task_video_metrics(task: Task) -> dict:
    video = task.video
    h, w = video.height, video.width
    current = revision_current(annotation=task.annotation)
    kept = {(r["track"], r["frame"]): r for r in (current.regions if current else [])}
    propagated: dict[tuple[str, int], dict] = {}
    for revision in task.annotation.revisions.order_by("number"):
        for r in revision.regions:
            if r.get("model") and not r.get("keyframe"):
                propagated[(r["track"], r["frame"])] = r
    frames, tracks = [], {}
    for key in sorted(propagated):
        final = kept.get(key)
        if final is None:
            continue
        pred, truth = region_mask(propagated[key], h, w), region_mask(final, h, w)
        bf1 = segmentation_scores(pred.astype(int), truth.astype(int), classes=[1], tolerance=TOLERANCE)[
            "boundary_f1"
        ]
        row = {**frame_scores(pred, truth), "bf1": float(bf1)}
        frames.append(
            {
                "track": key[0],
                "frame": key[1],
                "model": propagated[key]["model"],
                "corrected": bool(final.get("keyframe")),
                **row,
            }
        )
        tracks.setdefault(key[0], []).append(row)
    return {
        "task": task.pk,
        "revision": current.number if current else 0,
        "frames": frames,
        "tracks": {t: {**mean_scores(rows), "frames": len(rows)} for t, rows in tracks.items()},
        "overall": {
            **mean_scores(
                [{k: f[k] for k in ("j", "f", "jf", "iou", "dice", "pixel_accuracy", "bf1")} for f in frames]
            ),
            "frames": len(frames),
            "corrected": sum(f["corrected"] for f in frames),
        },
    }
