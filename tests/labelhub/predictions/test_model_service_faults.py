"""A misbehaving model service fails each image with a reason and writes nothing: down, HTTP 500, too
slow, malformed or oversized JSON, wrong image size, out-of-range coordinates, too many vertices; a
service that keeps failing is paused for the project."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.models import Task
from labelhub.predictions.models import ModelService, Prediction
from tests.helpers import disc_image_bytes, upload
from tests.lsml.fixtures import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Misbehaving(BaseHTTPRequestHandler):
    """A service that sets up fine and then answers /predict with `self.server.answer` bytes, with or
    without a Content-Length."""

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"model_version": "v1"}' if self.path == "/setup" else self.server.answer
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.declare_length or self.path == "/setup":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def misbehaving():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.answer, server.declare_length = b"", True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def predict(org, url: str, **extra) -> tuple[ModelService, list[Prediction]]:
    manager = org.clients[Role.MANAGER]
    body = {"name": f"svc{ModelService.objects.count()}", "url": url, "uses": ["prelabel"], **extra}
    service = manager.post(f"/api/v1/projects/{org.project.id}/model-services/", body, format="json").json()
    queued = manager.post(
        f"/api/v1/projects/{org.project.id}/model-services/{service['id']}/predict/", {}, format="json"
    )
    assert queued.status_code == 202 and queued.json()["queued"] == 1
    predictions = list(Prediction.objects.filter(service_id=service["id"]).order_by("image_id"))
    return ModelService.objects.get(id=service["id"]), predictions


@pytest.fixture
def two_images(org_a, settings):
    settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = True
    files = [(f"i{k}.png", disc_image_bytes(48, 40, seed=k)) for k in range(2)]
    assert upload(org_a.clients[Role.MANAGER], org_a.project.id, *files).status_code == 201
    return org_a


def assert_failed_with(predictions, words: str) -> None:
    assert len(predictions) == Image.objects.count() == 2
    for prediction in predictions:
        assert prediction.status == "failed" and words in prediction.error, prediction.error
        assert prediction.regions == [] and prediction.attempts == 1
    for task in Task.objects.all():  # nothing half-written: the tasks start empty
        assert not task.annotation.revisions.exclude(regions=[]).exists()


def test_a_service_that_is_down_or_refused(two_images, settings):
    _, predictions = predict(two_images, f"http://127.0.0.1:{free_port()}")
    assert_failed_with(predictions, "cannot be reached")
    settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = False  # an address the operator no longer allows
    ModelService.objects.update(paused=False)
    Prediction.objects.all().delete()
    service = ModelService.objects.get()
    from labelhub.predictions.model_services import images_predict_service

    results = images_predict_service(
        service_id=service.id, image_ids=list(Image.objects.values_list("id", flat=True))
    )
    assert all("not public" in p.error for p in results.values())


def test_http_500_timeout_and_bad_results_from_the_real_backend(two_images, backend):
    for mode, words, timeout in (
        ("error", "answered HTTP 500", 10),
        ("slow", "no answer within 1 s", 1),
        ("outofrange", "130.0 is out of range", 10),
        ("wrongsize", "is not the image's", 10),
        ("many", "30000 polygon vertices; at most 20000", 10),
    ):
        backend.mode(mode)
        _, predictions = predict(two_images, backend.url, timeout_seconds=timeout)
        assert_failed_with(predictions, words)


@pytest.mark.parametrize(
    ("answer", "declare_length", "words"),
    [
        (b'{"results": [{"result": [', True, "not valid JSON"),
        (b'{"results": []}', True, "0 predictions for 2 tasks"),
        (b'{"results": [' + b" " * 5000 + b"]}", True, "declares 5015 bytes; at most 4096"),
        (b'{"results": [' + b" " * 5000 + b"]}", False, "longer than 4096 bytes"),
        (b'["x", 1]', True, "a prediction is an object"),
    ],
)
def test_malformed_and_oversized_answers(two_images, misbehaving, settings, answer, declare_length, words):
    settings.LABELHUB_MODEL_SERVICE_MAX_RESPONSE_BYTES = 4096
    misbehaving.answer, misbehaving.declare_length = answer, declare_length
    _, predictions = predict(two_images, f"http://127.0.0.1:{misbehaving.server_port}")
    assert_failed_with(predictions, words)


def test_a_service_that_keeps_failing_is_paused_with_a_message_and_not_called(two_images, settings):
    settings.LABELHUB_MODEL_SERVICE_PAUSE_AFTER = 2
    manager = two_images.clients[Role.MANAGER]
    service, _ = predict(two_images, f"http://127.0.0.1:{free_port()}")
    assert not service.paused and service.failures_in_row == 1
    url = f"/api/v1/projects/{two_images.project.id}/model-services/{service.id}/"
    manager.post(url + "predict/", {}, format="json")
    shown = manager.get(url).json()
    assert shown["paused"] is True and shown["paused_reason"].startswith(
        "Paused after 2 failed calls in a row"
    )
    manager.post(url + "predict/", {}, format="json")  # paused: failed with the reason, no call
    service.refresh_from_db()
    assert service.failures_in_row == 2
    assert all("the service is paused" in p.error for p in Prediction.objects.all())
    resumed = manager.patch(url, {"paused": False}, format="json").json()
    assert resumed["paused"] is False and resumed["failures_in_row"] == 0
