"""Pure rules of a project's QA pipeline ([{name, role, sample_rate, reject_to}]): where a stage sits,
whether a stage's sampling picks a task, where a task goes after a stage and after a rejection, and the
one check that an accepted task's workflow is over. No database access here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from labelhub.core.errors import Conflict, DomainError

from .models import TaskStatus

STAGE_DONE = "done"  # the stage of a task accepted after the last stage (its status is then "done")


def stage_index(project, stage: str) -> int:
    """Position of `stage` in the project's pipeline; DomainError (400) for an unknown stage."""
    names = project.stage_names
    if stage not in names:
        raise DomainError(f"Unknown stage {stage!r}; the pipeline is {names}.", field="stage")
    return names.index(stage)


def stage_role(project, stage: str) -> str:
    """The role that works `stage`."""
    return project.pipeline[stage_index(project, stage)]["role"]


def stage_is_review(project, stage: str) -> bool:
    """Every stage after the first is a review stage."""
    return stage_index(project, stage) > 0


def stage_sampled(*, project_id: int, task_id: int, stage: str, rate: float) -> bool:
    """Whether a stage with sampling rate `rate` (0..1) sees this task. Deterministic: the same task and
    stage always give the same answer, and about `rate` of all tasks are seen."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{project_id}:{task_id}:{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True)
class Skip:
    """A stage passed over because its sampling did not pick the task."""

    stage: str
    to_stage: str
    sample_rate: float


@dataclass(frozen=True)
class Move:
    """Where a task goes after its current stage: `next_stage` (the stage after it), the stages its
    sampling skips, and `to_stage` where it lands (STAGE_DONE past the last stage)."""

    next_stage: str
    skips: tuple[Skip, ...]
    to_stage: str

    @property
    def done(self) -> bool:
        return self.to_stage == STAGE_DONE


def stage_after(project, stage: str, *, task_id: int) -> Move:
    """The move of task `task_id` past `stage`."""
    pipeline = project.pipeline
    index = stage_index(project, stage) + 1

    def name(i: int) -> str:
        return pipeline[i]["name"] if i < len(pipeline) else STAGE_DONE

    first = name(index)
    skips = []
    while index < len(pipeline) and not stage_sampled(
        project_id=project.pk, task_id=task_id, stage=name(index), rate=pipeline[index]["sample_rate"]
    ):
        skips.append(Skip(name(index), name(index + 1), pipeline[index]["sample_rate"]))
        index += 1
    return Move(next_stage=first, skips=tuple(skips), to_stage=name(index))


def reject_target(project, stage: str) -> str:
    """The stage a rejection in `stage` sends the task back to (its `reject_to`, else the first stage)."""
    return project.pipeline[stage_index(project, stage)].get("reject_to") or project.first_stage


def task_is_done(task) -> bool:
    """Whether the task was accepted after the last stage."""
    return task.status == TaskStatus.DONE


def done_refuse(task, *, what: str = "its workflow is over") -> None:
    """Conflict (409, `task_done`) when the task is accepted: nothing about it changes any more."""
    if task_is_done(task):
        raise Conflict(f"The task is accepted; {what}.", code="task_done")
