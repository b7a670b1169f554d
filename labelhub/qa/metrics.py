"""Project metrics, computed from stored data only (task events, revisions, gold scores).

The window [since, until) applies to when things happened (TaskEvent.created_at, GoldScore.created_at);
`user` narrows actions to those the user did, gold scores to theirs, and AI-assist figures to the tasks
they annotated. Times are seconds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, FloatField, IntegerField, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import DomainError
from labelhub.labeling.leases import stranded_q
from labelhub.labeling.models import EventKind, ReplicaKind, Task, TaskEvent, TaskReplica
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.projects.models import Project

from .aggregate import merged, score_means
from .cache import samples_cached
from .models import GoldScore, QualitySample, SampleKind
from .segmentation import KEYS, TOLERANCE

WORK_KINDS = (EventKind.SUBMITTED, EventKind.ACCEPTED, EventKind.FIX_ACCEPTED, EventKind.REJECTED)
REVIEW_KINDS = (EventKind.ACCEPTED, EventKind.FIX_ACCEPTED, EventKind.REJECTED)


def _window(qs, since: datetime | None, until: datetime | None, field: str = "created_at"):
    if since is not None:
        qs = qs.filter(**{f"{field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{field}__lt": until})
    return qs


def _mean(total: float, n: int) -> float | None:
    return round(total / n, 6) if n else None


AI_COUNTS = (
    "ai_regions",
    "kept",
    "deleted",
    "unchanged",
    "human_regions_added",
    "vertices_moved_or_added",
    "vertices_removed",
)


def _ai_figures(sums: dict) -> dict:
    totals = {k: sums[k] or 0 for k in AI_COUNTS}
    return {
        "tasks": sums["tasks"],
        "ai_regions": totals["ai_regions"],
        "kept": totals["kept"],
        "deleted": totals["deleted"],
        "unchanged": totals["unchanged"],
        "unchanged_share": _mean(totals["unchanged"], totals["ai_regions"]),
        "mean_iou": _mean(sums["iou_sum"] or 0.0, totals["kept"]),
        "human_regions_added": totals["human_regions_added"],
        "vertices_moved_or_added": totals["vertices_moved_or_added"],
        "vertices_removed": totals["vertices_removed"],
    }


def _ai_sums() -> dict:
    return {
        "tasks": Count("id"),
        "iou_sum": Sum(Cast(KT("data__ai_assist__iou_sum"), FloatField())),
        **{k: Sum(Cast(KT(f"data__ai_assist__{k}"), IntegerField())) for k in AI_COUNTS},
    }


def _with_ai(samples):
    return samples.filter(data__ai_assist__isnull=False).exclude(data__ai_assist=None)


def segmentation_quality(samples, *, gold_visible: bool) -> dict:
    """Pixel accuracy, Dice, IoU, BF1 from the samples: pre-labels vs accepted labels (overall, per model;
    per task: `per_task_page`), annotators vs gold and annotators vs reviewers' fixes (per user). Dice, IoU and BF1 are
    means over the classes present (per class in `per_class`). Summed in the database
    (labelhub/qa/aggregate.py)."""
    prelabel = samples.filter(kind=SampleKind.PRELABEL)
    by_model = {key[0] or "none": m for key, m in score_means(prelabel, group=("model",)).items()}
    fixes = score_means(samples.filter(kind=SampleKind.REVIEW, data__fixed=True), group=("username",))
    gold = None
    if gold_visible:
        users = score_means(samples.filter(kind=SampleKind.GOLD), group=("username",))
        gold = {"overall": merged(list(users.values())), "by_user": {k[0]: m for k, m in users.items()}}
    return {
        "tolerance_px": TOLERANCE,
        "prelabel": {
            "overall": merged(list(by_model.values())),
            "by_model": dict(sorted(by_model.items())),
        },
        "annotator_vs_gold": gold,
        "annotator_vs_fix": {
            "overall": merged(list(fixes.values())),
            "by_user": {k[0]: m for k, m in fixes.items()},
        },
    }


UNFINISHED_KINDS = (EventKind.RELEASED, EventKind.LEASE_EXPIRED, EventKind.REASSIGNED)


def _unfinished_claims(*, events, user, time_stage: dict, by_user: dict) -> None:
    """Add the active time of claims that ended without an action (released, expired, reassigned) to
    their stage and their holder: a task given back and claimed again counts all its active time, not
    only the last claim's. The holder is the releasing actor, the expired lease's `assignee` id, or the
    reassigned claim's `from` user name."""
    ended = events.filter(kind__in=UNFINISHED_KINDS, data__has_key="active_seconds")
    if user is not None:
        ended = ended.filter(
            Q(kind=EventKind.RELEASED, actor=user)
            | Q(kind=EventKind.LEASE_EXPIRED, data__assignee=user.pk)
            | Q(kind=EventKind.REASSIGNED, data__from=user.username)
        )
    rows = list(ended.values_list("kind", "from_stage", "actor__username", "data"))
    ids = {d.get("assignee") for k, _, _, d in rows if k == EventKind.LEASE_EXPIRED}
    names = dict(get_user_model().objects.filter(pk__in=ids - {None}).values_list("pk", "username"))
    for kind, stage, actor, data in rows:
        seconds = float(data.get("active_seconds", 0.0))
        slot = time_stage.setdefault(stage, {"actions": 0, "work_seconds": 0.0, "active_seconds": 0.0})
        slot["active_seconds"] += seconds
        holder = {
            EventKind.RELEASED: actor,
            EventKind.LEASE_EXPIRED: names.get(data.get("assignee")),
            EventKind.REASSIGNED: data.get("from"),
        }[kind]
        if holder:
            by_user[holder]["active_seconds"] += seconds


