"""Region-level quality: how a labeler's regions compare with a reference (a gold task's regions, or
what a reviewer accepted), the errors by kind, and accuracy with its confidence interval.

A comparison rasterizes both sides' regions, matches them one-to-one by IoU whatever their class (the
assignment maximizing the summed IoU, workers.geometry.matching; a pair needs IoU >= MATCH_IOU to be the
same object), then judges each reference region:

* unmatched: ``missing``; a submitted region left unmatched: ``extra``;
* matched with another class: ``class``;
* matched, same class, but its IoU (or Boundary F1, the project's ``quality_metric``) below the
  project's ``quality_bound``: ``boundary``;
* else correct.

Units are the reference regions plus the extra ones; accuracy is correct units over units, so an
annotation of three right regions and one invented region is 3/4 accurate. Per class, a unit counts for
the reference region's class (an extra one for its own class).
"""

from __future__ import annotations

from labelhub.regions.validation import region_mask

MATCH_IOU = 0.5  # two regions overlapping this much are the same object (COCO's loosest threshold)
ERROR_KINDS = ("missing", "extra", "class", "boundary")


def _empty_class() -> dict:
    return {"units": 0, "correct": 0, **{k: 0 for k in ERROR_KINDS}}


def region_errors(
    submitted: list[dict],
    reference: list[dict],
    *,
    height: int,
    width: int,
    metric: str = "iou",
    bound: float = 0.9,
) -> dict:
    """``{"units", "correct", "errors": {kind: n}, "per_class": {label: {units, correct, kinds...}},
    "matches": [{"reference", "submitted", "iou", "score", "verdict"}], "missing": [ids], "extra": [ids]}``
    for `submitted` judged against `reference` (see the module docstring). `metric` is "iou" or
    "boundary_f1" (2 px), `bound` its pass mark."""
    from workers.geometry.matching import iou_matrix, match_masks
    from workers.train.metrics import boundary_f1

    ref_masks = [region_mask(r, height, width) for r in reference]
    sub_masks = [region_mask(r, height, width) for r in submitted]
    pairs = match_masks(iou_matrix(ref_masks, sub_masks), min_iou=MATCH_IOU)
    per_class: dict[str, dict] = {}
    errors = {k: 0 for k in ERROR_KINDS}
    matches = []

    def count(label: str, verdict: str) -> None:
        slot = per_class.setdefault(label, _empty_class())
        slot["units"] += 1
        slot["correct" if verdict == "correct" else verdict] += 1
        if verdict != "correct":
            errors[verdict] += 1

    matched_ref, matched_sub = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
    for i, j, iou in pairs:
        ref, sub = reference[i], submitted[j]
        score = iou if metric == "iou" else boundary_f1(sub_masks[j], ref_masks[i], tolerance=2.0)
        if sub.get("label") != ref.get("label"):
            verdict = "class"
        elif score < bound:
            verdict = "boundary"
        else:
            verdict = "correct"
        count(str(ref.get("label")), verdict)
        matches.append(
            {
                "reference": ref.get("id"),
                "submitted": sub.get("id"),
                "iou": round(iou, 6),
                "score": round(score, 6),
                "verdict": verdict,
            }
        )
    missing = [r.get("id") for i, r in enumerate(reference) if i not in matched_ref]
    extra = [r.get("id") for j, r in enumerate(submitted) if j not in matched_sub]
    for i, r in enumerate(reference):
        if i not in matched_ref:
            count(str(r.get("label")), "missing")
    for j, r in enumerate(submitted):
        if j not in matched_sub:
            count(str(r.get("label")), "extra")
    units = len(reference) + len(extra)
    correct = sum(1 for m in matches if m["verdict"] == "correct")
    return {
        "units": units,
        "correct": correct,
        "errors": errors,
        "per_class": per_class,
        "matches": matches,
        "missing": missing,
        "extra": extra,
    }


def all_correct(regions: list[dict]) -> dict:
    """The judgement of regions a reviewer accepted unchanged: every one correct, nothing rasterized."""
    per_class: dict[str, dict] = {}
    for r in regions:
        slot = per_class.setdefault(str(r.get("label")), _empty_class())
        slot["units"] += 1
        slot["correct"] += 1
    return {
        "units": len(regions),
        "correct": len(regions),
        "errors": {k: 0 for k in ERROR_KINDS},
        "per_class": per_class,
    }
