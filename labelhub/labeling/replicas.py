"""First-stage tasks that several people annotate independently, each pass kept as a TaskReplica:

- honeypots: in a project with a `honeypot_rate`, gold tasks leave the ordinary queue; each claim that
  would hand out new work hands out instead, with that probability, a gold task the person never had.
  Its submit is scored (the "task.submitted" event, qa) and the task returns to the pool at its
  pre-label, so the next person meets it exactly as the first did. It never goes to review.
- consensus: in a project with `consensus_annotators` N > 1, each ordinary task is handed to N
  different people in turn, each starting from the pre-label; the N-th submit merges their regions
  (`consensus_merge`) into one revision, which goes on to review with each region's agreement.

A labeler's answers look the same for both as for any task: the same fields, their own events only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from labelhub.projects.models import Project
from labelhub.regions.validation import region_mask

from .models import (
    AnnotationRevision,
    ConsensusResult,
    ReplicaKind,
    Task,
    TaskReplica,
    TaskStatus,
)


def replica_kind(task: Task) -> str | None:
    """Which independent pass a claim of `task` starts (None: an ordinary claim)."""
    project = task.project
    if task.stage != project.first_stage:
        return None
    if task.is_gold:
        return ReplicaKind.HONEYPOT if project.honeypot_rate > 0 else None
    if project.consensus_annotators > 1 and not ConsensusResult.objects.filter(task=task).exists():
        return ReplicaKind.CONSENSUS
    return None


def honeypot_draw(*, project: Project, user, candidate_id: int) -> float:
    """A uniform number in [0, 1) for one claim, keyed by the secret key (labelers cannot predict it):
    fixed by the project, the user, the task they would get otherwise and how many honeypots they had,
    so each claim draws afresh (a honeypot leaves the same candidate first in the queue) and a claim
    repeated without a change draws the same."""
    had = TaskReplica.objects.filter(user=user, kind=ReplicaKind.HONEYPOT, task__project=project).count()
    key = settings.SECRET_KEY.encode()[:64]
    message = f"{project.pk}:{user.pk}:{candidate_id}:{had}".encode()
    return int.from_bytes(hashlib.blake2b(message, key=key, digest_size=8).digest(), "big") / 2**64


def not_replicated_by(queue: QuerySet[Task], *, user) -> QuerySet[Task]:
    """Leave out the tasks the user already made a pass over (one EXISTS on the user's replicas)."""
    return queue.exclude(Exists(TaskReplica.objects.filter(task=OuterRef("pk"), user=user)))


def ordinary_queue(queue: QuerySet[Task], *, project: Project, stage: str, user) -> QuerySet[Task]:
    """A first-stage queue step without honeypots (they are mixed in by rate) and, under consensus,
    without the tasks the user already annotated."""
    if stage != project.first_stage:
        return queue
    if project.honeypot_rate > 0:
        queue = queue.filter(is_gold=False)
    if project.consensus_annotators > 1:
        queue = not_replicated_by(queue, user=user)
    return queue


def honeypot_queue(*, project: Project, stage: str, user) -> QuerySet[Task] | None:
    """The honeypots the user never had, oldest first (index `task_gold_pool`); None outside a first
    stage of a project with honeypots."""
    if stage != project.first_stage or project.honeypot_rate <= 0:
        return None
    pool = Task.objects.filter(
        project=project, stage=stage, is_gold=True, status=TaskStatus.OPEN, assignee__isnull=True
    ).order_by("created_at", "id")
    return not_replicated_by(pool, user=user)


def annotation_reset(*, task: Task, base_revision: int) -> None:
    """Put the task's annotation back at `base_revision`: the revisions of a finished or abandoned pass
    go (what was submitted is kept in its TaskReplica)."""
    annotation = task.annotation
    AnnotationRevision.objects.filter(annotation=annotation, number__gt=base_revision).delete()
    if annotation.current_revision != base_revision:
        annotation.current_revision = base_revision
        annotation.save(update_fields=["current_revision", "updated_at"])


def replica_begin(*, task: Task, user, kind: str) -> TaskReplica:
    """Start the user's pass (after the claim, in its transaction): the task starts from its pre-label.
    A pass of theirs still open (sent back to them automatically) goes on where they left it."""
    own = TaskReplica.objects.filter(task=task, user=user, submitted_at__isnull=True).first()
    if own is not None:
        return own
    first = TaskReplica.objects.filter(task=task).order_by("id").first()
    if first is not None:
        annotation_reset(task=task, base_revision=first.base_revision)
    replica, _ = TaskReplica.objects.get_or_create(
        task=task,
        user=user,
        defaults={"kind": kind, "base_revision": task.annotation.current_revision},
    )
    return replica


def replica_abandon(*, task: Task, user_id: int | None) -> None:
    """The holder gave their pass up unsubmitted (a release, an expired lease, a manager's reassignment):
    it is dropped and the task goes back to its pre-label, so that the next person, the holder included
    (they made no pass), starts afresh; without this the pass kept the holder out of the task for good and
    a consensus task could wait forever for its last annotator."""
    left = TaskReplica.objects.filter(task=task, user_id=user_id, submitted_at__isnull=True).first()
    if left is None:
        return
    annotation_reset(task=task, base_revision=left.base_revision)
    left.delete()


def replica_submitted(*, task: Task, user) -> bool:
    """Whether the user already submitted a pass over the task (they never make a second)."""
    return TaskReplica.objects.filter(task=task, user=user, submitted_at__isnull=False).exists()


def replica_of(*, task: Task, user) -> TaskReplica | None:
    return TaskReplica.objects.filter(task=task, user=user, submitted_at__isnull=True).first()


def replica_finish(*, task: Task, replica: TaskReplica, regions: list, now: datetime) -> None:
    """Keep what the user submitted and put the task back at its pre-label."""
    replica.regions = regions
    replica.submitted_at = now
    replica.save(update_fields=["regions", "submitted_at"])
    annotation_reset(task=task, base_revision=replica.base_revision)


def consensus_merge(
    passes: list[tuple[object, list[dict]]], *, height: int, width: int, quorum: int, min_iou: float
) -> dict:
    """Merge independent annotations of one image: ``passes`` is ``[(who, regions)]``.

    Regions are grouped across passes: each pass in turn is matched one-to-one to the groups so far by
    IoU against each group's first region (the Hungarian assignment, workers.geometry.matching; a pair
    needs ``min_iou``), unmatched regions start groups. A group drawn by at least ``quorum`` passes is
    kept; its region is the member with the highest summed IoU to the other members (a region someone
    drew, so its geometry stays valid), its label the most drawn (ties: the earliest pass's). Returns
    ``{"regions": [...], "agreement": [{"id", "label", "votes", "agreement", "mean_iou", "members"}],
    "per_pass": [F1 of each pass's regions vs the kept groups]}``."""
    from collections import Counter

    import numpy as np

    from workers.geometry.matching import iou_matrix, match_masks

    groups: list[list[tuple[int, dict, np.ndarray]]] = []
    for k, (_, regions) in enumerate(passes):
        masks = [region_mask(r, height, width) for r in regions]
        seeds = [g[0][2] for g in groups]
        pairs = match_masks(iou_matrix(seeds, masks), min_iou=min_iou) if seeds and masks else []
        taken = set()
        for g, j, _ in pairs:
            groups[g].append((k, regions[j], masks[j]))
            taken.add(j)
        for j, region in enumerate(regions):
            if j not in taken:
                groups.append([(k, region, masks[j])])
    n = len(passes)
    merged, agreement = [], []
    kept_by_pass = [0] * n
    for group in groups:
        if len(group) < quorum:
            continue
        members = [m[2] for m in group]
        ious = iou_matrix(members, members)
        best = int(np.argmax(ious.sum(axis=1))) if len(group) > 1 else 0
        labels = Counter(m[1].get("label") for m in group)
        top = max(labels.values())
        label = next(m[1].get("label") for m in group if labels[m[1].get("label")] == top)
        region = {**group[best][1], "label": label}
        merged.append(region)
        off_diagonal = [ious[a, b] for a in range(len(group)) for b in range(len(group)) if a < b]
        agreement.append(
            {
                "id": region.get("id"),
                "label": label,
                "votes": len(group),
                "agreement": round(len(group) / n, 6),
                "mean_iou": round(float(np.mean(off_diagonal)), 6) if off_diagonal else None,
                "members": [{"pass": m[0], "region": m[1].get("id")} for m in group],
            }
        )
        for m in group:
            kept_by_pass[m[0]] += 1
    per_pass = []
    for k, (_, regions) in enumerate(passes):
        total = len(regions) + len(merged)
        per_pass.append(round(2 * kept_by_pass[k] / total, 6) if total else 1.0)
    return {"regions": merged, "agreement": agreement, "per_pass": per_pass}


def consensus_quorum(project: Project) -> int:
    n = project.consensus_annotators
    return min(project.consensus_quorum, n) if project.consensus_quorum else n // 2 + 1