def _ai_assist_grouped(samples) -> tuple[dict, dict[str, dict]]:
    """The AI-assist figures of the done tasks, overall and per annotator (the task's last first-stage
    submitter), from one query grouped by annotator: ({tasks, ai_regions, ...}, {username: {tasks,
    ai_regions, kept_share, unchanged_share, mean_iou}})."""
    keys = ("tasks", "iou_sum", *AI_COUNTS)
    total = dict.fromkeys(keys, 0)
    out = {}
    for row in _with_ai(samples).values("user__username").annotate(**_ai_sums()).order_by():
        for k in keys:
            total[k] += row[k] or 0
        if row["user__username"] is None:
            continue
        figures = _ai_figures(row)
        out[row["user__username"]] = {
            "tasks": figures["tasks"],
            "ai_regions": figures["ai_regions"],
            "kept_share": _mean(figures["kept"], figures["ai_regions"]),
            "unchanged_share": figures["unchanged_share"],
            "mean_iou": figures["mean_iou"],
        }
    return _ai_figures(total), out


def _samples_of(project: Project, since, until, user):
    samples = _window(QualitySample.objects.filter(project=project), since, until)
    return samples if user is None else samples.filter(user=user)


def _sample_figures(*, project: Project, since, until, user, gold_visible: bool) -> dict:
    """What the metrics sum from quality samples and gold scores: {gold, ai_assist, ai_by_user,
    segmentation (without per_task)}; cached by project_metrics."""
    gold = None
    if gold_visible:
        scores = _window(GoldScore.objects.filter(task__project=project), since, until)
        if user is not None:
            scores = scores.filter(user=user)
        gold_users = {}
        total_score, total_n = 0.0, 0
        for row in scores.values("user__username").annotate(n=Count("id"), total=Sum("score")).order_by():
            gold_users[row["user__username"]] = {
                "scored": row["n"],
                "mean_score": _mean(row["total"], row["n"]),
            }
            total_score += row["total"]
            total_n += row["n"]
        gold = {"scored": total_n, "mean_score": _mean(total_score, total_n), "by_user": gold_users}
    samples = _samples_of(project, since, until, user)
    overall, ai_by_user = _ai_assist_grouped(samples.filter(kind=SampleKind.PRELABEL))
    return {
        "gold": gold,
        "ai_assist": overall,
        "ai_by_user": ai_by_user,
        "segmentation": segmentation_quality(samples, gold_visible=gold_visible),
    }


PER_TASK_MAX_PAGE_SIZE = 1000


def per_task_page(*, project: Project, since, until, user, page: tuple[int, int] | None) -> dict | None:
    """One page of the pre-labels' per-task figures, in sample order: {page, page_size, has_next,
    results: [{task, model, pixel_accuracy, dice, iou, boundary_f1}]}; None without `page`."""
    if page is None:
        return None
    number, size = page
    prelabel = _samples_of(project, since, until, user).filter(kind=SampleKind.PRELABEL)
    start = (number - 1) * size
    rows = list(
        prelabel.order_by("id").values_list(
            "task_id", KT("data__model"), *[Cast(KT(f"scores__{k}"), FloatField()) for k in KEYS]
        )[start : start + size + 1]
    )
    return {
        "page": number,
        "page_size": size,
        "has_next": len(rows) > size,
        "results": [
            {"task": task, "model": model or "none", **dict(zip(KEYS, values, strict=True))}
            for task, model, *values in rows[:size]
        ],
    }


