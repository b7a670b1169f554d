"""Manager actions on tasks: reserving a task for a member (or returning it to the open queue) and
marking gold (honeypot) tasks with their known-correct regions. The managing role is checked here."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_of, role_require
from labelhub.core.errors import DomainError
from labelhub.regions.validation import regions_clean

from .events import event_record
from .leases import claim_clear, review_excluded, task_locked, work_data
from .models import EventKind, Task, TaskStatus
from .pipeline import done_refuse, stage_role
from .replicas import replica_abandon


def manager_require(*, user, task: Task, action: str) -> str:
    """The user's role when it is a managing role of the task's organization (Forbidden, NotFound)."""
    return role_require(
        user=user, organization_id=task.project.organization_id, roles=MANAGING_ROLES, action=action
    )


@transaction.atomic
def task_reassign(*, task: Task, manager, assignee_id: int | None) -> Task:
    """A manager reserves the task for user `assignee_id` (who gets it from their next-task call) or,
    with None, returns it to the open queue. Any live lease is ended."""
    manager_require(user=manager, task=task, action="reassign tasks")
    assignee = None
    if assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=assignee_id).first()
        if assignee is None:
            raise DomainError("No such user.", field="assignee")
    task = task_locked(task)
    now = timezone.now()
    done_refuse(task)
    if assignee is not None:
        role = role_of(user=assignee, organization_id=task.project.organization_id)
        if role is None:
            raise DomainError("The assignee is not a member of this organization.", field="assignee")
        wanted = stage_role(task.project, task.stage)
        if role != wanted and role not in MANAGING_ROLES:
            raise DomainError(
                f"Stage {task.stage!r} is worked by role '{wanted}'; {assignee.username} is '{role}'.",
                field="assignee",
            )
        # The independence rule of next-task holds here too: a task reserved for someone excluded from it
        # would be offered to nobody.
        excluded = review_excluded(task=task, user=assignee)
        if excluded == "self_review":
            raise DomainError(
                f"{assignee.username} would review their own work.", field="assignee", code="self_review"
            )
        if excluded is not None:
            raise DomainError(
                f"{assignee.username} checked this task in an earlier review stage; {task.stage!r} is "
                "checked by someone else.",
                field="assignee",
                code="review_not_independent",
            )
    previous = task.assignee
    data = {
        "from": getattr(previous, "username", None),
        "to": getattr(assignee, "username", None),
        **(work_data(task, now) if task.status == TaskStatus.IN_PROGRESS else {}),
    }
    event_record(
        task,
        EventKind.REASSIGNED,
        at=now,
        actor=manager,
        from_stage=task.stage,
        to_stage=task.stage,
        data=data,
    )
    if previous is not None and previous != assignee:
        replica_abandon(task=task, user_id=previous.pk)  # their unsubmitted pass, if any
    claim_clear(task, assignee=assignee)
    task.save()
    return task


@transaction.atomic
def task_gold_set(*, task: Task, manager, is_gold: bool, regions: list | None) -> Task:
    """A manager marks a task as gold with its known-correct regions (validated like any annotation),
    or unmarks it."""
    manager_require(user=manager, task=task, action="mark gold tasks")
    task = task_locked(task)
    if is_gold and task.video_id:
        raise DomainError("Gold tasks are image tasks; video tasks cannot be gold yet.", field="is_gold")
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
    event_record(
        task,
        EventKind.GOLD_MARKED,
        at=timezone.now(),
        actor=manager,
        from_stage=task.stage,
        to_stage=task.stage,
        data={"is_gold": is_gold, "regions": len(task.gold_regions)},
    )
    return task
