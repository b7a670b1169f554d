"""Consensus: three annotators' crafted passes merge to the expected regions for quorum and IoU settings,
through the queue to review; the quality report's interval covers the true accuracy of simulated
projects; an export keeps its report and is blocked below the threshold."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.core.errors import Conflict
from labelhub.labeling import leases, reviews
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import ConsensusResult, Task, TaskReplica
from labelhub.labeling.replicas import consensus_merge
from labelhub.qa.report import report_from_rows, wilson_cc
from tests.helpers import make_user
from tests.labelhub.labeling.builders import HEIGHT, WIDTH, make_tasks, region

# Three annotators. A square S everyone draws (slightly differently), a square T two draw, a square U
# only the third draws; the second draws S as a dog.
PASSES = [
    ("ann1", [region("s", 0, 0, 20, 20), region("t", 30, 0, 50, 20)]),
    ("ann2", [region("s", 0, 0, 20, 22, label="dog"), region("t", 31, 0, 50, 20)]),
    ("ann3", [region("s", 1, 0, 20, 20), region("u", 0, 30, 20, 46)]),
]


def merged(quorum: int, min_iou: float) -> dict:
    return consensus_merge(PASSES, height=HEIGHT, width=WIDTH, quorum=quorum, min_iou=min_iou)


def test_merge_by_quorum_and_iou():
    two = merged(2, 0.5)
    assert [(r["id"], r["label"]) for r in two["regions"]] == [("s", "cat"), ("t", "cat")]
    agreement = {a["id"]: a for a in two["agreement"]}
    assert agreement["s"]["votes"] == 3 and agreement["s"]["agreement"] == 1.0
    assert agreement["t"]["votes"] == 2 and agreement["t"]["agreement"] == pytest.approx(2 / 3)
    # S's region is the member closest to the others: ann1's square (IoU 0.91 and 0.95).
    assert two["regions"][0]["polygons"] == PASSES[0][1][0]["polygons"]
    # ann1 drew both kept regions; ann3 one of its two.
    assert two["per_pass"] == [1.0, 1.0, 0.5]
    # Everyone must agree: only S. One vote is enough: S, T and U.
    assert [r["id"] for r in merged(3, 0.5)["regions"]] == ["s"]
    assert [r["id"] for r in merged(1, 0.5)["regions"]] == ["s", "t", "u"]
    # At IoU 0.95 ann2's taller S (IoU 400/440) is another region: S keeps 2 votes (ann1, ann3: IoU
    # 0.95) and its class (ann2's dog is alone); at 0.96 nothing pairs, so nothing reaches the quorum.
    strict = merged(2, 0.95)
    assert [(r["id"], r["label"]) for r in strict["regions"]] == [("s", "cat"), ("t", "cat")]
    assert strict["agreement"][0]["votes"] == 2
    assert merged(2, 0.96)["regions"] == []


@pytest.mark.django_db
def test_three_annotators_through_the_queue_then_review(org_a):
    project = org_a.project
    project.consensus_annotators = 3
    project.consensus_quorum = 2
    project.save()
    users = [org_a.users[Role.ANNOTATOR]] + [
        make_user(f"alpha-c{i}", org_a.organization, Role.ANNOTATOR) for i in range(2)
    ]
    (task,) = make_tasks(project, 1)
    for user, (_, regions) in zip(users, PASSES, strict=True):
        claimed = leases.task_claim_next(project=project, user=user, stage="annotate")
        assert claimed.pk == task.pk
        assert claimed.annotation.current_revision == 0  # everyone starts from the same (empty) pre-label
        annotation_write(task=claimed, author=user, base_revision=0, regions=regions, writer=Writer.MEMBER)
        reviews.task_submit(task=claimed, user=user)
        # Nobody gets the task twice.
        assert leases.task_claim_next(project=project, user=user, stage="annotate") is None
    task.refresh_from_db()
    assert task.stage == "review"
    result = ConsensusResult.objects.get(task=task)
    assert [r["id"] for r in result.regions] == ["s", "t"] and result.quorum == 2
    revision = task.annotation.revisions.get(number=result.revision)
    assert [r["label"] for r in revision.regions] == ["cat", "cat"] and revision.author is None
    # None of the three may review it; the metrics give each annotator's agreement.
    reviewer = org_a.users[Role.REVIEWER]
    for user in users:
        assert not Task.objects.filter(pk=task.pk).exclude(leases.own_work(user)).exists()
    assert leases.task_claim_next(project=project, user=reviewer, stage="review").pk == task.pk
    body = org_a.clients[Role.MANAGER].get(f"/api/v1/projects/{project.id}/metrics/").json()
    assert body["consensus"]["by_user"]["alpha-annotator"] == {"passes": 1, "mean_agreement": 1.0}
    assert body["consensus"]["by_user"]["alpha-c1"]["mean_agreement"] == 0.5
    assert TaskReplica.objects.filter(task=task).count() == 3


def test_interval_covers_the_true_accuracy_of_simulated_projects():
    """300 seeded simulated projects: labelers with known error rates (2-15% of regions wrong, by kind),
    40-400 tasks of 1-8 regions judged by honeypots or reviews. The report's 95% interval must hold
    the true accuracy (the expected share of correct regions) in at least 95% of them."""
    covered = 0
    runs = 300
    kinds = ["missing", "extra", "class", "boundary"]
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        error_rates = rng.uniform(0.02, 0.15, size=rng.integers(2, 6))
        tasks = int(rng.integers(40, 400))
        rows, expected_correct, expected_units = [], 0.0, 0
        for _ in range(tasks):
            labeler = int(rng.integers(len(error_rates)))
            units = int(rng.integers(1, 9))
            wrong = int(rng.binomial(units, error_rates[labeler]))
            errors = dict.fromkeys(kinds, 0)
            for _ in range(wrong):
                errors[kinds[int(rng.integers(4))]] += 1
            rows.append(
                (
                    "gold" if rng.random() < 0.1 else "review",
                    f"l{labeler}",
                    units,
                    units - wrong,
                    errors,
                    {"cat": {"units": units, "correct": units - wrong, **errors}},
                    None,
                )
            )
            expected_correct += units * (1 - error_rates[labeler])
            expected_units += units
        truth = expected_correct / expected_units
        low, high = report_from_rows(rows)["accuracy"]["ci95"]
        covered += low <= truth <= high
    assert covered / runs >= 0.95, covered


def test_wilson_known_values():
    # Newcombe (1998), table I, method 4 (score interval with continuity correction).
    for (r, n), expected in {
        (81, 263): (0.2535, 0.3682),
        (15, 148): (0.0598, 0.1644),
        (0, 20): (0.0, 0.2005),
        (1, 29): (0.0018, 0.1963),
    }.items():
        assert wilson_cc(r, n) == pytest.approx(expected, abs=1e-4)
    assert wilson_cc(0, 10)[0] == 0.0 and wilson_cc(10, 10)[1] == 1.0 and wilson_cc(0, 0) is None


@pytest.mark.django_db
def test_report_api_export_manifest_and_threshold(org_a):
    from labelhub.datasets.exports import export_create

    project = org_a.project
    annotator, reviewer, manager = (org_a.users[r] for r in (Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER))
    project.pipeline = project.pipeline[:2]
    project.save()
    make_tasks(project, 2)
    # Task 1 accepted unchanged (2 correct regions); task 2 fixed: one region moved too far, one added.
    for i in range(2):
        t = leases.task_claim_next(project=project, user=annotator, stage="annotate")
        regions = [region("a", 0, 0, 20, 20), region("b", 30, 0, 50, 20, label="dog")]
        annotation_write(task=t, author=annotator, base_revision=0, regions=regions, writer=Writer.MEMBER)
        reviews.task_submit(task=t, user=annotator)
        t = leases.task_claim_next(project=project, user=reviewer, stage="review")
        if i == 0:
            reviews.task_accept(task=t, user=reviewer)
        else:
            fixed = [regions[0], region("b", 30, 0, 50, 30, label="dog"), region("c", 0, 30, 10, 40)]
            reviews.task_fix_accept(task=t, user=reviewer, base_revision=1, regions=fixed)
    body = org_a.clients[Role.MANAGER].get(f"/api/v1/projects/{project.id}/quality/").json()
    assert body["accuracy"]["units"] == 5 and body["accuracy"]["correct"] == 3
    assert body["errors"] == {"missing": 1, "extra": 0, "class": 0, "boundary": 1}
    assert body["by_source"]["reviews"]["units"] == 5 and body["by_source"]["honeypots"]["units"] == 0
    assert body["per_class"]["dog"]["errors"]["boundary"] == 1
    low, high = body["accuracy"]["ci95"]
    assert low < 0.6 < high
    assert body["by_user"]["alpha-annotator"]["accuracy"] == 0.6
    assert org_a.clients[Role.ANNOTATOR].get(f"/api/v1/projects/{project.id}/quality/").status_code == 403

    export = export_create(project=project, user=manager, format="coco")
    assert export.quality["accuracy"]["accuracy"] == 0.6
    project.quality_threshold = 0.8
    project.quality_action = "block_export"
    project.save()
    with pytest.raises(Conflict) as refused:
        export_create(project=project, user=manager, format="coco")
    assert refused.value.code == "quality_below_threshold"


def test_a_released_pass_goes_back_to_the_pool(org_a):
    """Two annotators, two passes needed: one releases without submitting (or lets the lease lapse),
    the other submits; the task waits for nobody: the first takes it again from the pre-label and their
    submit merges it. Whoever submitted a pass never gets it again, by next-task or by a direct claim."""
    project = org_a.project
    project.consensus_annotators = 2
    project.save()
    a = org_a.users[Role.ANNOTATOR]
    b = make_user("alpha-c9", org_a.organization, Role.ANNOTATOR)
    (task,) = make_tasks(project, 1)
    claimed = leases.task_claim_next(project=project, user=a, stage="annotate")
    annotation_write(task=claimed, author=a, base_revision=0, regions=PASSES[2][1], writer=Writer.MEMBER)
    leases.task_release(task=claimed, user=a)
    task.refresh_from_db()
    assert task.annotation.current_revision == 0  # back at its pre-label
    assert not TaskReplica.objects.filter(task=task).exists()  # the unsubmitted pass is gone
    claimed = leases.task_claim_next(project=project, user=b, stage="annotate")
    assert claimed.pk == task.pk and claimed.annotation.current_revision == 0
    annotation_write(task=claimed, author=b, base_revision=0, regions=PASSES[0][1], writer=Writer.MEMBER)
    reviews.task_submit(task=claimed, user=b)
    with pytest.raises(Conflict) as refused:
        leases.task_claim(task=task, user=b)
    assert refused.value.code == "already_annotated"
    assert leases.task_claim_next(project=project, user=b, stage="annotate") is None
    # A's second claim, this time the lease lapses: the pass is dropped again and A may come back.
    claimed = leases.task_claim_next(project=project, user=a, stage="annotate")
    assert claimed.pk == task.pk and claimed.annotation.current_revision == 0
    annotation_write(task=claimed, author=a, base_revision=0, regions=[], writer=Writer.MEMBER)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert leases.leases_expire() == 1
    assert TaskReplica.objects.filter(task=task, submitted_at__isnull=True).count() == 0
    claimed = leases.task_claim(task=task, user=a)  # a direct claim starts a pass too
    assert claimed.annotation.current_revision == 0
    annotation_write(task=claimed, author=a, base_revision=0, regions=PASSES[1][1], writer=Writer.MEMBER)
    reviews.task_submit(task=claimed, user=a)
    task.refresh_from_db()
    assert task.stage == "review"  # the second submitted pass merged them
    result = ConsensusResult.objects.get(task=task)
    assert result.annotators == 2
    assert sorted(TaskReplica.objects.filter(task=task).values_list("user__username", flat=True)) == sorted(
        [a.username, b.username]
    )