def project_metrics(
    *,
    project: Project,
    since: datetime | None = None,
    until: datetime | None = None,
    user=None,
    gold_visible: bool = True,
    per_task: tuple[int, int] | None = None,
) -> dict:
    """The figures of the metrics API. Reads rows already aggregated where it can (counts in SQL) and
    the QualitySamples computed when things happened, never annotations: its cost grows with the
    project's events and samples, not with its images' pixels. `gold_visible` False (a member who is no
    manager, in a project without immediate feedback) leaves out every gold figure, so the answer is the
    same whether or not a task the member submitted was gold. `per_task` (page, page size): that page of
    the pre-labels' per-task figures (None: left out, the answer stays small at 10,000 tasks).

    The figures summed from quality samples (gold, AI assist, segmentation) are cached per project
    until its samples change (labelhub/qa/cache.py); the rest is read live."""
    stages = [*project.stage_names, STAGE_DONE]
    # Tasks per stage and status, now (with a user: the tasks assigned to or reserved for them).
    tasks = Task.objects.filter(project=project)
    if user is not None:
        tasks = tasks.filter(assignee=user)
    per_stage: dict[str, dict[str, int]] = {s: {} for s in stages}
    for row in tasks.values("stage", "status").annotate(n=Count("id")).order_by():
        per_stage.setdefault(row["stage"], {})[row["status"]] = row["n"]

    events = _window(TaskEvent.objects.filter(task__project=project), since, until)
    actions = events.filter(kind__in=WORK_KINDS)
    if user is not None:
        actions = actions.filter(actor=user)
    blank = {k: 0 for k in [*WORK_KINDS, EventKind.SKIPPED_BY_SAMPLING]}
    by_stage = {s: dict(blank) for s in project.stage_names}
    time_stage = {s: {"actions": 0, "work_seconds": 0.0, "active_seconds": 0.0} for s in project.stage_names}
    by_user: dict[str, dict] = defaultdict(
        lambda: {
            "actions": 0,
            "submitted": 0,
            "reviewed": 0,
            "work_seconds": 0.0,
            "active_seconds": 0.0,
            "rejections_received": 0,
        }
    )
    # One row per stage, kind and actor, summed in the database (no JSON decoded per event). Not
    # .iterator(): a server-side cursor plans for the first rows and took ~50 s on 40,000 events.
    rows = (
        actions.values("from_stage", "kind", "actor__username")
        .annotate(
            n=Count("id"),
            work=Sum(Cast(KT("data__work_seconds"), FloatField())),
            active=Sum(Cast(KT("data__active_seconds"), FloatField())),
        )
        .order_by()
    )
    for row in rows:
        stage, n, work, active = row["from_stage"], row["n"], row["work"] or 0.0, row["active"] or 0.0
        by_stage.setdefault(stage, dict(blank))[row["kind"]] += n
        slot = time_stage.setdefault(stage, {"actions": 0, "work_seconds": 0.0, "active_seconds": 0.0})
        slot["actions"] += n
        slot["work_seconds"] += work
        slot["active_seconds"] += active
        name = row["actor__username"]
        if name:
            by_user[name]["actions"] += n
            by_user[name]["submitted" if row["kind"] == EventKind.SUBMITTED else "reviewed"] += n
            by_user[name]["work_seconds"] += work
            by_user[name]["active_seconds"] += active
    _unfinished_claims(events=events, user=user, time_stage=time_stage, by_user=by_user)
    if user is None:
        for row in (
            events.filter(kind=EventKind.SKIPPED_BY_SAMPLING)
            .values("from_stage")
            .annotate(n=Count("id"))
            .order_by()
        ):
            if row["from_stage"] in by_stage:
                by_stage[row["from_stage"]][EventKind.SKIPPED_BY_SAMPLING] = row["n"]
    # Rejections received: a rejection back to the first stage counts against the task's last annotator.
    rejected = events.filter(kind=EventKind.REJECTED, to_stage=project.first_stage)
    if user is not None:
        rejected = rejected.filter(task__last_annotator=user)
    for row in (
        rejected.exclude(task__last_annotator=None)
        .values("task__last_annotator__username")
        .annotate(n=Count("id"))
        .order_by()
    ):
        by_user[row["task__last_annotator__username"]]["rejections_received"] += row["n"]

    time_out = {}
    for stage, slot in time_stage.items():
        n = slot["actions"]
        time_out[stage] = {
            "actions": n,
            "work_seconds_total": round(slot["work_seconds"], 3),
            "work_seconds_mean": _mean(slot["work_seconds"], n),
            "active_seconds_total": round(slot["active_seconds"], 3),
            "active_seconds_mean": _mean(slot["active_seconds"], n),
        }
    rejection_rate = {}
    for stage, counts in by_stage.items():
        if stage == project.first_stage:
            continue
        reviewed = sum(counts[k] for k in REVIEW_KINDS)
        rejection_rate[stage] = _mean(counts[EventKind.REJECTED], reviewed)

    # Tasks accepted after the last stage within the window.
    # (Events on a task already done, such as marking it gold, stay in "done": they do not count.)
    done_events = events.filter(to_stage=STAGE_DONE).exclude(from_stage=STAGE_DONE)
    if user is not None:
        done_events = done_events.filter(task__last_annotator=user)
    done = done_events.values("task_id").distinct().count()
    hours = (until - since).total_seconds() / 3600 if since and until and until > since else None

    figures = samples_cached(
        project,
        "metrics",
        (since, until, getattr(user, "pk", None), gold_visible),
        lambda: _sample_figures(
            project=project, since=since, until=until, user=user, gold_visible=gold_visible
        ),
    )
    gold, ai_by_user = figures["gold"], figures["ai_by_user"]
    for name in ai_by_user:
        by_user[name]  # noqa: B018 - an annotator whose accepted work falls in the window gets a row
    for name, slot in by_user.items():
        slot["work_seconds"] = round(slot["work_seconds"], 3)
        slot["active_seconds"] = round(slot["active_seconds"], 3)
        slot["rejection_rate"] = _mean(slot["rejections_received"], slot["submitted"])
        slot["actions_per_hour"] = round(slot["actions"] / hours, 6) if hours else None
        if gold is not None:
            slot["gold_mean_score"] = gold["by_user"].get(name, {}).get("mean_score")
        slot["ai_assist"] = ai_by_user.get(name)
    return {
        "project": project.pk,
        "user": getattr(user, "username", None),
        "since": since,
        "until": until,
        "tasks_per_stage": per_stage,
        # Open review tasks that no member of the stage's role may take: offered to managers and owners.
        "stranded": _stranded(project) if user is None else {},
        "throughput": {
            "by_stage": by_stage,
            "done": done,
            "done_per_hour": round(done / hours, 6) if hours else None,
        },
        "time": time_out,
        "rejection_rate": rejection_rate,
        "gold": gold,
        "ai_assist": figures["ai_assist"],
        "segmentation": {
            **figures["segmentation"],
            "prelabel": {
                **figures["segmentation"]["prelabel"],
                "per_task": per_task_page(
                    project=project, since=since, until=until, user=user, page=per_task
                ),
            },
        },
        "consensus": consensus_agreement(project=project, since=since, until=until, user=user),
        "by_user": dict(by_user),
    }


