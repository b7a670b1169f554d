"""The quality report: how accurate a project's labels are, with a confidence interval, from its quality
samples (labelhub/qa/samples.py), for the whole project, the tasks of one export, or one labeler.

Accuracy is the share of correct region units (labelhub/qa/quality.py) in two kinds of evidence:
honeypots (submissions of gold tasks against their gold regions) and first reviews (a submission
against what the reviewer passed on: changed beyond the project's bound, or missing, extra, or of
another class, is an error). Each estimate comes with a 95% Wilson score interval with continuity
correction (Newcombe 1998), which treats the units as independent draws; the report says how many
units each rests on. Errors are counted by kind; the label-map figures (pixel accuracy, Dice, IoU,
Boundary F1 per class present) are their means over the same samples.
"""

from __future__ import annotations

import math
from collections import defaultdict

from django.db.models import Count, IntegerField, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from labelhub.projects.models import Project, QualityAction

from .aggregate import class_sums, merged, score_means
from .cache import samples_cached
from .models import QualitySample, SampleKind
from .quality import ERROR_KINDS
from .segmentation import scores_mean

Z95 = 1.959963984540054
EVIDENCE = (SampleKind.GOLD, SampleKind.REVIEW)


def wilson_cc(correct: int, units: int, *, z: float = Z95) -> tuple[float, float] | None:
    """The continuity-corrected Wilson score interval of `correct` successes in `units` trials (None for
    no trials): a little wider than the plain Wilson interval, and it keeps its nominal coverage for
    small counts and proportions near 1, where a labeling project's accuracy lies."""
    if units <= 0:
        return None
    n, p = units, correct / units
    z2 = z * z
    denom = 2 * (n + z2)
    if correct == 0:
        low = 0.0
    else:
        low = (2 * n * p + z2 - (z * math.sqrt(z2 - 1 / n + 4 * n * p * (1 - p) + (4 * p - 2)) + 1)) / denom
    if correct == n:
        high = 1.0
    else:
        high = (2 * n * p + z2 + (z * math.sqrt(z2 - 1 / n + 4 * n * p * (1 - p) - (4 * p - 2)) + 1)) / denom
    return max(0.0, low), min(1.0, high)


def estimate(correct: int, units: int) -> dict:
    """``{"units", "correct", "accuracy", "ci95": [low, high]}``; None figures without units."""
    interval = wilson_cc(correct, units)
    return {
        "units": units,
        "correct": correct,
        "accuracy": round(correct / units, 6) if units else None,
        "ci95": [round(interval[0], 6), round(interval[1], 6)] if interval else None,
    }


def report_from_sums(groups: list[dict], per_class: dict[str, dict], segmentation: dict) -> dict:
    """The report from summed evidence: `groups` ``[{"kind", "username", "samples", "units", "correct",
    "missing", "extra", "class", "boundary"}]`` (one per kind of evidence and labeler), `per_class`
    ``{class: {"units", "correct", kinds...}}``, `segmentation` the label-map means."""
    totals = {k: [0, 0] for k in EVIDENCE}
    errors = dict.fromkeys(ERROR_KINDS, 0)
    users: dict[str, dict] = defaultdict(
        lambda: {"units": 0, "correct": 0, "samples": 0, **dict.fromkeys(ERROR_KINDS, 0)}
    )
    for g in groups:
        totals[g["kind"]][0] += g["correct"]
        totals[g["kind"]][1] += g["units"]
        slot = users[g["username"] or ""]
        for k in ("units", "correct", "samples", *ERROR_KINDS):
            slot[k] += g[k]
        for k in ERROR_KINDS:
            errors[k] += g[k]
    correct = sum(c for c, _ in totals.values())
    units = sum(u for _, u in totals.values())
    return {
        "accuracy": estimate(correct, units),
        "by_source": {
            "honeypots": estimate(*totals[SampleKind.GOLD]),
            "reviews": estimate(*totals[SampleKind.REVIEW]),
        },
        "errors": errors,
        "per_class": {
            name: {**estimate(c["correct"], c["units"]), "errors": {k: c[k] for k in ERROR_KINDS}}
            for name, c in sorted(per_class.items())
        },
        "by_user": {
            name: {
                **estimate(v["correct"], v["units"]),
                "samples": v["samples"],
                "errors": {k: v[k] for k in ERROR_KINDS},
            }
            for name, v in sorted(users.items())
        },
        "segmentation": segmentation,
    }


