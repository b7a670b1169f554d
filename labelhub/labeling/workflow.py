"""The multi-stage QA workflow (writes): claiming a task with a lease, heartbeats, submit, accept, reject,
fix-and-accept, release, manager reassignment, gold marking and lease expiry.

A task sits in one stage of its project's pipeline ([{name, role, sample_rate, reject_to}]). Status `open`
means it waits in the stage's queue (if `assignee` is set it is reserved for that user: a rejected task goes
back to whoever worked it, a manager's reassignment names someone); `in_progress` means `assignee` holds a
lease until `lease_expires_at`; `done` means accepted after the last stage (stage "done").

Every change is recorded as a TaskEvent (who, when, from which stage to which) and announced by a
"task.stage_changed" webhook when the task moves.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import Conflict, DomainError, Forbidden, NotFound
from labelhub.projects.models import Project

from .models import AnnotationRevision, Comment, EventKind, Task, TaskEvent, TaskStatus
from .regions import regions_clean

STAGE_DONE = "done"


# --- pipeline helpers ----------------------------------------------------------------------------------


def stage_index(project: Project, stage: str) -> int:
    """Position of `stage` in the project's pipeline; DomainError (400) for an unknown stage."""
    names = project.stage_names
    if stage not in names:
        raise DomainError(f"Unknown stage {stage!r}; the pipeline is {names}.", field="stage")
    return names.index(stage)


