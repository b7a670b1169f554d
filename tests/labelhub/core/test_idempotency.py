"""The Idempotency-Key header: a resend gets the stored answer and runs nothing twice; another body is 422;
keys are per user; a concurrent duplicate answers 409 while the first runs, and the action runs once;
5xx answers are not kept; old keys expire. Real PostgreSQL, real API requests."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from labelhub.accounts.models import Role
from labelhub.core.idempotency import idempotency_purge, idempotent
from labelhub.core.models import IdempotencyKey
from labelhub.labeling.models import AnnotationRevision, EventKind, Task, TaskEvent
from tests.helpers import client_for
from tests.labelhub.labeling.builders import make_tasks, member, next_task, region


def keyed(key: str) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": key}


def submits(task) -> int:
    return TaskEvent.objects.filter(task=task, kind=EventKind.SUBMITTED).count()


@pytest.mark.django_db
def test_resent_submit_returns_the_first_answer_and_runs_once(org_a):
    (task,) = make_tasks(org_a.project, 1)
    annotator = org_a.clients[Role.ANNOTATOR]
    assert next_task(annotator, org_a.project.id, "annotate").json()["id"] == task.id
    base = f"/api/v1/tasks/{task.id}"

    saved = annotator.put(
        f"{base}/annotation/",
        {"revision": 0, "regions": [region("a", 1, 1, 9, 9)]},
        format="json",
        **keyed("save-1"),
    )
    assert saved.status_code == 200 and saved.json()["revision"] == 1
    again = annotator.put(
        f"{base}/annotation/",
        {"revision": 0, "regions": [region("a", 1, 1, 9, 9)]},
        format="json",
        **keyed("save-1"),
    )
    # Without the key this resend would be a stale write (409); with it, the first answer comes back.
    assert again.status_code == 200 and again.json() == saved.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in saved
    assert AnnotationRevision.objects.filter(annotation__task=task).count() == 1

    first = annotator.post(f"{base}/submit/", **keyed("submit-1"))
    assert first.status_code == 200 and first.json()["stage"] == "review"
    events = TaskEvent.objects.filter(task=task).count()
    replay = annotator.post(f"{base}/submit/", **keyed("submit-1"))
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert submits(task) == 1 and TaskEvent.objects.filter(task=task).count() == events
    assert AnnotationRevision.objects.filter(annotation__task=task).count() == 1
    # The action really would have answered otherwise: a resend without the key is refused.
    assert annotator.post(f"{base}/submit/").status_code == 409
    assert submits(task) == 1


@pytest.mark.django_db
def test_a_stored_4xx_is_replayed_too(org_a):
    (task,) = make_tasks(org_a.project, 1)
    annotator = org_a.clients[Role.ANNOTATOR]
    refused = annotator.post(f"/api/v1/tasks/{task.id}/submit/", **keyed("k"))  # no lease: 409
    assert refused.status_code == 409
    assert next_task(annotator, org_a.project.id, "annotate").status_code == 200
    again = annotator.post(f"/api/v1/tasks/{task.id}/submit/", **keyed("k"))
    assert (
        again.status_code == 409 and again.json() == refused.json() and again["Idempotent-Replayed"] == "true"
    )
    assert submits(task) == 0


@pytest.mark.django_db
def test_same_key_with_another_body_or_path_is_422(org_a):
    (task,) = make_tasks(org_a.project, 1)
    annotator = org_a.clients[Role.ANNOTATOR]
    assert next_task(annotator, org_a.project.id, "annotate").status_code == 200
    url = f"/api/v1/tasks/{task.id}/annotation/"
    assert annotator.put(url, {"revision": 0, "regions": []}, format="json", **keyed("k1")).status_code == 200

    other_body = annotator.put(
        url, {"revision": 0, "regions": [region("a", 1, 1, 9, 9)]}, format="json", **keyed("k1")
    )
    assert other_body.status_code == 422
    assert other_body.json()["error"]["field"] == "Idempotency-Key"
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    other_path = annotator.post(f"/api/v1/tasks/{task.id}/heartbeat/", **keyed("k1"))
    assert other_path.status_code == 422 and other_path.json()["error"]["field"] == "Idempotency-Key"
    assert AnnotationRevision.objects.filter(annotation__task=task).count() == 1
    # The same JSON written with other whitespace and key order is the same request.
    same = annotator.generic(
        "PUT", url, '{ "regions": [],   "revision": 0 }', content_type="application/json", **keyed("k1")
    )
    assert same.status_code == 200 and same["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_resent_upload_stores_one_image_and_another_file_is_422(org_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from labelhub.images.models import Image
    from tests.helpers import image_bytes

    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/images/upload/"

    def send(data: bytes, key: str = "upload-1"):
        payload = {"files": [SimpleUploadedFile("a.png", data)]}
        return client.post(url, payload, format="multipart", **keyed(key))

    first = send(image_bytes(seed=1))
    assert first.status_code == 201, first.json()
    again = send(image_bytes(seed=1))
    assert (
        again.status_code == 201 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    )
    assert Image.objects.filter(project=org_a.project).count() == 1
    # Same name and size, other bytes: another request.
    other = send(image_bytes(seed=2))
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    assert Image.objects.filter(project=org_a.project).count() == 1
    assert send(image_bytes(seed=2), key="upload-2").status_code == 201
    assert Image.objects.filter(project=org_a.project).count() == 2


@pytest.mark.django_db
def test_keys_belong_to_their_user(org_a):
    tasks = make_tasks(org_a.project, 2)
    alice = org_a.clients[Role.ANNOTATOR]
    _, bob = member(org_a, "alpha-bob", Role.ANNOTATOR)
    got_a = next_task(alice, org_a.project.id, "annotate").json()["id"]
    got_b = next_task(bob, org_a.project.id, "annotate").json()["id"]
    assert {got_a, got_b} == {t.id for t in tasks}
    # Same key, and for bob the same body and path shape: both run.
    a = alice.post(f"/api/v1/tasks/{got_a}/submit/", **keyed("shared"))
    b = bob.post(f"/api/v1/tasks/{got_b}/submit/", **keyed("shared"))
    assert a.status_code == b.status_code == 200
    assert "Idempotent-Replayed" not in a and "Idempotent-Replayed" not in b
    assert TaskEvent.objects.filter(kind=EventKind.SUBMITTED).count() == 2
    assert IdempotencyKey.objects.filter(key="shared").count() == 2


@pytest.mark.django_db
def test_bad_keys_answer_400_naming_the_header(org_a):
    (task,) = make_tasks(org_a.project, 1)
    annotator = org_a.clients[Role.ANNOTATOR]
    too_long = annotator.post(f"/api/v1/tasks/{task.id}/heartbeat/", **keyed("x" * 256))
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "Idempotency-Key"
    empty = annotator.post(f"/api/v1/tasks/{task.id}/heartbeat/", **keyed("  "))
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "Idempotency-Key"
    longest = annotator.post(f"/api/v1/tasks/{task.id}/heartbeat/", **keyed("x" * 255))
    assert longest.status_code == 409  # a valid key; no lease held
    assert not IdempotencyKey.objects.exclude(key="x" * 255).exists()


@pytest.mark.django_db
def test_reads_ignore_the_header(org_a):
    (task,) = make_tasks(org_a.project, 1)
    client = org_a.clients[Role.MANAGER]
    assert client.get(f"/api/v1/tasks/{task.id}/annotation/", **keyed("read")).status_code == 200
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_expired_keys_run_again_and_are_purged(org_a, settings):
    settings.LABELHUB_IDEMPOTENCY_SECONDS = 3600
    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/exports/"
    first = client.post(url, {"format": "coco"}, format="json", **keyed("export"))
    assert first.status_code == 202
    assert client.post(url, {"format": "coco"}, format="json", **keyed("export")).json() == first.json()
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=3601))
    later = client.post(url, {"format": "coco"}, format="json", **keyed("export"))
    assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in later
    IdempotencyKey.objects.create(
        user=org_a.users[Role.MANAGER],
        key="old",
        method="POST",
        path=url,
        fingerprint="f",
        created_at=timezone.now() - timedelta(days=2),
    )
    assert idempotency_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["export"]


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_answers_409_and_the_action_runs_once(org_a):
    assert connection.vendor == "postgresql"
    (task,) = make_tasks(org_a.project, 1)
    user = org_a.users[Role.ANNOTATOR]
    assert next_task(org_a.clients[Role.ANNOTATOR], org_a.project.id, "annotate").status_code == 200
    url = f"/api/v1/tasks/{task.id}/submit/"
    answers: dict[str, object] = {}

    def send(name: str) -> None:
        try:
            answers[name] = client_for(user).post(url, **keyed("dup"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            answers[name] = exc
        finally:
            connections.close_all()

    first = threading.Thread(target=send, args=("first",))
    with transaction.atomic():
        # Hold the task's row: the first request claims its key, then waits inside its action.
        Task.objects.select_for_update().get(pk=task.pk)
        first.start()
        deadline = time.monotonic() + 30
        with connection.cursor() as cursor:
            while True:
                # (statistics are a snapshot per transaction: cleared to see the other backend now)
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                if cursor.fetchone()[0] >= 1:
                    break
                assert time.monotonic() < deadline, "the first request never reached the task's lock"
                time.sleep(0.05)
        second = threading.Thread(target=send, args=("second",))
        second.start()
        second.join(30)
    first.join(30)

    dup = answers["second"]
    assert dup.status_code == 409, dup.json()
    assert dup.json()["error"]["code"] == "idempotency_in_progress"
    assert dup.json()["error"]["field"] == "Idempotency-Key"
    assert answers["first"].status_code == 200, answers["first"].json()
    assert submits(task) == 1
    replay = client_for(user).post(url, **keyed("dup"))
    assert replay.status_code == 200 and replay.json() == answers["first"].json()
    assert submits(task) == 1


class Flaky(APIView):
    """A view that fails once with the given status (or an exception), then succeeds: how often it ran."""

    runs = 0
    failure: int | None = 503

    @idempotent
    def post(self, request):
        type(self).runs += 1
        if type(self).runs == 1:
            if self.failure is None:
                raise RuntimeError("the first run crashed")
            return Response({"error": {"code": "unavailable"}}, status=self.failure)
        return Response({"run": type(self).runs}, status=201)


@pytest.mark.django_db
@pytest.mark.parametrize("failure", [503, 500, None])
def test_5xx_answers_are_not_stored_so_a_retry_runs(org_a, failure):
    view = type("FlakyView", (Flaky,), {"runs": 0, "failure": failure}).as_view()
    user = org_a.users[Role.ANNOTATOR]

    def call():
        request = APIRequestFactory().post("/flaky/", {"a": 1}, format="json", **keyed("retry"))
        force_authenticate(request, user=user)
        return view(request)

    if failure is None:
        with pytest.raises(RuntimeError):
            call()
    else:
        assert call().status_code == failure
    assert not IdempotencyKey.objects.exists()  # nothing kept for the key
    retried = call()
    assert retried.status_code == 201 and retried.data == {"run": 2}
    replay = call()
    assert replay.status_code == 201 and replay.data == {"run": 2} and replay["Idempotent-Replayed"] == "true"


class NotANumber(APIView):
    runs = 0

    @idempotent
    def post(self, request):
        type(self).runs += 1
        return Response({"score": float("nan")}, status=201)


@pytest.mark.django_db
def test_an_answer_postgresql_cannot_store_is_not_kept_and_the_action_stands(org_a):
    """NaN is not JSON to PostgreSQL: the success is answered, and a resend runs again (nothing kept)."""
    view = type("NaNView", (NotANumber,), {"runs": 0})
    user = org_a.users[Role.ANNOTATOR]

    def call():
        request = APIRequestFactory().post("/nan/", {}, format="json", **keyed("nan"))
        force_authenticate(request, user=user)
        return view.as_view()(request)

    assert call().status_code == 201
    assert not IdempotencyKey.objects.exists()
    assert call().status_code == 201 and view.runs == 2