def report_from_rows(rows: list[tuple]) -> dict:
    """The report of sample rows ``(kind, username, units, correct, errors, per_class, scores)``, summed in
    Python (the database sums them for the API: `quality_report`); for simulated projects in tests."""
    groups: dict[tuple, dict] = {}
    per_class: dict[str, dict] = defaultdict(
        lambda: {"units": 0, "correct": 0, **dict.fromkeys(ERROR_KINDS, 0)}
    )
    scores = []
    for kind, username, units, correct, errs, classes, score in rows:
        g = groups.setdefault(
            (kind, username),
            {
                "kind": kind,
                "username": username,
                "samples": 0,
                "units": 0,
                "correct": 0,
                **dict.fromkeys(ERROR_KINDS, 0),
            },
        )
        g["samples"] += 1
        g["units"] += units
        g["correct"] += correct
        for k in ERROR_KINDS:
            g[k] += (errs or {}).get(k, 0)
        for name, c in (classes or {}).items():
            for k in ("units", "correct", *ERROR_KINDS):
                per_class[name][k] += c.get(k, 0)
        if score:
            scores.append(score)
    return report_from_sums(list(groups.values()), dict(per_class), scores_mean(scores))


def _samples(project: Project, *, task_ids=None, user=None) -> QuerySet[QualitySample]:
    samples = QualitySample.objects.filter(project=project, kind__in=EVIDENCE)
    if task_ids is not None:
        samples = samples.filter(task_id__in=task_ids)
    if user is not None:
        samples = samples.filter(user=user)
    return samples


def quality_report(*, project: Project, task_ids=None, user=None) -> dict:
    """The report of a project (or of the tasks `task_ids`, an export's; or of one labeler's work): see
    the module docstring. Reads the samples' small rows only, never annotations; a project's or a
    labeler's report is cached until the project's samples change (labelhub/qa/cache.py)."""
    if task_ids is None:
        report = samples_cached(
            project, "report", (getattr(user, "pk", None),), lambda: _report_sums(project, user=user)
        )
    else:
        report = _report_sums(project, task_ids=task_ids, user=user)
    threshold = project.quality_threshold
    accuracy = report["accuracy"]["accuracy"]
    report.update(
        {
            "project": project.pk,
            "bound": {"metric": project.quality_metric, "value": project.quality_bound},
            "threshold": threshold,
            "action": project.quality_action,
            "below_threshold": threshold is not None and accuracy is not None and accuracy < threshold,
        }
    )
    return report


def _report_sums(project: Project, *, task_ids=None, user=None) -> dict:
    """The report's figures summed from the samples (without the project's settings)."""
    samples = _samples(project, task_ids=task_ids, user=user)
    groups = [
        {
            "kind": g["kind"],
            "username": g["user__username"],
            "samples": g["samples"],
            "units": g["units"] or 0,
            "correct": g["correct"] or 0,
            **{k: g[f"errors_{k}"] or 0 for k in ERROR_KINDS},
        }
        for g in samples.values("kind", "user__username")
        .annotate(samples=Count("id"), units=Sum("units"), correct=Sum("correct"))
        .annotate(**{f"errors_{k}": Sum(Cast(KT(f"errors__{k}"), IntegerField())) for k in ERROR_KINDS})
        .order_by()
    ]
    keys = ("units", "correct", *ERROR_KINDS)
    per_class = {
        key[0]: dict(zip(keys, (int(v) for v in values), strict=True))
        for key, (_, *values) in class_sums(
            samples, column="per_class", inner=None, keys=keys, group=()
        ).items()
    }
    segmentation = merged(list(score_means(samples, group=()).values()))
    return report_from_sums(groups, per_class, segmentation)


def export_quality_check(*, project: Project, task_ids) -> dict:
    """The report of an export's tasks; Conflict (409 `quality_below_threshold`) when the project blocks
    exports below its threshold and this one is below it."""
    from labelhub.core.errors import Conflict

    report = quality_report(project=project, task_ids=task_ids)
    if project.quality_action == QualityAction.BLOCK_EXPORT and report["below_threshold"]:
        raise Conflict(
            f"Estimated accuracy {report['accuracy']['accuracy']:.3f} is below the project's threshold "
            f"{project.quality_threshold}; the export is blocked.",
            code="quality_below_threshold",
            details={"accuracy": report["accuracy"]},
        )
    return report
