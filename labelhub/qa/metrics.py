"""Project metrics, computed from stored data only (task events, revisions, gold scores).

The window [since, until) applies to when things happened (TaskEvent.created_at, GoldScore.created_at);
`user` narrows actions to those the user did, gold scores to theirs, and AI-assist figures to the tasks
they annotated. Times are seconds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import DomainError
from labelhub.labeling.leases import stranded_q
from labelhub.labeling.models import AnnotationRevision, EventKind, Task, TaskEvent
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.labeling.regions import region_mask
from labelhub.projects.models import Project

from .gold import mask_iou
from .models import GoldScore
from .segmentation import segmentation_quality

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


def _vertices(region: dict) -> Counter:
    points: Counter = Counter()
    for poly in region.get("polygons") or []:
        for ring in [poly["exterior"], *poly.get("holes", [])]:
            points.update((float(x), float(y)) for x, y in ring)
    return points


def _geometry(region: dict) -> tuple:
    return (region.get("label"), region.get("kind"), region.get("polygons"), region.get("rle"))


def ai_assist(*, tasks: list[Task], accepted_revision: dict[int, int]) -> dict:
    """Compare each done task's AI pre-label (its first revision authored by no one, regions with source
    "ai") with the accepted revision: AI regions kept (same id), their mean IoU, the share accepted
    unchanged, regions deleted or added by humans, and polygon vertices moved or added / removed."""
    ai_total = kept = unchanged = deleted = human_added = moved_or_added = removed = 0
    iou_sum = 0.0
    tasks_with_ai = 0
    prelabels: dict[int, list] = {}
    finals: dict[int, list] = {}
    # Two kinds of revision per task, read in one query: the pre-label (first revision with no author)
    # and the accepted one.
    revisions = (
        AnnotationRevision.objects.filter(annotation__task_id__in=[t.pk for t in tasks])
        .filter(Q(author__isnull=True) | Q(number__in=set(accepted_revision.values())))
        .order_by("annotation__task_id", "number")
        .values_list("annotation__task_id", "number", "author_id", "regions")
    )
    for task_id, number, author_id, regions in revisions.iterator():
        if author_id is None:
            prelabels.setdefault(task_id, regions)
        if number == accepted_revision.get(task_id):
            finals[task_id] = regions
    for task in tasks:
        prelabel = prelabels.get(task.pk)
        ai = [r for r in prelabel or [] if r.get("source") == "ai" or r.get("prediction_id") is not None]
        if not ai:
            continue
        tasks_with_ai += 1
        final = finals.get(task.pk) or []
        by_id = {r["id"]: r for r in final}
        ai_ids = {r["id"] for r in ai}
        human_added += sum(1 for r in final if r["id"] not in ai_ids)
        height, width = task.image.height, task.image.width
        for region in ai:
            ai_total += 1
            after = by_id.get(region["id"])
            if after is None:
                deleted += 1
                continue
            kept += 1
            if _geometry(after) == _geometry(region):
                unchanged += 1
                iou_sum += 1.0
                continue
            iou_sum += mask_iou(region_mask(region, height, width), region_mask(after, height, width))
            before_pts, after_pts = _vertices(region), _vertices(after)
            moved_or_added += sum((after_pts - before_pts).values())
            removed += sum((before_pts - after_pts).values())
    return {
        "tasks": tasks_with_ai,
        "ai_regions": ai_total,
        "kept": kept,
        "deleted": deleted,
        "unchanged": unchanged,
        "unchanged_share": _mean(unchanged, ai_total),
        "mean_iou": _mean(iou_sum, kept),
        "human_regions_added": human_added,
        "vertices_moved_or_added": moved_or_added,
        "vertices_removed": removed,
    }


def _ai_assist_by_annotator(tasks: list[Task], accepted_revision: dict[int, int]) -> dict[str, dict]:
    """Per annotator (the task's last first-stage submitter), the AI-assist figures of their accepted
    tasks: {tasks, ai_regions, kept_share, unchanged_share, mean_iou}."""
    groups: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if task.last_annotator is not None:
            groups[task.last_annotator.username].append(task)
    out = {}
    for name, group in groups.items():
        figures = ai_assist(tasks=group, accepted_revision=accepted_revision)
        out[name] = {
            "tasks": figures["tasks"],
            "ai_regions": figures["ai_regions"],
            "kept_share": _mean(figures["kept"], figures["ai_regions"]),
            "unchanged_share": figures["unchanged_share"],
            "mean_iou": figures["mean_iou"],
        }
    return out


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


def project_metrics(
    *, project: Project, since: datetime | None = None, until: datetime | None = None, user=None
) -> dict:
    stages = [*project.stage_names, STAGE_DONE]
    # Tasks per stage and status, now (with a user: the tasks assigned to or reserved for them).
    tasks = Task.objects.filter(project=project)
    if user is not None:
        tasks = tasks.filter(assignee=user)
    per_stage: dict[str, dict[str, int]] = {s: {} for s in stages}
    for row in tasks.values("stage", "status").annotate(n=Count("id")):
        per_stage.setdefault(row["stage"], {})[row["status"]] = row["n"]

    events = _window(TaskEvent.objects.filter(task__project=project), since, until)
    actions = events.filter(kind__in=WORK_KINDS)
    if user is not None:
        actions = actions.filter(actor=user)
    by_stage = {s: {k: 0 for k in [*WORK_KINDS, EventKind.SKIPPED_BY_SAMPLING]} for s in project.stage_names}
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
    for event in actions.select_related("actor"):
        stage = event.from_stage
        by_stage.setdefault(stage, {k: 0 for k in [*WORK_KINDS, EventKind.SKIPPED_BY_SAMPLING]})
        by_stage[stage][event.kind] += 1
        slot = time_stage.setdefault(stage, {"actions": 0, "work_seconds": 0.0, "active_seconds": 0.0})
        slot["actions"] += 1
        slot["work_seconds"] += float(event.data.get("work_seconds", 0.0))
        slot["active_seconds"] += float(event.data.get("active_seconds", 0.0))
        name = event.actor.username if event.actor else None
        if name:
            by_user[name]["actions"] += 1
            by_user[name]["submitted" if event.kind == EventKind.SUBMITTED else "reviewed"] += 1
            by_user[name]["work_seconds"] += float(event.data.get("work_seconds", 0.0))
            by_user[name]["active_seconds"] += float(event.data.get("active_seconds", 0.0))
    _unfinished_claims(events=events, user=user, time_stage=time_stage, by_user=by_user)
    if user is None:
        for row in (
            events.filter(kind=EventKind.SKIPPED_BY_SAMPLING).values("from_stage").annotate(n=Count("id"))
        ):
            if row["from_stage"] in by_stage:
                by_stage[row["from_stage"]][EventKind.SKIPPED_BY_SAMPLING] = row["n"]
    # Rejections received: a rejection back to the first stage counts against the task's last annotator.
    rejected = events.filter(kind=EventKind.REJECTED, to_stage=project.first_stage).select_related(
        "task__last_annotator"
    )
    for event in rejected:
        annotator = event.task.last_annotator
        if annotator is not None and (user is None or annotator.pk == user.pk):
            by_user[annotator.username]["rejections_received"] += 1

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
    done_events = events.filter(to_stage=STAGE_DONE).order_by("task_id", "-created_at", "-id")
    if user is not None:
        done_events = done_events.filter(task__last_annotator=user)
    accepted_revision: dict[int, int] = {}
    for task_id, revision in done_events.values_list("task_id", "revision"):
        accepted_revision.setdefault(task_id, revision or 0)
    # image tasks: a video task's propagated vs kept shapes are in tasks/{id}/video-metrics/
    done_tasks = list(
        Task.objects.filter(pk__in=accepted_revision, image__isnull=False).select_related(
            "image", "last_annotator"
        )
    )
    hours = (until - since).total_seconds() / 3600 if since and until and until > since else None

    scores = _window(GoldScore.objects.filter(task__project=project), since, until)
    if user is not None:
        scores = scores.filter(user=user)
    gold_users = {}
    total_score, total_n = 0.0, 0
    for username, score in scores.values_list("user__username", "score"):
        slot = gold_users.setdefault(username, {"scored": 0, "sum": 0.0})
        slot["scored"] += 1
        slot["sum"] += score
        total_score += score
        total_n += 1
    gold = {
        "scored": total_n,
        "mean_score": _mean(total_score, total_n),
        "by_user": {
            u: {"scored": s["scored"], "mean_score": _mean(s["sum"], s["scored"])}
            for u, s in gold_users.items()
        },
    }
    ai_by_user = _ai_assist_by_annotator(done_tasks, accepted_revision)
    for name in ai_by_user:
        by_user[name]  # noqa: B018 - an annotator whose accepted work falls in the window gets a row
    for name, slot in by_user.items():
        slot["work_seconds"] = round(slot["work_seconds"], 3)
        slot["active_seconds"] = round(slot["active_seconds"], 3)
        slot["rejection_rate"] = _mean(slot["rejections_received"], slot["submitted"])
        slot["actions_per_hour"] = round(slot["actions"] / hours, 6) if hours else None
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
            "done": len(accepted_revision),
            "done_per_hour": round(len(accepted_revision) / hours, 6) if hours else None,
        },
        "time": time_out,
        "rejection_rate": rejection_rate,
        "gold": gold,
        "ai_assist": ai_assist(tasks=done_tasks, accepted_revision=accepted_revision),
        "segmentation": segmentation_quality(
            project=project,
            tasks=done_tasks,
            accepted_revision=accepted_revision,
            events=events if user is None else events.filter(Q(actor=user) | Q(task__last_annotator=user)),
        ),
        "by_user": dict(by_user),
    }


def _stranded(project: Project) -> dict[str, int]:
    """Per review stage, the open tasks no member of its role may take (labeling.leases.stranded_q)."""
    counts = {stage: 0 for stage in project.stage_names[1:]}
    rows = Task.objects.filter(stranded_q(project)).values("stage").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["stage"]] = row["n"]
    return counts


__all__ = ["ai_assist", "project_metrics"]


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
