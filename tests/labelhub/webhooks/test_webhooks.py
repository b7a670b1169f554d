"""Webhooks: a real HTTP receiver on 127.0.0.1 verifies the HMAC-SHA256 signature; a failing receiver is
retried and the delivery log shows every attempt."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.labeling import reviews
from labelhub.labeling.models import Task
from labelhub.webhooks.models import Webhook, WebhookDelivery
from labelhub.webhooks.services import webhook_emit
from tests.labelhub.labeling.builders import make_tasks


class Receiver:
    """A local HTTP server that records requests and answers with the next status from `statuses` (once
    `gate` is set, when one is given)."""

    def __init__(self, statuses: list[int], location: str = "", gate: threading.Event | None = None):
        self.statuses = list(statuses)
        self.arrived = threading.Event()
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": self.headers, "body": body})
                receiver.arrived.set()
                if gate is not None:  # hold the answer until the test opens the gate
                    gate.wait(30)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, request: dict) -> bool:
    """What a receiver does with the raw body and the headers."""
    timestamp = request["headers"]["X-LabelHub-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest("sha256=" + expected, request["headers"]["X-LabelHub-Signature"])


def hold(task, user):
    Task.objects.filter(pk=task.pk).update(
        status="in_progress",
        assignee=user,
        claimed_at=timezone.now(),
        last_heartbeat_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )


@pytest.mark.django_db
def test_stage_change_is_delivered_signed(org_a, django_capture_on_commit_callbacks):
    (task,) = make_tasks(org_a.project, 1)
    manager = org_a.clients[Role.MANAGER]
    with Receiver([200]) as receiver:
        created = manager.post(
            "/api/v1/webhooks/",
            {"project": org_a.project.id, "url": receiver.url, "events": ["task.stage_changed"]},
            format="json",
        )
        assert created.status_code == 201, created.json()
        hook = created.json()
        assert hook["organization"] == org_a.organization.id and len(hook["secret"]) == 64
        annotator = org_a.users[Role.ANNOTATOR]
        hold(task, annotator)
        with django_capture_on_commit_callbacks(execute=True):
            reviews.task_submit(task=task, user=annotator)
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        assert verify(hook["secret"], request)
        assert not verify("another secret", request)
        tampered = dict(request, body=request["body"].replace(b'"review"', b'"done"'))
        assert not verify(hook["secret"], tampered)
        body = json.loads(request["body"])
        assert request["headers"]["X-LabelHub-Event"] == "task.stage_changed"
        assert body["event"] == "task.stage_changed" and body["project"] == org_a.project.id
        assert body["data"] == {
            "task": task.id,
            "project": org_a.project.id,
            "image": task.image_id,
            "from_stage": "annotate",
            "to_stage": "review",
            "status": "open",
            "action": "submitted",
            "actor": "alpha-annotator",
            "revision": 0,
        }
        assert str(body["id"]) == request["headers"]["X-LabelHub-Delivery"]
    log = manager.get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["results"]
    assert len(log) == 1 and log[0]["status"] == "delivered" and log[0]["attempts"] == 1
    assert log[0]["log"][0]["status_code"] == 200


@pytest.mark.django_db
def test_failing_receiver_is_retried_and_every_attempt_logged(
    org_a, settings, django_capture_on_commit_callbacks
):
    settings.LABELHUB_WEBHOOK_MAX_ATTEMPTS = 3
    settings.LABELHUB_WEBHOOK_RETRY_SECONDS = 0
    with Receiver([500]) as broken, Receiver([503, 503, 200]) as flaky:
        secret = "s3cret"
        for url in (broken.url, flaky.url):
            Webhook.objects.create(organization=org_a.organization, url=url, secret=secret)
        with django_capture_on_commit_callbacks(execute=True):
            deliveries = webhook_emit(
                organization=org_a.organization,
                project=org_a.project,
                event="export.finished",
                payload={"export": 12, "format": "coco"},
            )
        assert len(deliveries) == 2
        assert len(broken.requests) == 3 and len(flaky.requests) == 3
        assert all(verify(secret, r) for r in broken.requests + flaky.requests)
        # Every attempt of a delivery carries the same body and delivery id.
        assert len({r["body"] for r in flaky.requests}) == 1
    failed = WebhookDelivery.objects.get(webhook__url=broken.url)
    assert failed.status == "failed" and failed.attempts == 3
    assert [a["status_code"] for a in failed.log] == [500, 500, 500]
    delivered = WebhookDelivery.objects.get(webhook__url=flaky.url)
    assert delivered.status == "delivered" and delivered.attempts == 3 and delivered.delivered_at
    assert [a["status_code"] for a in delivered.log] == [503, 503, 200]
    # A receiver that is not listening at all is logged as an error, not a crash.
    dead = Webhook.objects.create(organization=org_a.organization, url="http://127.0.0.1:9/none", secret="x")
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit(organization=org_a.organization, event="export.finished", payload={})
    lost = WebhookDelivery.objects.get(webhook=dead)
    assert lost.status == "failed" and lost.attempts == 3
    assert all(a["status_code"] is None and a["error"] for a in lost.log)


@pytest.mark.django_db
def test_webhook_scope_events_and_permissions(org_a, org_b, django_capture_on_commit_callbacks):
    from labelhub.projects.models import Project

    other = Project.objects.create(organization=org_a.organization, name="other")
    org_wide = Webhook.objects.create(organization=org_a.organization, url="http://127.0.0.1:9/a", secret="x")
    only_other = Webhook.objects.create(
        organization=org_a.organization, project=other, url="http://127.0.0.1:9/b", secret="x"
    )
    exports_only = Webhook.objects.create(
        organization=org_a.organization, url="http://127.0.0.1:9/c", secret="x", events=["export.finished"]
    )
    Webhook.objects.create(organization=org_b.organization, url="http://127.0.0.1:9/d", secret="x")
    made = webhook_emit(
        organization=org_a.organization, project=org_a.project, event="task.stage_changed", payload={}
    )
    assert {d.webhook_id for d in made} == {org_wide.id}
    made = webhook_emit(organization=org_a.organization, project=other, event="export.finished", payload={})
    assert {d.webhook_id for d in made} == {org_wide.id, only_other.id, exports_only.id}
    with pytest.raises(ValueError):
        webhook_emit(organization=org_a.organization, event="nonsense", payload={})

    url = "/api/v1/webhooks/"
    assert (
        org_a.clients[Role.ANNOTATOR]
        .post(url, {"organization": org_a.organization.id, "url": "http://x.test/"}, format="json")
        .status_code
        == 403
    )
    assert org_a.clients[Role.REVIEWER].get(url).json()["results"] == []
    manager = org_a.clients[Role.MANAGER]
    bad = manager.post(url, {"organization": org_a.organization.id, "url": "ftp://x.test/"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "url"
    bad = manager.post(
        url, {"organization": org_a.organization.id, "url": "http://x.test/", "events": ["x"]}, format="json"
    )
    assert bad.status_code == 400
    assert {h["id"] for h in manager.get(url).json()["results"]} == {
        org_wide.id,
        only_other.id,
        exports_only.id,
    }
    patched = manager.patch(
        f"{url}{org_wide.id}/", {"active": False, "events": ["export.finished"]}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert manager.delete(f"{url}{only_other.id}/").status_code == 204
    assert org_b.clients[Role.OWNER].get(f"{url}{exports_only.id}/").status_code == 404


@pytest.mark.django_db
def test_webhooks_to_private_addresses_are_refused(org_a, settings, django_capture_on_commit_callbacks):
    """SSRF: with LABELHUB_WEBHOOK_ALLOW_PRIVATE off (the default outside the test command), a
    webhook may not point into the server's own network, neither when it is created nor when a
    name resolves there at delivery time; public addresses are accepted."""
    settings.LABELHUB_WEBHOOK_ALLOW_PRIVATE = False
    manager = org_a.clients[Role.MANAGER]
    url = "/api/v1/webhooks/"
    for private in (
        "http://127.0.0.1:9/",
        "http://localhost:8000/hook",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ):
        bad = manager.post(url, {"organization": org_a.organization.id, "url": private}, format="json")
        assert bad.status_code == 400, private
        assert bad.json()["error"]["field"] == "url" and "non-public" in bad.json()["error"]["message"]
    assert not Webhook.objects.exists()
    ok = manager.post(
        url, {"organization": org_a.organization.id, "url": "https://93.184.216.34/hook"}, format="json"
    )
    assert ok.status_code == 201, ok.json()
    hook = Webhook.objects.get(pk=ok.json()["id"])
    patched = manager.patch(f"{url}{hook.id}/", {"url": "http://127.0.0.1/x"}, format="json")
    assert patched.status_code == 400 and patched.json()["error"]["field"] == "url"
    hook.refresh_from_db()
    assert hook.url == "https://93.184.216.34/hook"
    hook.delete()

    # A hook stored while private addresses were allowed is not sent once they are not.
    settings.LABELHUB_WEBHOOK_MAX_ATTEMPTS = 1
    with Receiver([200]) as receiver:
        Webhook.objects.create(organization=org_a.organization, url=receiver.url, secret="x")
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = webhook_emit(organization=org_a.organization, event="export.finished", payload={})
        assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.log[0]["status_code"] is None and "not a public address" in delivery.log[0]["error"]


@pytest.mark.django_db
def test_webhooks_do_not_follow_redirects(org_a, settings, django_capture_on_commit_callbacks):
    settings.LABELHUB_WEBHOOK_MAX_ATTEMPTS = 1
    with Receiver([200]) as target, Receiver([302], location=target.url) as redirecting:
        Webhook.objects.create(organization=org_a.organization, url=redirecting.url, secret="x")
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = webhook_emit(organization=org_a.organization, event="export.finished", payload={})
        assert len(redirecting.requests) == 1 and target.requests == []
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.log[0]["status_code"] == 302
