"""Review actions on a task in the QA pipeline: the first-stage worker submits (a submit measured below
the project's `quality_send_back_below` goes back to its annotator by the rejection's path, by nobody);
a reviewer accepts, rejects with comments, or fixes and accepts. Each needs the caller's live lease, is recorded as a
TaskEvent, and publishes "task.stage_changed" (and "task.submitted") on commit, which webhooks and gold
scoring subscribe to."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from labelhub.core.errors import Conflict, DomainError, Forbidden
from labelhub.core.events import TaskSubmitted, announce

from .annotations import Writer, annotation_write
from .events import event_record, stage_changed_publish
from .leases import (
    claim_clear,
    earlier_review_refuse,
    is_own_work,
    lease_require,
    review_excluded,
    task_locked,
    work_data,
)
from .models import Comment, ConsensusResult, EventKind, ReplicaKind, Task, TaskReplica, TaskStatus
from .pipeline import done_refuse, reject_target, stage_after, stage_is_review, task_is_done
from .replicas import consensus_merge, consensus_quorum, replica_finish, replica_of
from .selectors import revision_current
from .services import comment_create, comment_system


def _advance(task: Task, *, actor, kind: str, now: datetime, revision: int | None, data: dict) -> None:
    """Move a task past its current stage, skipping the stages whose sampling does not pick it, and
    record the events. Past the last stage the task is done."""
    from_stage = task.stage
    move = stage_after(task.project, from_stage, task_id=task.pk)
    event_record(
        task,
        kind,
        at=now,
        actor=actor,
        from_stage=from_stage,
        to_stage=move.next_stage,
        revision=revision,
        data=data,
    )
    for skip in move.skips:
        event_record(
            task,
            EventKind.SKIPPED_BY_SAMPLING,
            at=now,
            from_stage=skip.stage,
            to_stage=skip.to_stage,
            revision=revision,
            data={"sample_rate": skip.sample_rate},
        )
    claim_clear(task)
    task.stage = move.to_stage
    if move.done:
        task.status = TaskStatus.DONE
    task.save()
    stage_changed_publish(task, from_stage=from_stage, action=kind, actor=actor, revision=revision)


def _review_require(task: Task, action: str) -> None:
    done_refuse(task)
    if not stage_is_review(task.project, task.stage):
        raise Conflict(
            f"The task is in its first stage ({task.stage!r}), not in review; it cannot be {action}.",
            code="not_in_review",
        )


def _not_own_require(task: Task, user) -> None:
    if is_own_work(task=task, user=user):
        raise Forbidden("You may not review your own work.", code="self_review")


@transaction.atomic
def task_submit(*, task: Task, user) -> Task:
    """The first-stage worker hands their annotation on to the next stage (a gold task is scored: the
    "task.submitted" event)."""
    task = task_locked(task)
    now = timezone.now()
    if not task_is_done(task) and stage_is_review(task.project, task.stage):
        raise Conflict(
            f"Only first-stage work is submitted; in {task.stage!r} a reviewer accepts or rejects.",
            code="invalid_transition",
        )
    lease_require(task=task, user=user, now=now)
    revision = task.annotation.current_revision
    replica = replica_of(task=task, user=user)
    if replica is not None:
        return _replica_submit(task, replica=replica, user=user, now=now, revision=revision)
    task.last_annotator = user
    measured = _submitted_publish(task, user=user, revision=revision)
    due = _send_back_due(task, measured=measured, annotator=user)
    if due is not None:
        _submitted_record(task, actor=user, now=now, revision=revision, data=work_data(task, now))
        _quality_send_back(task, due=due, annotator=user, now=now, revision=revision)
        return task
    _advance(
        task, actor=user, kind=EventKind.SUBMITTED, now=now, revision=revision, data=work_data(task, now)
    )
    return task


def _submitted_publish(task: Task, *, user, revision: int) -> dict | None:
    """Announce the submit (in-transaction subscribers score a gold task); the submit's measured quality
    where a subscriber put one in the event's context ({"source", "value"}), else None."""
    context = {"task": task, "user": user}
    announce(
        TaskSubmitted(task=task.pk, user=user.pk, revision=revision, gold=task.is_gold),
        organization_id=task.project.organization_id,
        project_id=task.project_id,
        context=context,
    )
    return context.get("quality")


def _submitted_record(task: Task, *, actor, now: datetime, revision: int | None, data: dict) -> None:
    """The timeline's submit of a task that stays in its first stage (a pass kept, or sent back)."""
    stage = task.stage
    event_record(
        task,
        EventKind.SUBMITTED,
        at=now,
        actor=actor,
        from_stage=stage,
        to_stage=stage,
        revision=revision,
        data=data,
    )


