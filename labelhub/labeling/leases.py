"""Leases: claiming a task (the next in a stage's queue), heartbeats, giving it back, and returning
expired leases to their queues.

A task sits in one stage of its project's pipeline. Status `open` means it waits in the stage's queue
(if `assignee` is set it is reserved for that user: a rejected task goes back to whoever worked it, a
manager's reassignment names someone); `in_progress` means `assignee` holds a lease until
`lease_expires_at`; `done` means accepted after the last stage (stage "done").
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES, Membership
from labelhub.accounts.selectors import role_of
from labelhub.core.errors import Conflict, Forbidden, NotFound
from labelhub.core.prepared import Prepared
from labelhub.projects.models import Project

from .events import event_record
from .models import AnnotationRevision, EventKind, Task, TaskEvent, TaskReplica, TaskStatus
from .pipeline import done_refuse, stage_index, stage_is_review, stage_role
from .replicas import (
    honeypot_draw,
    honeypot_queue,
    ordinary_queue,
    replica_abandon,
    replica_begin,
    replica_kind,
    replica_submitted,
)


def _lease_delta() -> timedelta:
    return timedelta(seconds=settings.LABELHUB_LEASE_SECONDS)


def own_work(user, *, stage: str | None = None) -> Q:
    """Tasks the user worked on: submitted from the first stage, authored a revision of, or made one of
    its independent passes (consensus). With `stage` (the review stage the task is in), revisions the
    user saved in that same stage do not count: a reviewer who edits in review is fixing the task before
    accepting it (a fix-accept in progress), and their edit is checked by the stages after it, where it
    does count."""
    authored = AnnotationRevision.objects.filter(annotation__task=OuterRef("pk"), author=user)
    if stage is not None:
        authored = authored.exclude(stage=stage)
    passes = TaskReplica.objects.filter(task=OuterRef("pk"), user=user)
    return Q(last_annotator=user) | Q(Exists(authored)) | Q(Exists(passes))


def is_own_work(*, task: Task, user) -> bool:
    return Task.objects.filter(pk=task.pk).filter(own_work(user, stage=task.stage)).exists()


# Who has checked a task (independent reviews). A review stage's check of a task is the verdict that
# passed it on: the reviewer of the *latest* accept or fix-accept out of that stage. A rejection is not a
# check of what moves on (the worker changes the task after it), and an acceptance superseded by a later
# one from the same stage (the task came back and another reviewer passed the new version) checked a
# version that no longer moves. So when reviewer A rejects in `review`, the annotator fixes and reviewer
# B accepts, `final-qa` excludes B only: A may check the fixed version there. Reviewers never act twice
# on what they passed (the earlier-stage rule), and nobody reviews their own work (`own_work`).
REVIEW_ACTIONS = (EventKind.ACCEPTED, EventKind.FIX_ACCEPTED, EventKind.REJECTED)
PASS_ACTIONS = (EventKind.ACCEPTED, EventKind.FIX_ACCEPTED)


def earlier_review_stages(project: Project, stage: str) -> list[str]:
    """The review stages before `stage` whose reviewers may not act on the task in `stage` (none when
    the project's `independent_reviews` is off)."""
    if not project.independent_reviews:
        return []
    names = project.stage_names
    return names[1 : stage_index(project, stage)]


def _checks(task_ref, stages: list[str]) -> QuerySet[TaskEvent]:
    """The events that count as checks of the task `task_ref` (an id or an OuterRef) in `stages`: per
    stage the latest accept or fix-accept out of it (see the rule above)."""
    later = TaskEvent.objects.filter(
        task=OuterRef("task"), from_stage=OuterRef("from_stage"), kind__in=PASS_ACTIONS, id__gt=OuterRef("id")
    )
    return TaskEvent.objects.filter(task=task_ref, kind__in=PASS_ACTIONS, from_stage__in=stages).exclude(
        Exists(later)
    )


def earlier_review_work(*, project: Project, stage: str, user) -> Q | None:
    """Tasks the user checked (passed on) in a review stage before `stage`; None when none apply."""
    earlier = earlier_review_stages(project, stage)
    if not earlier:
        return None
    return Q(Exists(_checks(OuterRef("pk"), earlier).filter(actor=user)))


def earlier_review_refuse(*, task: Task, user) -> None:
    """Forbidden (403, `review_not_independent`) when the user checked the task in an earlier review
    stage: the stages of an independent pipeline are checked by different people."""
    work = earlier_review_work(project=task.project, stage=task.stage, user=user)
    if work is not None and Task.objects.filter(pk=task.pk).filter(work).exists():
        raise Forbidden(
            f"You reviewed this task in an earlier stage; {task.stage!r} is checked by someone else.",
            code="review_not_independent",
        )


def review_excluded(*, task: Task, user) -> str | None:
    """Why `user` may not act on `task` in its review stage ('self_review', 'review_not_independent'),
    or None when they may (always None in the first stage)."""
    if not stage_is_review(task.project, task.stage):
        return None
    if is_own_work(task=task, user=user):
        return "self_review"
    work = earlier_review_work(project=task.project, stage=task.stage, user=user)
    if work is not None and Task.objects.filter(pk=task.pk).filter(work).exists():
        return "review_not_independent"
    return None


def _eligible_members(*, project: Project, stage: str) -> QuerySet[Membership]:
    """The members with the role of review stage `stage` who may act on the outer Task row (a subquery
    correlated to it): not their own work, not checked by them in an earlier stage. Managers and owners
    are not counted: they are whom a task is offered to when this is empty."""
    task_ref = OuterRef(OuterRef("pk"))
    members = Membership.objects.filter(
        organization_id=project.organization_id, role=stage_role(project, stage)
    )
    submitted = Task.objects.filter(pk=task_ref, last_annotator_id=OuterRef("user_id"))
    authored = AnnotationRevision.objects.filter(
        annotation__task=task_ref, author_id=OuterRef("user_id")
    ).exclude(stage=stage)
    members = members.exclude(Exists(submitted)).exclude(Exists(authored))
    earlier = earlier_review_stages(project, stage)
    if earlier:
        members = members.exclude(Exists(_checks(task_ref, earlier).filter(actor_id=OuterRef("user_id"))))
    return members


def stranded_q(project: Project) -> Q:
    """Open tasks of the project in a review stage that no member of the stage's role may take (all of
    them worked on it or checked it in an earlier stage): `stranded`. Such a task is offered to managers
    and owners first (next-task) and shown to them (the task list's `stranded` field and filter, the
    metrics' `stranded` counts)."""
    q = Q(pk__in=[])
    for stage in project.stage_names[1:]:
        q |= Q(stage=stage) & ~Q(Exists(_eligible_members(project=project, stage=stage)))
    return Q(project=project, status=TaskStatus.OPEN) & q


_pipeline = Prepared(
    lambda pk: Project.objects.filter(pk=pk).values_list("pipeline", flat=True), -(2**62) - 32
)


def tasks_stranded_ids(rows: list[tuple[int, int, str, str]]) -> set[int]:
    """Which of the tasks `rows` ((id, project id, stage, status) each) are stranded (`stranded_q`): one
    query per project with open review tasks among them (a task list's page is usually one project),
    not one per task."""
    open_rows = [row for row in rows if row[3] == TaskStatus.OPEN]
    # The pipelines first: a page of first-stage tasks (the usual one) needs no project read in full.
    candidates: dict[int, list[int]] = {}
    for project_id in {row[1] for row in open_rows}:
        pipeline = next(iter(_pipeline(project_id)), [])
        reviews = {stage["name"] for stage in pipeline[1:]}
        ids = [pk for pk, of, stage, _ in open_rows if of == project_id and stage in reviews]
        if ids:
            candidates[project_id] = ids
    stranded: set[int] = set()
    if not candidates:
        return stranded  # (an empty `pk__in` still costs the ORM a whole compilation)
    for project in Project.objects.filter(pk__in=candidates):
        stranded.update(
            Task.objects.filter(pk__in=candidates[project.pk])
            .filter(stranded_q(project))
            .values_list("pk", flat=True)
        )
    return stranded


def task_is_stranded(task: Task) -> bool:
    if task.status != TaskStatus.OPEN or not stage_is_review(task.project, task.stage):
        return False
    return Task.objects.filter(pk=task.pk).filter(stranded_q(task.project)).exists()


_task_locked = Prepared(
    lambda pk: (
        Task.objects.select_for_update(of=("self",) if connection.features.has_select_for_update_of else ())
        .select_related("project", "image")
        .filter(pk=pk)
    ),
    -(2**62) - 31,  # a sentinel: an id no task has
)


def task_locked(task: Task) -> Task:
    """The task re-read under a row lock (inside the caller's transaction), with its project and image."""
    found = _task_locked(task.pk)
    if len(found) != 1:
        raise Task.DoesNotExist("Task matching query does not exist.")
    return found[0]


def lease_require(*, task: Task, user, now: datetime | None = None) -> None:
    """Conflict (409) unless `user` holds the task's lease and it has not expired."""
    now = now or timezone.now()
    done_refuse(task)
    if task.status != TaskStatus.IN_PROGRESS or task.assignee_id != user.pk:
        raise Conflict(
            "You do not hold this task's lease; ask for your next task first.", code="not_lease_holder"
        )
    if task.lease_expires_at is None or task.lease_expires_at <= now:
        raise Conflict(
            "Your lease on this task expired; the task went back to the queue. Ask for your next task.",
            code="lease_expired",
        )


def stage_role_require(*, user, project: Project, stage: str) -> str:
    """The user's role if they may work `stage` (its role, or a managing role). NotFound for outsiders."""
    role = role_of(user=user, organization_id=project.organization_id)
    if role is None:
        raise NotFound("Not found.")
    wanted = stage_role(project, stage)
    if role != wanted and role not in MANAGING_ROLES:
        raise Forbidden(
            f"Stage {stage!r} is worked by role '{wanted}'; your role is '{role}'.", code="role_forbidden"
        )
    return role


def work_data(task: Task, now: datetime) -> dict:
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


def claim_clear(task: Task, *, assignee=None) -> None:
    """End the current claim (in memory; the caller saves): open in its stage, reserved for `assignee`."""
    task.assignee = assignee
    task.status = TaskStatus.OPEN
    task.lease_expires_at = None
    task.claimed_at = None
    task.last_heartbeat_at = None
    task.active_seconds = 0.0


def _review_exclude(queue: QuerySet[Task], *, project: Project, stage: str, user) -> QuerySet[Task]:
    """In review stages, leave out the user's own work and (independent reviews) the tasks they reviewed
    in an earlier review stage.

    One NOT (... OR EXISTS ... OR EXISTS ...): inside an OR PostgreSQL keeps the EXISTS as subplans, each
    either a probe per candidate row or one hashed set of the user's own revisions and review events (read
    through the author and actor indexes); both cost what the user did, not what the queue holds. Two
    separate NOT EXISTS would become anti-joins, and a merge anti-join walks the project's whole event
    history in task order up to the first candidate."""
    if not stage_is_review(project, stage):
        return queue
    excluded = own_work(user, stage=stage)
    earlier = earlier_review_work(project=project, stage=stage, user=user)
    if earlier is not None:
        excluded |= earlier
    return queue.exclude(excluded)


def _claimable_steps(
    *, project: Project, stage: str, user, now: datetime, managing: bool = False
) -> list[QuerySet[Task]]:
    """The tasks of the stage the user may take now, as queries tried in this order, each the first row
    of one index (see Task.Meta.indexes) so that its cost does not grow with the queue:

    1. tasks reserved for the user (a rejection sent back, a manager's reassignment), oldest first
       (index `task_assigned`: assignee, project, stage, created_at, id; only rows with an assignee);
    2. tasks held on an expired lease, the longest expired first (index `task_lease_expiry`: project,
       stage, lease_expires_at, id; only in-progress rows): abandoned work is taken up before new work;
    3. open unreserved tasks, oldest first (index `task_open_queue`: project, stage, created_at, id;
       only open rows without an assignee).

    "Oldest" is (created_at, id), an order only these indexes give: ordered by id alone, the planner
    may walk the primary key instead and filter, which reads every row of older projects first.
    A single query over the union with the reserved-first order could not walk an index: it sorted
    every claimable row of the stage.

    For a manager or owner (`managing`) in a review stage, stranded tasks (`stranded_q`: no member of the
    stage's role may take them) come right after the reserved ones: nobody else can do them. That step
    walks the open queue's index and tests each row, so it costs up to the open queue's length when none
    is stranded; only managers pay it."""
    tasks = Task.objects.filter(project=project, stage=stage)
    steps = [
        tasks.filter(status=TaskStatus.OPEN, assignee=user).order_by("created_at", "id"),
    ]
    if managing and stage_is_review(project, stage):
        steps.append(
            tasks.filter(stranded_q(project), status=TaskStatus.OPEN, assignee__isnull=True).order_by(
                "created_at", "id"
            )
        )
    steps += [
        tasks.filter(status=TaskStatus.IN_PROGRESS, lease_expires_at__lte=now).order_by(
            "lease_expires_at", "id"
        ),
        tasks.filter(status=TaskStatus.OPEN, assignee__isnull=True).order_by("created_at", "id"),
    ]
    steps[1:] = [ordinary_queue(step, project=project, stage=stage, user=user) for step in steps[1:]]
    return [_review_exclude(step, project=project, stage=stage, user=user) for step in steps]


def _candidate(
    *, project: Project, stage: str, user, now: datetime, managing: bool = False, exclude: int | None = None
) -> Task | None:
    """The first claimable task (see `_claimable_steps`) other than `exclude`; on PostgreSQL locked FOR
    UPDATE SKIP LOCKED, so a concurrent caller passes over it to the next."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    for step in _claimable_steps(project=project, stage=stage, user=user, now=now, managing=managing):
        if exclude is not None:
            step = step.exclude(pk=exclude)
        if skip_locked:
            step = step.select_for_update(skip_locked=True, of=("self",))
        candidate = step.first()
        if candidate is not None:
            return _honeypot_instead(
                candidate, project=project, stage=stage, user=user, skip_locked=skip_locked
            )
    return None


def _honeypot_instead(candidate: Task, *, project: Project, stage: str, user, skip_locked: bool) -> Task:
    """With the project's honeypot_rate, a gold task the user never had instead of new work (never
    instead of a task reserved for them); the candidate when the draw or the pool says no."""
    pool = honeypot_queue(project=project, stage=stage, user=user)
    if pool is None or candidate.assignee_id == user.pk and candidate.status == TaskStatus.OPEN:
        return candidate
    if honeypot_draw(project=project, user=user, candidate_id=candidate.pk) >= project.honeypot_rate:
        return candidate
    if skip_locked:
        pool = pool.select_for_update(skip_locked=True, of=("self",))
    return pool.first() or candidate


def _user_stage_lock(*, project: Project, user, stage: str) -> None:
    """On PostgreSQL, serialize one user's claims in one stage (a transaction-scoped advisory lock keyed
    by user and project+stage): a double click's second call waits, then finds the lease the first took,
    so a user holds at most one live lease per stage."""
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(f"{project.pk}:{stage}".encode()) - 2**31  # into int4's range
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [user.pk % 2**31, key])


def queue_empty_reason(*, project: Project, user, stage: str) -> tuple[str, str]:
    """Why `stage` has no task for `user` now, as (code, sentence for the person): the app shows it on an
    empty queue. Counted with a few COUNT queries on the stage (the empty-queue path only)."""
    now = timezone.now()
    tasks = Task.objects.filter(project=project, stage=stage)
    open_ = tasks.filter(status=TaskStatus.OPEN)
    total_open = open_.count()
    held_by_others = (
        tasks.filter(status=TaskStatus.IN_PROGRESS, lease_expires_at__gt=now).exclude(assignee=user).count()
    )
    if total_open == 0:
        if held_by_others:
            return "all_taken", (
                f"Nothing to do here for now: {held_by_others} task(s) of {stage} are being worked on by others."
            )
        return "empty", f"Nothing to do here: no task of {stage} is waiting."
    reserved = open_.filter(assignee__isnull=False).exclude(assignee=user).count()
    excluded = 0
    if stage_is_review(project, stage):
        free = open_.filter(assignee__isnull=True)
        excluded = free.count() - _review_exclude(free, project=project, stage=stage, user=user).count()
    parts = []
    if excluded:
        parts.append(
            f"{excluded} you annotated or reviewed earlier: the independence rule keeps a person from "
            "reviewing their own work (and, with independent reviews, tasks they reviewed in an earlier stage)"
        )
    if reserved:
        parts.append(f"{reserved} reserved for other people (sent back to them or assigned by a manager)")
    detail = "; ".join(parts) or "none of them can be taken by you now"
    code = "independence" if excluded else "reserved" if reserved else "not_claimable"
    return code, f"{total_open} open task(s) in {stage}, but {detail}."


def task_claim_next(*, project: Project, user, stage: str, exclude: int | None = None) -> Task | None:
    """Hand the user their next task in `stage`, with a lease of LABELHUB_LEASE_SECONDS; None when the queue
    is empty. A user who already holds a live lease in the stage gets that task again; otherwise the first
    of: a task reserved for them, one on an expired lease, the oldest open one (`_claimable_steps`).

    Never hands one task to two people: on PostgreSQL the candidate row is locked with
    SELECT ... FOR UPDATE SKIP LOCKED (concurrent callers skip it and take the next); elsewhere the claim
    is a conditional UPDATE that only one caller can win.

    `exclude` (the app's "next task"): any task but that one (a deep link takes one task: task_claim).
    """
    managing = stage_role_require(user=user, project=project, stage=stage) in MANAGING_ROLES
    for _ in range(20):
        with transaction.atomic():
            _user_stage_lock(project=project, user=user, stage=stage)
            now = timezone.now()
            held = (
                Task.objects.filter(
                    project=project,
                    stage=stage,
                    status=TaskStatus.IN_PROGRESS,
                    assignee=user,
                    lease_expires_at__gt=now,
                )
                .select_related("project", "image", "annotation", "assignee")
                .order_by("id")
                .first()
            )
            if held is not None and held.pk != exclude:
                return held
            candidate = _candidate(
                project=project, stage=stage, user=user, now=now, managing=managing, exclude=exclude
            )
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
                replica_abandon(task=task, user_id=previous)
            kind = replica_kind(task)
            if kind is not None:
                replica_begin(task=task, user=user, kind=kind)
            if expired:
                event_record(
                    task,
                    EventKind.LEASE_EXPIRED,
                    at=now,
                    from_stage=stage,
                    to_stage=stage,
                    data={"assignee": previous, **work_data(candidate, candidate.lease_expires_at)},
                )
            event_record(
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


# Tabs: the app opens a task in one browser tab or several (a deep link, a reload, a second window) and
# names its tab on heartbeats and releases. The lease holder's open tabs are kept in the cache with
# the time of their last heartbeat; a release from one tab gives the task back only when no other tab of
# the holder has beaten within TAB_ALIVE_SECONDS, so closing a second tab keeps the first one's lease.
# A release without a tab (the API, scripts) releases at once, as before.
TAB_ALIVE_SECONDS = 75  # the app beats every 30 s


def _tabs_key(task_id: int) -> str:
    return f"lh:lease-tabs:{task_id}"


def _tab_beat(task: Task, tab: str, now: datetime) -> None:
    from django.core.cache import cache

    tabs = cache.get(_tabs_key(task.id)) or {}
    tabs = {t: at for t, at in tabs.items() if at > now.timestamp() - TAB_ALIVE_SECONDS}
    tabs[tab] = now.timestamp()
    cache.set(_tabs_key(task.id), tabs, timeout=TAB_ALIVE_SECONDS * 2)


def _other_tabs_alive(task: Task, tab: str, now: datetime) -> bool:
    from django.core.cache import cache

    tabs = cache.get(_tabs_key(task.id)) or {}
    tabs.pop(tab, None)
    alive = {t: at for t, at in tabs.items() if at > now.timestamp() - TAB_ALIVE_SECONDS}
    cache.set(_tabs_key(task.id), alive, timeout=TAB_ALIVE_SECONDS * 2)
    return bool(alive)


@transaction.atomic
def task_heartbeat(*, task: Task, user, tab: str = "") -> Task:
    """Extend the lease by LABELHUB_LEASE_SECONDS and count the time since the last heartbeat as active
    (if it is at most LABELHUB_ACTIVE_GAP_SECONDS). Conflict (409) on a lease the user does not hold.
    `tab`: the app's tab that beats (see TAB_ALIVE_SECONDS)."""
    task = task_locked(task)
    now = timezone.now()
    lease_require(task=task, user=user, now=now)
    if tab:
        _tab_beat(task, tab, now)
    task.active_seconds += _active_gap(task, now)
    task.last_heartbeat_at = now
    task.lease_expires_at = now + _lease_delta()
    task.save(update_fields=["active_seconds", "last_heartbeat_at", "lease_expires_at", "updated_at"])
    return task


@transaction.atomic
def task_release(*, task: Task, user, tab: str = "") -> Task:
    """The lease holder gives the task back to its stage's queue. From an app tab (`tab`), only when no
    other tab of the holder still has the task open (it keeps the lease: the task is returned as it is)."""
    task = task_locked(task)
    now = timezone.now()
    lease_require(task=task, user=user, now=now)
    if tab and _other_tabs_alive(task, tab, now):
        return task
    _released(task, user=user, now=now)
    return task


def _released(task: Task, *, user, now: datetime) -> None:
    """Record that `user` gave `task` back (with the active time of the claim) and clear its lease."""
    event_record(
        task,
        EventKind.RELEASED,
        at=now,
        actor=user,
        from_stage=task.stage,
        to_stage=task.stage,
        data=work_data(task, now),
    )
    replica_abandon(task=task, user_id=user.pk)
    claim_clear(task)
    task.save()


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
            event_record(
                task,
                EventKind.LEASE_EXPIRED,
                at=now,
                from_stage=task.stage,
                to_stage=task.stage,
                data={"assignee": task.assignee_id, **work_data(task, task.lease_expires_at)},
            )
            replica_abandon(task=task, user_id=task.assignee_id)
            claim_clear(task)
            task.save()
            count += 1
    return count


def task_claim(*, task: Task, user) -> Task:
    """Take this very task (a deep link, the manager's task list) with a lease of LABELHUB_LEASE_SECONDS.
    Refused with the reason: 409 `done`, `leased` (someone else holds a live lease: who and until when),
    `reserved` (kept for someone else; managers may take it), 403 `role_forbidden`, `own_work` (a review
    stage never gives you your own work) or `review_not_independent`. Your live lease on this task is
    handed back as is; a live lease you hold on another task of the same stage is released (one lease
    per user and stage, as next-task keeps). An expired lease of someone else is taken over (recorded
    with the time they worked)."""
    project = task.project
    stage_role_require(user=user, project=project, stage=task.stage)
    with transaction.atomic():
        _user_stage_lock(project=project, user=user, stage=task.stage)
        task = task_locked(task)
        now = timezone.now()
        done_refuse(task)
        live = task.status == TaskStatus.IN_PROGRESS and task.lease_expires_at and task.lease_expires_at > now
        if live and task.assignee_id == user.pk:
            return _claimed(task.pk)
        if live:
            raise Conflict(
                f"{task.assignee.username} is working on this task until "
                f"{task.lease_expires_at.isoformat(timespec='seconds')}.",
                code="leased",
            )
        role = role_of(user=user, organization_id=project.organization_id)
        if (
            task.status == TaskStatus.OPEN
            and task.assignee_id not in (None, user.pk)
            and role not in MANAGING_ROLES
        ):
            raise Conflict(f"This task is kept for {task.assignee.username}.", code="reserved")
        if stage_is_review(project, task.stage):
            if is_own_work(task=task, user=user):
                raise Forbidden("This is your own work; someone else reviews it.", code="own_work")
            earlier_review_refuse(task=task, user=user)
        kind = replica_kind(task)
        if kind is not None and replica_submitted(task=task, user=user):
            raise Conflict(
                "You made your independent pass over this task already; it goes to someone else.",
                code="already_annotated",
            )
        for other in (
            Task.objects.select_for_update(
                of=("self",) if connection.features.has_select_for_update_of else ()
            )
            .filter(
                project=project,
                stage=task.stage,
                status=TaskStatus.IN_PROGRESS,
                assignee=user,
                lease_expires_at__gt=now,
            )
            .exclude(pk=task.pk)
        ):
            _released(other, user=user, now=now)
        previous = task.assignee_id
        expired = task.status == TaskStatus.IN_PROGRESS
        if expired:
            event_record(
                task,
                EventKind.LEASE_EXPIRED,
                at=now,
                from_stage=task.stage,
                to_stage=task.stage,
                data={"assignee": previous, **work_data(task, task.lease_expires_at)},
            )
        task.status = TaskStatus.IN_PROGRESS
        task.assignee = user
        task.claimed_at = now
        task.last_heartbeat_at = now
        task.active_seconds = 0.0
        task.lease_expires_at = now + _lease_delta()
        task.save()
        if expired:
            replica_abandon(task=task, user_id=previous)
        if kind is not None:
            replica_begin(task=task, user=user, kind=kind)
        claimed = _claimed(task.pk)
        event_record(
            claimed,
            EventKind.CLAIMED,
            at=now,
            actor=user,
            from_stage=task.stage,
            to_stage=task.stage,
            revision=claimed.annotation.current_revision,
            data={"reserved": previous == user.pk and not expired, "direct": True},
        )
        return claimed


def _claimed(pk: int) -> Task:
    return Task.objects.select_related("project", "image", "annotation", "assignee").get(pk=pk)