def stage_sampled(*, project_id: int, task_id: int, stage: str, rate: float) -> bool:
    """Whether a stage with sampling rate `rate` (0..1) sees this task. Deterministic: the same task and
    stage always give the same answer, and about `rate` of all tasks are seen."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{project_id}:{task_id}:{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _lease_delta() -> timedelta:
    return timedelta(seconds=settings.LABELHUB_LEASE_SECONDS)


def _event(
    task: Task,
    kind: str,
    *,
    at: datetime,
    actor=None,
    from_stage: str = "",
    to_stage: str = "",
    revision: int | None = None,
    data: dict | None = None,
) -> TaskEvent:
    return TaskEvent.objects.create(
        task=task,
        kind=kind,
        actor=actor,
        from_stage=from_stage,
        to_stage=to_stage,
        revision=revision,
        data=data or {},
        created_at=at,
    )


def _own_work(user) -> Q:
    """Tasks the user worked on: submitted from the first stage, or authored a revision of."""
    authored = AnnotationRevision.objects.filter(annotation__task=OuterRef("pk"), author=user)
    return Q(last_annotator=user) | Q(Exists(authored))


def is_own_work(*, task: Task, user) -> bool:
    return Task.objects.filter(pk=task.pk).filter(_own_work(user)).exists()


def _locked(task: Task) -> Task:
    """The task re-read under a row lock (inside the caller's transaction)."""
    of = ("self",) if connection.features.has_select_for_update_of else ()
    return Task.objects.select_for_update(of=of).select_related("project").get(pk=task.pk)


def lease_require(*, task: Task, user, now: datetime | None = None) -> None:
    """Conflict (409) unless `user` holds the task's lease and it has not expired."""
    now = now or timezone.now()
    if task.status == TaskStatus.DONE:
        raise Conflict("The task is accepted; its workflow is over.", code="task_done")
    if task.status != TaskStatus.IN_PROGRESS or task.assignee_id != user.pk:
        raise Conflict(
            "You do not hold this task's lease; ask for your next task first.", code="not_lease_holder"
        )
    if task.lease_expires_at is None or task.lease_expires_at <= now:
        raise Conflict(
            "Your lease on this task expired; the task went back to the queue. Ask for your next task.",
            code="lease_expired",
        )


def _require_stage_role(*, user, project: Project, stage: str) -> str:
    """The user's role if they may work `stage` (its role, or a managing role). NotFound for outsiders."""
    role = role_of(user=user, organization_id=project.organization_id)
    if role is None:
        raise NotFound("Not found.")
    wanted = project.pipeline[stage_index(project, stage)]["role"]
    if role != wanted and role not in MANAGING_ROLES:
        raise Forbidden(
            f"Stage {stage!r} is worked by role '{wanted}'; your role is '{role}'.", code="role_forbidden"
        )
    return role


def _work_data(task: Task, now: datetime) -> dict:
    """Time figures of the current claim, in seconds: claim to now, and active time from heartbeats."""
    if task.claimed_at is None:
        return {}
    return {
        "claimed_at": task.claimed_at.isoformat(),
        "work_seconds": round((now - task.claimed_at).total_seconds(), 3),
        "active_seconds": round(task.active_seconds + _active_gap(task, now), 3),
    }


def _active_gap(task: Task, now: datetime) -> float:
    """Seconds since the last heartbeat that count as active: all of them if the gap is at most
    LABELHUB_ACTIVE_GAP_SECONDS, none if longer (the worker was away)."""
    if task.last_heartbeat_at is None:
        return 0.0
    gap = (now - task.last_heartbeat_at).total_seconds()
    return gap if 0 <= gap <= settings.LABELHUB_ACTIVE_GAP_SECONDS else 0.0


def _clear_claim(task: Task, *, assignee=None) -> None:
    task.assignee = assignee
    task.status = TaskStatus.OPEN
    task.lease_expires_at = None
    task.claimed_at = None
    task.last_heartbeat_at = None
    task.active_seconds = 0.0


def _announce(task: Task, *, from_stage: str, action: str, actor, revision: int | None) -> None:
    from labelhub.qa.webhooks import webhook_emit

    payload = {
        "task": task.pk,
        "project": task.project_id,
        "image": task.image_id,
        "from_stage": from_stage,
        "to_stage": task.stage,
        "status": task.status,
        "action": action,
        "actor": getattr(actor, "username", None),
        "revision": revision,
    }
    webhook_emit(
        organization=task.project.organization,
        project=task.project,
        event="task.stage_changed",
        payload=payload,
    )


def _advance(task: Task, *, actor, kind: str, now: datetime, revision: int | None, data: dict) -> None:
    """Move a task past its current stage, skipping the stages whose sampling does not pick it, and
    record the events. Past the last stage the task is done."""
    project = task.project
    from_stage = task.stage
    index = stage_index(project, from_stage) + 1
    pipeline = project.pipeline
    to_stage = pipeline[index]["name"] if index < len(pipeline) else STAGE_DONE
    _event(
        task,
        kind,
        at=now,
        actor=actor,
        from_stage=from_stage,
        to_stage=to_stage,
        revision=revision,
        data=data,
    )
    while index < len(pipeline) and not stage_sampled(
        project_id=project.pk,
        task_id=task.pk,
        stage=pipeline[index]["name"],
        rate=pipeline[index]["sample_rate"],
    ):
        nxt = pipeline[index + 1]["name"] if index + 1 < len(pipeline) else STAGE_DONE
        _event(
            task,
            EventKind.SKIPPED_BY_SAMPLING,
            at=now,
            from_stage=pipeline[index]["name"],
            to_stage=nxt,
            revision=revision,
            data={"sample_rate": pipeline[index]["sample_rate"]},
        )
        index += 1
    _clear_claim(task)
    if index >= len(pipeline):
        task.stage = STAGE_DONE
        task.status = TaskStatus.DONE
    else:
        task.stage = pipeline[index]["name"]
    task.save()
    _announce(task, from_stage=from_stage, action=kind, actor=actor, revision=revision)


# --- claiming ------------------------------------------------------------------------------------------


def _claimable(*, project: Project, stage: str, user, now: datetime) -> QuerySet[Task]:
    """Tasks of the stage the user may take now: open and unreserved, reserved for them, or held on an
    expired lease. In review stages, never the user's own work."""
    queue = Task.objects.filter(project=project, stage=stage).filter(
        Q(status=TaskStatus.OPEN, assignee__isnull=True)
        | Q(status=TaskStatus.OPEN, assignee=user)
        | Q(status=TaskStatus.IN_PROGRESS, lease_expires_at__lte=now)
    )
    if stage_index(project, stage) > 0:
        queue = queue.exclude(_own_work(user))
    mine_first = Case(
        When(status=TaskStatus.OPEN, assignee=user, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return queue.annotate(mine_first=mine_first).order_by("mine_first", "id")


def task_claim_next(*, project: Project, user, stage: str) -> Task | None:
    """Hand the user their next task in `stage`, with a lease of LABELHUB_LEASE_SECONDS; None when the queue
    is empty. A user who already holds a live lease in the stage gets that task again.

    Never hands one task to two people: on PostgreSQL the candidate row is locked with
    SELECT ... FOR UPDATE SKIP LOCKED (concurrent callers skip it and take the next); elsewhere the claim
    is a conditional UPDATE that only one caller can win.
    """
    _require_stage_role(user=user, project=project, stage=stage)
    skip_locked = connection.features.has_select_for_update_skip_locked
    for _ in range(20):
        with transaction.atomic():
            now = timezone.now()
            held = (
                Task.objects.filter(
                    project=project,
                    stage=stage,
                    status=TaskStatus.IN_PROGRESS,
                    assignee=user,
                    lease_expires_at__gt=now,
                )
                .order_by("id")
                .first()
            )
            if held is not None:
                return held
            queue = _claimable(project=project, stage=stage, user=user, now=now)
            if skip_locked:
                candidate = queue.select_for_update(skip_locked=True, of=("self",)).first()
            else:
                candidate = queue.first()
            if candidate is None:
                return None
            previous = candidate.assignee_id
            expired = candidate.status == TaskStatus.IN_PROGRESS
            # The claim itself only succeeds if the row is still in the state we read (always true under the
            # PostgreSQL lock; on other databases a concurrent winner makes it match nothing).
            won = (
                Task.objects.filter(
                    pk=candidate.pk,
                    stage=stage,
                    status=candidate.status,
                    assignee_id=previous,
                    lease_expires_at=candidate.lease_expires_at,
                ).update(
                    status=TaskStatus.IN_PROGRESS,
                    assignee=user,
                    claimed_at=now,
                    last_heartbeat_at=now,
                    active_seconds=0.0,
                    lease_expires_at=now + _lease_delta(),
                    updated_at=now,
                )
                == 1
            )
            if not won:
                continue
            task = Task.objects.select_related("project", "image", "annotation", "assignee").get(
                pk=candidate.pk
            )
            if expired:
                _event(
                    task,
                    EventKind.LEASE_EXPIRED,
                    at=now,
                    from_stage=stage,
                    to_stage=stage,
                    data={"assignee": previous},
                )
            _event(
                task,
                EventKind.CLAIMED,
                at=now,
                actor=user,
                from_stage=stage,
                to_stage=stage,
                revision=task.annotation.current_revision,
                data={"reserved": previous == user.pk and not expired},
            )
            return task
    return None


@transaction.atomic
def task_heartbeat(*, task: Task, user) -> Task:
    """Extend the lease by LABELHUB_LEASE_SECONDS and count the time since the last heartbeat as active
    (if it is at most LABELHUB_ACTIVE_GAP_SECONDS). Conflict (409) on a lease the user does not hold."""
    task = _locked(task)
    now = timezone.now()
    lease_require(task=task, user=user, now=now)
    task.active_seconds += _active_gap(task, now)
    task.last_heartbeat_at = now
    task.lease_expires_at = now + _lease_delta()
    task.save(update_fields=["active_seconds", "last_heartbeat_at", "lease_expires_at", "updated_at"])
    return task


@transaction.atomic
def task_release(*, task: Task, user) -> Task:
    """The lease holder gives the task back to its stage's queue."""
    task = _locked(task)
    now = timezone.now()
    lease_require(task=task, user=user, now=now)
    _event(
        task,
        EventKind.RELEASED,
        at=now,
        actor=user,
        from_stage=task.stage,
        to_stage=task.stage,
        data=_work_data(task, now),
    )
    _clear_claim(task)
    task.save()
    return task


# --- stage actions -------------------------------------------------------------------------------------


def _require_review(task: Task, action: str) -> None:
    if task.status == TaskStatus.DONE:
        raise Conflict("The task is accepted; its workflow is over.", code="task_done")
    if stage_index(task.project, task.stage) == 0:
        raise Conflict(
            f"The task is in its first stage ({task.stage!r}), not in review; it cannot be {action}.",
            code="not_in_review",
        )


def _require_not_own(task: Task, user) -> None:
    if is_own_work(task=task, user=user):
        raise Forbidden("You may not review your own work.", code="self_review")


@transaction.atomic
def task_submit(*, task: Task, user) -> Task:
    """The first-stage worker hands their annotation on to the next stage (scored if the task is gold)."""
    task = _locked(task)
    now = timezone.now()
    if task.status != TaskStatus.DONE and stage_index(task.project, task.stage) != 0:
        raise Conflict(
            f"Only first-stage work is submitted; in {task.stage!r} a reviewer accepts or rejects.",
            code="invalid_transition",
        )
    lease_require(task=task, user=user, now=now)
    revision = task.annotation.current_revision
    task.last_annotator = user
    if task.is_gold:
        from labelhub.qa.gold import gold_score_record

        gold_score_record(task=task, user=user, revision=revision)
    _advance(
        task, actor=user, kind=EventKind.SUBMITTED, now=now, revision=revision, data=_work_data(task, now)
    )
    return task


@transaction.atomic
def task_accept(*, task: Task, user) -> Task:
    """A reviewer passes the task to the next stage (or to done after the last)."""
    task = _locked(task)
    now = timezone.now()
    _require_review(task, "accepted")
    lease_require(task=task, user=user, now=now)
    _require_not_own(task, user)
    _advance(
        task,
        actor=user,
        kind=EventKind.ACCEPTED,
        now=now,
        revision=task.annotation.current_revision,
        data=_work_data(task, now),
    )
    return task


@transaction.atomic
def task_fix_accept(*, task: Task, user, base_revision: int, regions: list) -> Task:
    """A reviewer saves their corrected regions (a revision credited to them) and accepts the task."""
    from .services import annotation_save

    task = _locked(task)
    now = timezone.now()
    _require_review(task, "fixed and accepted")
    lease_require(task=task, user=user, now=now)
    _require_not_own(task, user)
    revision = annotation_save(task=task, author=user, base_revision=base_revision, regions=regions)
    _advance(
        task,
        actor=user,
        kind=EventKind.FIX_ACCEPTED,
        now=now,
        revision=revision.number,
        data={**_work_data(task, now), "summary": revision.summary},
    )
    return task


def _worker_at(task: Task, stage: str):
    """Who worked `stage` last for this task: its annotator for the first stage, else the reviewer who
    last passed it on from there (None when unknown or when it is now their own work)."""
    if stage_index(task.project, stage) == 0:
        return task.last_annotator
    event = (
        task.events.filter(
            from_stage=stage, kind__in=[EventKind.ACCEPTED, EventKind.FIX_ACCEPTED], actor__isnull=False
        )
        .select_related("actor")
        .order_by("-created_at", "-id")
        .first()
    )
    if event is None or is_own_work(task=task, user=event.actor):
        return None
    return event.actor


@transaction.atomic
def task_reject(*, task: Task, user, comments: list[dict]) -> Task:
    """A reviewer sends the task back to the stage its pipeline names (`reject_to`), reserved for whoever
    worked it there, with at least one comment (pinned to a region id or to a point x, y, or neither)."""
    from .services import comment_create

    task = _locked(task)
    now = timezone.now()
    _require_review(task, "rejected")
    lease_require(task=task, user=user, now=now)
    _require_not_own(task, user)
    if not isinstance(comments, list) or not comments:
        raise DomainError("A rejection needs at least one comment saying what to fix.", field="comments")
    created: list[Comment] = []
    for i, item in enumerate(comments):
        if not isinstance(item, dict):
            raise DomainError("A comment is {text, region_id?, x?, y?}.", field=f"comments[{i}]")
        try:
            created.append(
                comment_create(
                    task=task,
                    author=user,
                    text=item.get("text", ""),
                    region_id=item.get("region_id") or "",
                    x=item.get("x"),
                    y=item.get("y"),
                )
            )
        except DomainError as exc:
            exc.field = f"comments[{i}].{exc.field}" if exc.field else f"comments[{i}]"
            raise
    from_stage = task.stage
    stage_conf = task.project.pipeline[stage_index(task.project, from_stage)]
    target = stage_conf.get("reject_to") or task.project.first_stage
    revision = task.annotation.current_revision
    data = {**_work_data(task, now), "comments": [c.pk for c in created]}
    _event(
        task,
        EventKind.REJECTED,
        at=now,
        actor=user,
        from_stage=from_stage,
        to_stage=target,
        revision=revision,
        data=data,
    )
    task.stage = target
    _clear_claim(task, assignee=_worker_at(task, target))
    task.save()
    _announce(task, from_stage=from_stage, action=EventKind.REJECTED, actor=user, revision=revision)
    return task


@transaction.atomic
def annotation_write(*, task: Task, user, base_revision: int, regions: list) -> AnnotationRevision:
    """Save regions on behalf of `user`: managers and owners may always write; everyone else must hold the
    task's live lease (409 otherwise). An accepted task's annotation is final (409)."""
    from .services import annotation_save

    task = _locked(task)
    role = role_of(user=user, organization_id=task.project.organization_id)
    if task.status == TaskStatus.DONE:
        raise Conflict("The task is accepted; its annotation is final.", code="task_done")
    if role not in MANAGING_ROLES:
        lease_require(task=task, user=user)
    return annotation_save(task=task, author=user, base_revision=base_revision, regions=regions)


# --- managers ------------------------------------------------------------------------------------------


@transaction.atomic
def task_reassign(*, task: Task, manager, assignee) -> Task:
    """A manager reserves the task for `assignee` (who gets it from their next-task call) or, with None,
    returns it to the open queue. Any live lease is ended."""
    role_require(
        user=manager,
        organization_id=task.project.organization_id,
        roles=MANAGING_ROLES,
        action="reassign tasks",
    )
    task = _locked(task)
    now = timezone.now()
    if task.status == TaskStatus.DONE:
        raise Conflict("The task is accepted; its workflow is over.", code="task_done")
    if assignee is not None:
        role = role_of(user=assignee, organization_id=task.project.organization_id)
        if role is None:
            raise DomainError("The assignee is not a member of this organization.", field="assignee")
        wanted = task.project.pipeline[stage_index(task.project, task.stage)]["role"]
        if role != wanted and role not in MANAGING_ROLES:
            raise DomainError(
                f"Stage {task.stage!r} is worked by role '{wanted}'; {assignee.username} is '{role}'.",
                field="assignee",
            )
        if stage_index(task.project, task.stage) > 0 and is_own_work(task=task, user=assignee):
            raise Conflict(f"{assignee.username} would review their own work.", code="self_review")
    previous = task.assignee
    data = {
        "from": getattr(previous, "username", None),
        "to": getattr(assignee, "username", None),
        **(_work_data(task, now) if task.status == TaskStatus.IN_PROGRESS else {}),
    }
    _event(
        task,
        EventKind.REASSIGNED,
        at=now,
        actor=manager,
        from_stage=task.stage,
        to_stage=task.stage,
        data=data,
    )
    _clear_claim(task, assignee=assignee)
    task.save()
    return task


@transaction.atomic
def task_gold_set(*, task: Task, manager, is_gold: bool, regions: list | None) -> Task:
    """A manager marks a task as gold with its known-correct regions (validated like any annotation),
    or unmarks it."""
    role_require(
        user=manager,
        organization_id=task.project.organization_id,
        roles=MANAGING_ROLES,
        action="mark gold tasks",
    )
    task = _locked(task)
    if is_gold:
        if regions is None:
            raise DomainError("A gold task needs its correct regions.", field="regions")
        image = task.image
        task.gold_regions = regions_clean(
            regions, width=image.width, height=image.height, class_names=task.project.class_names
        )
    else:
        task.gold_regions = []
    task.is_gold = is_gold
    task.save(update_fields=["is_gold", "gold_regions", "updated_at"])
    _event(
        task,
        EventKind.GOLD_MARKED,
        at=timezone.now(),
        actor=manager,
        from_stage=task.stage,
        to_stage=task.stage,
        data={"is_gold": is_gold, "regions": len(task.gold_regions)},
    )
    return task


def leases_expire(*, now: datetime | None = None) -> int:
    """Return every task whose lease has expired to its stage's open queue; the number returned.
    (next-task also reclaims expired leases itself; this keeps the counts and the timeline current.)"""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        expired = Task.objects.filter(status=TaskStatus.IN_PROGRESS, lease_expires_at__lte=now)
        if connection.features.has_select_for_update_skip_locked:
            expired = expired.select_for_update(skip_locked=True, of=("self",))
        for task in expired.select_related("project"):
            _event(
                task,
                EventKind.LEASE_EXPIRED,
                at=now,
                from_stage=task.stage,
                to_stage=task.stage,
                data={"assignee": task.assignee_id, **_work_data(task, task.lease_expires_at)},
            )
            _clear_claim(task)
            task.save()
            count += 1
    return count