SEND_BACK_WHAT = {
    "gold": "accuracy against the known-correct regions",
    "consensus": "agreement between the independent annotations",
}


def _send_back_due(task: Task, *, measured: dict | None, annotator) -> dict | None:
    """Whether a submit measured `measured` ({"source": "gold" | "consensus", "value": 0..1}) goes back
    to its annotator: below the project's `quality_send_back_below`, fewer than
    `quality_send_back_limit` automatic send-backs so far (on a honeypot: of this annotator), and for a
    gold task only where the project gives immediate feedback (else the send-back would tell the
    labeler that the task was gold). The send-back's record, or None."""
    project = task.project
    below = project.quality_send_back_below
    if below is None or measured is None or measured["value"] >= below:
        return None
    if measured["source"] == "gold" and not project.immediate_feedback:
        return None
    earlier = task.events.filter(kind=EventKind.REJECTED, actor__isnull=True, data__has_key="send_back")
    if measured["source"] == "gold":
        earlier = earlier.filter(data__send_back__user=annotator.pk)
    count = earlier.count()
    if count >= project.quality_send_back_limit:
        return None
    return {
        "source": measured["source"],
        "value": round(measured["value"], 6),
        "threshold": below,
        "count": count + 1,
        "limit": project.quality_send_back_limit,
        "user": annotator.pk,
    }


def _quality_send_back(task: Task, *, due: dict, annotator, now: datetime, revision: int) -> None:
    """Send the task back to its first stage, reserved for `annotator`, with a system comment saying why:
    the reviewer's rejection path (`_send_back`), by nobody."""
    comment = comment_system(
        task=task,
        text=f"Sent back automatically: the {SEND_BACK_WHAT[due['source']]} is {due['value']:.2f}, below "
        f"the project's threshold {due['threshold']:.2f} (send-back {due['count']} of at most "
        f"{due['limit']}). Check the regions and submit again.",
    )
    _send_back(
        task,
        actor=None,
        now=now,
        target=task.project.first_stage,
        assignee=annotator,
        revision=revision,
        data={"comments": [comment.pk], "send_back": due},
    )


def _send_back(task: Task, *, actor, now: datetime, target: str, assignee, revision: int, data: dict) -> None:
    """Return the task to stage `target`, reserved for `assignee`: the one path of a rejection, a
    reviewer's or an automatic one (a "rejected" event, "task.stage_changed" on commit)."""
    from_stage = task.stage
    event_record(
        task,
        EventKind.REJECTED,
        at=now,
        actor=actor,
        from_stage=from_stage,
        to_stage=target,
        revision=revision,
        data=data,
    )
    task.stage = target
    claim_clear(task, assignee=assignee)
    task.save()
    stage_changed_publish(
        task, from_stage=from_stage, action=EventKind.REJECTED, actor=actor, revision=revision
    )


def _replica_submit(task: Task, *, replica: TaskReplica, user, now: datetime, revision: int) -> Task:
    """Submit one independent pass (labeling/replicas.py): it is kept, scored if gold ("task.submitted"),
    and the task goes back to its pre-label in the first stage; the pass that completes a consensus task
    merges them all into one revision, which goes on to review. A honeypot's pass measured below the
    project's send-back threshold stays open and goes back to its labeler; so does a merge whose mean
    agreement is below it, to the annotator who completed it (`_send_back_due`)."""
    regions = revision_current(annotation=task.annotation)
    measured = _submitted_publish(task, user=user, revision=revision)
    _submitted_record(task, actor=user, now=now, revision=revision, data=work_data(task, now))
    if replica.kind == ReplicaKind.HONEYPOT:
        due = _send_back_due(task, measured=measured, annotator=user)
        if due is not None:  # the pass stays open: the labeler corrects their own regions
            _quality_send_back(task, due=due, annotator=user, now=now, revision=revision)
            return task
    replica_finish(task=task, replica=replica, regions=regions.regions if regions else [], now=now)
    claim_clear(task)
    task.save()
    if replica.kind != ReplicaKind.CONSENSUS:
        return task
    passes = list(
        TaskReplica.objects.filter(task=task, submitted_at__isnull=False).order_by("submitted_at", "id")
    )
    project = task.project
    if len(passes) < project.consensus_annotators:
        return task
    quorum = consensus_quorum(project)
    merged = consensus_merge(
        [(p.user_id, p.regions) for p in passes],
        height=task.image.height,
        width=task.image.width,
        quorum=quorum,
        min_iou=project.consensus_min_iou,
    )
    seen: set = set()
    for region, agreement in zip(merged["regions"], merged["agreement"], strict=True):
        rid = region.get("id")
        while rid in seen:  # two passes used one id for different objects
            rid = f"{rid}-{len(seen)}"
        seen.add(rid)
        region["id"] = agreement["id"] = rid
    written = annotation_write(
        task=task,
        author=None,
        base_revision=task.annotation.current_revision,
        regions=merged["regions"],
        writer=Writer.CONSENSUS,
    )
    ConsensusResult.objects.create(
        task=task,
        annotators=len(passes),
        quorum=quorum,
        min_iou=project.consensus_min_iou,
        regions=merged["agreement"],
        revision=written.number,
    )
    for p, score in zip(passes, merged["per_pass"], strict=True):
        p.agreement = score
        p.save(update_fields=["agreement"])
    task.last_annotator = user
    agreement = sum(merged["per_pass"]) / len(passes)
    due = _send_back_due(task, measured={"source": "consensus", "value": agreement}, annotator=user)
    if due is not None:  # the merged revision goes to the last annotator to correct, then on to review
        _submitted_record(task, actor=None, now=now, revision=written.number, data={"consensus": True})
        _quality_send_back(task, due=due, annotator=user, now=now, revision=written.number)
        return task
    _advance(
        task, actor=None, kind=EventKind.SUBMITTED, now=now, revision=written.number, data={"consensus": True}
    )
    return task


