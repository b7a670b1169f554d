"""The order next-task offers tasks in (reserved for you, then expired leases, longest expired first,
then the oldest open task), review exclusions on every step, the partial indexes each step reads, and
the same claims on SQLite (the embedded demo), where no row lock exists and the conditional UPDATE is the
guard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.labeling import leases
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import EventKind, Task, TaskEvent, TaskStatus
from tests.helpers import make_user
from tests.labelhub.labeling.builders import make_tasks, region

ROOT = Path(__file__).resolve().parents[3]


def hold(task: Task, user, *, expired_seconds_ago: float | None = None) -> None:
    """Put `task` in progress for `user`, on a lease that ran out that many seconds ago (or a live one)."""
    now = timezone.now()
    expires = (
        now - timedelta(seconds=expired_seconds_ago) if expired_seconds_ago else now + timedelta(minutes=5)
    )
    Task.objects.filter(pk=task.pk).update(
        status=TaskStatus.IN_PROGRESS, assignee=user, claimed_at=now, lease_expires_at=expires
    )


def claim(project, user, stage: str = "annotate") -> int | None:
    task = leases.task_claim_next(project=project, user=user, stage=stage)
    return task.pk if task else None


@pytest.mark.django_db
def test_reserved_first_then_expired_leases_longest_expired_first_then_oldest_open(org_a):
    project = org_a.project
    t1, t2, t3, t4, t5, t6 = make_tasks(project, 6)
    alice, bob, carol, dave, erin, gone = (
        make_user(f"alpha-{n}", org_a.organization, Role.ANNOTATOR)
        for n in ("alice", "bob", "carol", "dave", "erin", "gone")
    )
    Task.objects.filter(pk=t5.pk).update(assignee=alice)  # reserved for Alice (open)
    hold(t4, gone, expired_seconds_ago=10)
    hold(t3, gone, expired_seconds_ago=600)  # expired longer ago than t4's
    hold(t6, gone)  # live: nobody else may take it

    assert claim(project, alice) == t5.pk  # her reservation before any older open or expired task
    assert claim(project, bob) == t3.pk  # an expired lease before the older open t1, longest expired first
    assert claim(project, carol) == t4.pk
    assert claim(project, dave) == t1.pk  # then the oldest open task
    assert claim(project, erin) == t2.pk
    assert claim(project, make_user("alpha-late", org_a.organization, Role.ANNOTATOR)) is None

    expired = TaskEvent.objects.filter(kind=EventKind.LEASE_EXPIRED).order_by("id")
    assert [(e.task_id, e.data["assignee"]) for e in expired] == [(t3.pk, gone.pk), (t4.pk, gone.pk)]
    reserved = TaskEvent.objects.get(kind=EventKind.CLAIMED, task=t5)
    assert reserved.data == {"reserved": True} and reserved.actor == alice
    assert Task.objects.get(pk=t6.pk).assignee == gone  # the live lease was left alone
    # Each asks again and gets the task already held, whatever became claimable since.
    hold(t6, gone, expired_seconds_ago=1)
    assert [claim(project, u) for u in (alice, bob, carol, dave, erin)] == [t5.pk, t3.pk, t4.pk, t1.pk, t2.pk]


def _own(task: Task, author) -> None:
    annotation_write(
        task=task, author=author, base_revision=0, regions=[region("r", 1, 1, 9, 9)], writer=Writer.IMPORT
    )


@pytest.mark.django_db
def test_review_exclusions_hold_on_every_step(org_a):
    """In a review stage own work and (independent reviews) earlier-review work are skipped whether the
    task is reserved for the reviewer, on an expired lease, or open."""
    project = org_a.project
    assert project.independent_reviews
    reviewer = make_user("alpha-rev", org_a.organization, Role.REVIEWER)
    other = make_user("alpha-other", org_a.organization, Role.REVIEWER)
    own_reserved, own_expired, reviewed_expired, own_open, reviewed_open, fresh = make_tasks(project, 6)
    for task in (own_reserved, own_expired, own_open):
        _own(task, reviewer)
    for task in (reviewed_expired, reviewed_open):
        TaskEvent.objects.create(
            task=task,
            kind=EventKind.ACCEPTED,
            actor=reviewer,
            from_stage="review",
            to_stage="final-qa",
            created_at=timezone.now(),
        )
    Task.objects.filter(project=project).update(stage="final-qa")
    # Reserving own work is refused by reassign; a direct write stands for any path that could do it.
    Task.objects.filter(pk=own_reserved.pk).update(assignee=reviewer)
    hold(own_expired, other, expired_seconds_ago=60)
    hold(reviewed_expired, other, expired_seconds_ago=30)

    assert claim(project, reviewer, "final-qa") == fresh.pk
    # The other reviewer may take every one of them: the expired leases first, then the open ones.
    Task.objects.filter(pk=own_reserved.pk).update(assignee=None)
    got = []
    for _ in range(5):
        got.append(claim(project, other, "final-qa"))
        Task.objects.filter(pk=got[-1]).update(status=TaskStatus.OPEN, stage="review", assignee=None)
    assert got == [own_expired.pk, reviewed_expired.pk, own_reserved.pk, own_open.pk, reviewed_open.pk]


@pytest.mark.django_db
def test_each_step_reads_its_partial_index_without_sorting(org_a):
    """The steps are ORDER BY ... LIMIT 1 on a partial index whose order is the wanted one: the plan has
    no Sort node, so a call reads a few index entries however many tasks are open. (Sequential scans and
    sorts are switched off because with a few rows any plan is as cheap; a query that cannot be answered
    from an ordered index, like the old CASE order, still shows its Sort.)"""
    assert connection.vendor == "postgresql"
    project = org_a.project
    make_tasks(project, 3)
    reviewer = org_a.users[Role.REVIEWER]
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off; SET enable_sort = off")
    try:
        for stage, user in (("annotate", org_a.users[Role.ANNOTATOR]), ("final-qa", reviewer)):
            steps = leases._claimable_steps(project=project, stage=stage, user=user, now=timezone.now())
            plans = [step.select_for_update(skip_locked=True, of=("self",))[:1].explain() for step in steps]
            for plan, index in zip(
                plans, ("task_assigned", "task_lease_expiry", "task_open_queue"), strict=True
            ):
                top = plan.split("SubPlan")[0]  # the outer query, before the exclusion subqueries
                assert f"using {index} on labeling_task" in top, plan
                assert "Sort" not in top, plan
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_sort")


SQLITE_SCRIPT = textwrap.dedent(
    """
    import django
    django.setup()
    from datetime import timedelta
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone
    call_command("migrate", verbosity=0)
    assert connection.vendor == "sqlite"
    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.models import Image
    from labelhub.labeling.leases import task_claim_next
    from labelhub.labeling.models import Task
    from labelhub.labeling.services import task_create_for_image
    from labelhub.projects.models import Project
    from django.contrib.auth import get_user_model
    org = Organization.objects.create(name="S", slug="s")
    users = []
    for name in ("a", "b", "c", "d"):
        user = get_user_model().objects.create_user(username=name, password="pw-" + name)
        Membership.objects.create(organization=org, user=user, role=Role.ANNOTATOR)
        users.append(user)
    project = Project.objects.create(organization=org, name="S", created_by=users[0])
    tasks = [
        task_create_for_image(image=Image.objects.create(
            project=project, file=f"f/{i}.png", original_name=f"{i}.png", width=4, height=4,
            format="PNG", sha256=f"{i:064d}", size_bytes=1))
        for i in range(4)
    ]
    Task.objects.filter(pk=tasks[3].pk).update(assignee=users[0])
    Task.objects.filter(pk=tasks[2].pk).update(
        status="in_progress", assignee=users[3], lease_expires_at=timezone.now() - timedelta(seconds=5))
    got = [task_claim_next(project=project, user=u, stage="annotate").pk for u in users[:3]]
    again = [task_claim_next(project=project, user=u, stage="annotate").pk for u in users[:3]]
    order = [t.pk for t in tasks]
    print(got == again == [order[3], order[2], order[0]], got, again, order)
    """
)


def test_sqlite_claims_in_the_same_order(tmp_path):
    """The embedded configuration (SQLite, no row locks): the same order, and a held lease handed back."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABELHUB_", "DATABASE_URL", "CELERY_", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env.update(LABELHUB_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="labelhub.settings")
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("True "), done.stdout