def consensus_agreement(*, project: Project, since=None, until=None, user=None) -> dict:
    """Per annotator, their consensus passes and their mean agreement with the merged result (F1 of
    their regions against the regions kept)."""
    passes = _window(
        TaskReplica.objects.filter(
            task__project=project, kind=ReplicaKind.CONSENSUS, agreement__isnull=False
        ),
        since,
        until,
        "submitted_at",
    )
    if user is not None:
        passes = passes.filter(user=user)
    by_user = {
        row["user__username"]: {"passes": row["n"], "mean_agreement": round(row["mean"], 6)}
        for row in passes.values("user__username").annotate(n=Count("id"), mean=Avg("agreement")).order_by()
    }
    return {"by_user": by_user}


def _stranded(project: Project) -> dict[str, int]:
    """Per review stage, the open tasks no member of its role may take (labeling.leases.stranded_q)."""
    counts = {stage: 0 for stage in project.stage_names[1:]}
    rows = Task.objects.filter(stranded_q(project)).values("stage").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["stage"]] = row["n"]
    return counts


__all__ = ["per_task_page", "project_metrics"]


def metrics_subject(*, viewer, project: Project, user_id: int | None):
    """Whose metrics `viewer` reads: managers and owners anyone's (`user_id`, or everyone's: None);
    others only their own (Forbidden for someone else's). DomainError for a user who is no member."""
    user = None
    if user_id is not None:
        user = (
            get_user_model()
            .objects.filter(pk=user_id, memberships__organization_id=project.organization_id)
            .first()
        )
        if user is None:
            raise DomainError("No such member.", field="user")
    role = role_of(user=viewer, organization_id=project.organization_id)
    if role in MANAGING_ROLES:
        return user
    if user is not None and user.pk != viewer.pk:
        role_require(
            user=viewer,
            organization_id=project.organization_id,
            roles=MANAGING_ROLES,
            action="see other members' metrics",
        )
    return viewer


def gold_visible_to(*, viewer, project: Project) -> bool:
    """Gold figures are for managers and owners, and for every member of a project with immediate
    feedback (which reveals a honeypot to its labeler right after its submit anyway)."""
    if project.immediate_feedback:
        return True
    return role_of(user=viewer, organization_id=project.organization_id) in MANAGING_ROLES
