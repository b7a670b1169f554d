"""Segmentation quality of labels, with segmentation's own metrics (workers.train.metrics): pixel
accuracy, and Dice, IoU and Boundary F1 (2 px) per class and averaged over the classes present, computed
on label maps rasterized from the regions (0 = no class, i + 1 = the project's class i; later regions
paint over earlier ones). Each comparison is computed once, when it happens, into a QualitySample
(labelhub/qa/samples.py); the metrics add those up. Three comparisons:

* ``prelabel``: a done task's pre-label (its first revision authored by no one) vs its accepted
  revision, per task, per model (the models named by the pre-label regions' predictions) and overall;
* ``annotator_vs_gold``: each first-stage submission of a gold task vs the gold regions, per user;
* ``annotator_vs_fix``: what an annotator submitted vs the reviewer's fix that was accepted, per user.
"""

from __future__ import annotations

import numpy as np

from labelhub.regions.validation import label_map

KEYS = ("pixel_accuracy", "dice", "iou", "boundary_f1")
TOLERANCE = 2.0  # Boundary F1 tolerance, pixels


def compare(a: list[dict], b: list[dict], *, classes: list[str], height: int, width: int) -> dict:
    """Scores of regions ``a`` against reference regions ``b``: pixel accuracy, the means of Dice, IoU and
    BF1 over the classes present on either side (None when none is), and ``per_class`` by class name."""
    from workers.train.metrics import segmentation_scores

    out = segmentation_scores(
        label_map(a, classes=classes, height=height, width=width),
        label_map(b, classes=classes, height=height, width=width),
        classes=list(range(1, len(classes) + 1)),
        tolerance=TOLERANCE,
    )
    result = {k: None if out[k] is None else round(out[k], 6) for k in KEYS}
    result["per_class"] = {
        classes[c - 1]: {k: round(v, 6) for k, v in scores.items()} for c, scores in out["per_class"].items()
    }
    return result


def perfect(regions: list[dict]) -> dict:
    """The scores of regions against themselves, without rasterizing: 1.0 for every class present."""
    present = sorted({str(r.get("label")) for r in regions})
    return {
        "pixel_accuracy": 1.0,
        **{k: 1.0 if present else None for k in KEYS[1:]},
        "per_class": {c: {"dice": 1.0, "iou": 1.0, "boundary_f1": 1.0} for c in present},
    }


def scores_mean(rows: list[dict]) -> dict:
    """``{"n", "pixel_accuracy", "dice", "iou", "boundary_f1", "per_class"}`` of several :func:`compare`
    results: pixel accuracy over every row; per class, the means over the rows where it is present; Dice,
    IoU and BF1 the means over the classes present anywhere (a class absent from both sides of a
    comparison does not count as a perfect score)."""
    if not rows:
        return {"n": 0, **{k: None for k in KEYS}, "per_class": {}}
    sums: dict[str, dict[str, list]] = {}
    for row in rows:
        for name, scores in (row.get("per_class") or {}).items():
            slot = sums.setdefault(name, {"dice": [], "iou": [], "boundary_f1": []})
            for k in slot:
                slot[k].append(scores[k])
    per_class = {
        name: {"n": len(v["dice"]), **{k: round(float(np.mean(v[k])), 6) for k in v}}
        for name, v in sorted(sums.items())
    }
    out: dict = {
        "n": len(rows),
        "pixel_accuracy": round(float(np.mean([r["pixel_accuracy"] for r in rows])), 6),
    }
    for k in KEYS[1:]:
        values = [c[k] for c in per_class.values()]
        out[k] = round(float(np.mean(values)), 6) if values else None
    out["per_class"] = per_class
    return out


__all__ = ["compare", "label_map", "perfect", "scores_mean"]
