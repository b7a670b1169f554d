"""Gold (honeypot) scoring: how well submitted regions match a gold task's known-correct regions.

Each region is rasterized on the image grid (polygons with workers.geometry.polygons_to_mask, masks with
rle_to_mask). Gold and submitted regions of the same label are paired greedily by highest IoU (each region
used once, pairs with IoU 0 left out). The score is the sum of the paired IoUs divided by
max(number of gold regions, number of submitted regions), so a missed gold region and an extra submitted
region both cost; 1.0 is a perfect match, and two empty lists score 1.0.
"""

from __future__ import annotations

import numpy as np

from labelhub.core.events import DomainEvent
from labelhub.labeling.models import AnnotationRevision, Task
from labelhub.regions.validation import region_mask

from .models import GoldScore


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b) / union)


def regions_match(gold: list[dict], submitted: list[dict], height: int, width: int) -> dict:
    """Greedy best-IoU pairing of same-label regions. Returns {"score", "matches": [{"gold", "submitted",
    "iou"}], "gold_regions", "submitted_regions"}."""
    if not gold and not submitted:
        return {"score": 1.0, "matches": [], "gold_regions": 0, "submitted_regions": 0}
    gold_masks = [region_mask(r, height, width) for r in gold]
    sub_masks = [region_mask(r, height, width) for r in submitted]
    pairs = []
    for i, g in enumerate(gold):
        for j, s in enumerate(submitted):
            if g.get("label") != s.get("label"):
                continue
            iou = mask_iou(gold_masks[i], sub_masks[j])
            if iou > 0:
                pairs.append((iou, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_g: set[int] = set()
    used_s: set[int] = set()
    matches = []
    for iou, i, j in pairs:
        if i in used_g or j in used_s:
            continue
        used_g.add(i)
        used_s.add(j)
        matches.append({"gold": gold[i].get("id"), "submitted": submitted[j].get("id"), "iou": round(iou, 6)})
    total = sum(m["iou"] for m in matches)
    return {
        "score": total / max(len(gold), len(submitted)),
        "matches": matches,
        "gold_regions": len(gold),
        "submitted_regions": len(submitted),
    }


def gold_score_record(*, task: Task, user, revision: int) -> GoldScore:
    """Score revision `revision` of a gold task's annotation (0: nothing drawn) against its gold regions."""
    regions = (
        AnnotationRevision.objects.filter(annotation__task=task, number=revision)
        .values_list("regions", flat=True)
        .first()
        or []
    )
    image = task.image
    result = regions_match(task.gold_regions, regions, image.height, image.width)
    return GoldScore.objects.create(
        task=task,
        user=user,
        revision=revision,
        score=result.pop("score"),
        details=result,
    )


def on_task_submitted(event: DomainEvent) -> None:
    """Subscriber of "task.submitted" (in the submitting transaction): score a gold task's submission,
    and hand the submit its measured quality (the share of correct regions, as the report and the
    feedback count them; 1.0 when there was nothing to draw) in the event's context, which labeling's
    automatic send-back reads."""
    from .samples import sample_gold

    task = event.context["task"]
    if task.is_gold:
        gold_score_record(task=task, user=event.context["user"], revision=event.payload["revision"])
        sample = sample_gold(task=task, user=event.context["user"], revision=event.payload["revision"])
        value = sample.correct / sample.units if sample.units else 1.0
        event.context["quality"] = {"source": "gold", "value": value}