def _review_begin(task: Task, *, user, action: str) -> tuple[Task, datetime]:
    """The preconditions every review decision shares, checked on the task re-read under its row lock:
    a review stage, not a stage the user checked earlier, their live lease, not their own work. Returns
    the locked task and the decision's time."""
    task = task_locked(task)
    now = timezone.now()
    _review_require(task, action)
    earlier_review_refuse(task=task, user=user)  # before the lease: the clearer reason
    lease_require(task=task, user=user, now=now)
    _not_own_require(task, user)
    return task, now


@transaction.atomic
def task_accept(*, task: Task, user) -> Task:
    """A reviewer passes the task to the next stage (or to done after the last)."""
    task, now = _review_begin(task, user=user, action="accepted")
    _advance(
        task,
        actor=user,
        kind=EventKind.ACCEPTED,
        now=now,
        revision=task.annotation.current_revision,
        data=work_data(task, now),
    )
    return task


@transaction.atomic
def task_fix_accept(*, task: Task, user, base_revision: int, regions: list) -> Task:
    """A reviewer saves their corrected regions (a revision credited to them) and accepts the task."""
    task, now = _review_begin(task, user=user, action="fixed and accepted")
    revision = annotation_write(task=task, author=user, base_revision=base_revision, regions=regions)
    _advance(
        task,
        actor=user,
        kind=EventKind.FIX_ACCEPTED,
        now=now,
        revision=revision.number,
        data={**work_data(task, now), "summary": revision.summary},
    )
    return task


def _worker_at(task: Task, stage: str):
    """Who worked `stage` last for this task: its annotator for the first stage, else the reviewer who
    last passed it on from there (None when unknown or when it is now their own work)."""
    if not stage_is_review(task.project, stage):
        return task.last_annotator
    event = (
        task.events.filter(
            from_stage=stage, kind__in=[EventKind.ACCEPTED, EventKind.FIX_ACCEPTED], actor__isnull=False
        )
        .select_related("actor")
        .order_by("-created_at", "-id")
        .first()
    )
    if event is None:
        return None
    # Reserve it only for someone who may take it there (never a task offered to nobody).
    task_then = Task(pk=task.pk, project=task.project, stage=stage)
    if review_excluded(task=task_then, user=event.actor) is not None:
        return None
    return event.actor


@transaction.atomic
def task_reject(*, task: Task, user, comments: list[dict]) -> Task:
    """A reviewer sends the task back to the stage its pipeline names (`reject_to`), reserved for whoever
    worked it there, with at least one comment (pinned to a region id or to a point x, y, or neither)."""
    task, now = _review_begin(task, user=user, action="rejected")
    if not isinstance(comments, list) or not comments:
        raise DomainError("A rejection needs at least one comment saying what to fix.", field="comments")
    created: list[Comment] = []
    for i, item in enumerate(comments):
        if not isinstance(item, dict):
            raise DomainError("A comment is {text, region_id?, x?, y?, frame?}.", field=f"comments[{i}]")
        try:
            created.append(
                comment_create(
                    task=task,
                    author=user,
                    text=item.get("text", ""),
                    region_id=item.get("region_id") or "",
                    x=item.get("x"),
                    y=item.get("y"),
                    frame=item.get("frame"),
                )
            )
        except DomainError as exc:
            exc.field = f"comments[{i}].{exc.field}" if exc.field else f"comments[{i}]"
            raise
    target = reject_target(task.project, task.stage)
    _send_back(
        task,
        actor=user,
        now=now,
        target=target,
        assignee=_worker_at(task, target),
        revision=task.annotation.current_revision,
        data={**work_data(task, now), "comments": [c.pk for c in created]},
    )
    return task
