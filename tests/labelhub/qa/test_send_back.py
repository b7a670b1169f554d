"""Automatic send-back: a submit whose measured quality (a honeypot's accuracy, where immediate feedback
is on; a consensus merge's mean agreement) is below the project's `quality_send_back_below` goes back
to its annotator with a system comment, through the rejection path, at most `quality_send_back_limit`
times."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.labeling import leases, reviews
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import Comment, ConsensusResult, EventKind, Task, TaskReplica
from labelhub.qa.models import QualitySample, SampleKind
from tests.helpers import make_user
from tests.labelhub.labeling.builders import make_tasks

from .test_consensus_report import PASSES
from .test_honeypots import GOLD, make_gold

pytestmark = pytest.mark.django_db


def _settings(project, **values) -> None:
    for key, value in values.items():
        setattr(project, key, value)
    project.save()


def _draw_and_submit(client, task_id: int, regions: list[dict]) -> dict:
    ann = client.get(f"/api/v1/tasks/{task_id}/annotation/").json()
    put = client.put(
        f"/api/v1/tasks/{task_id}/annotation/",
        {"revision": ann["revision"], "regions": regions},
        format="json",
    )
    assert put.status_code == 200, put.content
    submitted = client.post(f"/api/v1/tasks/{task_id}/submit/")
    assert submitted.status_code == 200, submitted.content
    return submitted.json()


def _send_backs(task: Task) -> list[dict]:
    return [
        e.data["send_back"]
        for e in task.events.filter(kind=EventKind.REJECTED, actor__isnull=True).order_by("created_at", "id")
    ]


def test_failed_honeypot_goes_back_to_its_labeler_up_to_the_limit(org_a):
    project = org_a.project
    _settings(
        project,
        honeypot_rate=1.0,
        immediate_feedback=True,
        quality_send_back_below=0.8,
        quality_send_back_limit=2,
    )
    labeler, client = org_a.users[Role.ANNOTATOR], org_a.clients[Role.ANNOTATOR]
    (gold,) = make_gold(project, org_a.users[Role.MANAGER], 1, start=0)
    make_tasks(project, 2, start=10)
    url = f"/api/v1/projects/{project.id}/next-task/?stage=annotate"
    one_right = [GOLD[0]]  # 1 of 3 regions: accuracy 1/3
    for attempt in (1, 2):
        claimed = client.post(url).json()
        assert claimed["id"] == gold.pk
        if attempt == 2:  # their own regions are back, to correct
            kept = client.get(f"/api/v1/tasks/{gold.pk}/annotation/").json()["regions"]
            assert [r["id"] for r in kept] == [GOLD[0]["id"]]
        answer = _draw_and_submit(client, gold.pk, one_right)
        assert (answer["stage"], answer["status"], answer["assignee"]) == ("annotate", "open", labeler.pk)
        gold.refresh_from_db()
        assert _send_backs(gold)[-1] == {
            "source": "gold",
            "value": pytest.approx(1 / 3, abs=1e-6),
            "threshold": 0.8,
            "count": attempt,
            "limit": 2,
            "user": labeler.pk,
        }
        # The labeler reads why in a system comment; their pass stays open.
        comments = client.get(f"/api/v1/tasks/{gold.pk}/comments/").json()["results"]
        assert comments[-1]["author"] is None and "below the project's threshold 0.80" in comments[-1]["text"]
        assert TaskReplica.objects.get(task=gold, user=labeler).submitted_at is None
    # The third failed submit: the limit is reached, the pass is kept and the task back in the pool.
    claimed = client.post(url).json()
    assert claimed["id"] == gold.pk
    _draw_and_submit(client, gold.pk, one_right)
    gold.refresh_from_db()
    assert len(_send_backs(gold)) == 2 and gold.assignee_id is None and gold.stage == "annotate"
    assert TaskReplica.objects.get(task=gold, user=labeler).submitted_at is not None
    assert gold.annotation.current_revision == 0  # back at its pre-label for the next labeler
    assert QualitySample.objects.filter(task=gold, user=labeler, kind=SampleKind.GOLD).count() == 3
    # The events are a reviewer's rejection's, by nobody: "rejected" from the first stage to itself.
    rejected = gold.events.filter(kind=EventKind.REJECTED)
    assert {(e.from_stage, e.to_stage, e.actor_id) for e in rejected} == {("annotate", "annotate", None)}
    assert Comment.objects.filter(task=gold, author=None).count() == 2
    # A passing submit by another labeler is not sent back.
    other = make_user("alpha-l7", org_a.organization, Role.ANNOTATOR)
    from tests.helpers import client_for

    c2 = client_for(other)
    assert c2.post(url).json()["id"] == gold.pk
    answer = _draw_and_submit(c2, gold.pk, GOLD)
    assert answer["assignee"] is None and len(_send_backs(gold)) == 2


def test_no_send_back_of_a_honeypot_without_immediate_feedback(org_a):
    """A send-back would tell the labeler the task was gold: never where feedback is off."""
    project = org_a.project
    _settings(project, honeypot_rate=1.0, quality_send_back_below=0.99)
    (gold,) = make_gold(project, org_a.users[Role.MANAGER], 1, start=0)
    make_tasks(project, 1, start=10)  # a honeypot comes instead of new work
    client = org_a.clients[Role.ANNOTATOR]
    assert client.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate").json()["id"] == gold.pk
    answer = _draw_and_submit(client, gold.pk, [])
    assert answer["assignee"] is None and _send_backs(Task.objects.get(pk=gold.pk)) == []


def test_low_consensus_agreement_goes_back_once_then_to_review(org_a):
    project = org_a.project
    _settings(project, consensus_annotators=3, consensus_quorum=2, quality_send_back_below=0.9)
    users = [org_a.users[Role.ANNOTATOR]] + [
        make_user(f"alpha-c{i}", org_a.organization, Role.ANNOTATOR) for i in range(2)
    ]
    (task,) = make_tasks(project, 1)
    for user, (_, regions) in zip(users, PASSES, strict=True):
        claimed = leases.task_claim_next(project=project, user=user, stage="annotate")
        annotation_write(task=claimed, author=user, base_revision=0, regions=regions, writer=Writer.MEMBER)
        reviews.task_submit(task=claimed, user=user)
    task.refresh_from_db()
    result = ConsensusResult.objects.get(task=task)
    agreements = list(TaskReplica.objects.filter(task=task).values_list("agreement", flat=True))
    mean = sum(agreements) / 3
    assert mean < 0.9
    (due,) = _send_backs(task)
    assert due["source"] == "consensus" and due["value"] == pytest.approx(mean, abs=1e-6)
    assert (task.stage, task.status, task.assignee_id) == ("annotate", "open", users[2].pk)
    # The last annotator corrects the merged revision (no new pass) and it goes on to review.
    claimed = leases.task_claim_next(project=project, user=users[2], stage="annotate")
    assert claimed.pk == task.pk and claimed.annotation.current_revision == result.revision
    reviews.task_submit(task=claimed, user=users[2])
    task.refresh_from_db()
    assert task.stage == "review" and len(_send_backs(task)) == 1


def test_settings_validated_and_in_the_api(org_a):
    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/"
    for body, field in (
        ({"quality_send_back_below": 1.5}, "quality_send_back_below"),
        ({"quality_send_back_below": "low"}, "quality_send_back_below"),
        ({"quality_send_back_limit": 0}, "quality_send_back_limit"),
        ({"quality_send_back_limit": 11}, "quality_send_back_limit"),
    ):
        answer = client.patch(url, body, format="json")
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, answer.content
    saved = client.patch(url, {"quality_send_back_below": 0.7, "quality_send_back_limit": 3}, format="json")
    assert saved.status_code == 200
    assert (saved.json()["quality_send_back_below"], saved.json()["quality_send_back_limit"]) == (0.7, 3)
    assert (
        client.patch(url, {"quality_send_back_below": None}, format="json").json()["quality_send_back_below"]
        is None
    )
