"""The batched pre-label write path (predictions/batch_writes.py, labeling.annotations_prelabel): a
batch's database work does not grow with its images, and every image still gets its own outcome: done
and seeded, failed with the reason (nothing of it written), a task someone saved or accepted left as it
is, a prediction another run took written by that run only."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import Annotation, AnnotationRevision, Task, TaskStatus
from labelhub.predictions.batch_writes import Outcome, predictions_record, predictions_start
from labelhub.predictions.model_services import images_predict_service
from labelhub.predictions.models import ModelService, Prediction
from labelhub.predictions.services import PRESEGMENT_JOBS
from tests.helpers import image_bytes, upload
from workers.geometry.brush import brush_encode

pytestmark = pytest.mark.django_db(transaction=True)

# Queries of one batch through a model service, whatever its number of images: the service, the
# images, the finished ones, the claims (6), the service's success, the outcomes' transaction (held
# rows, 4 for the tasks' seeding, the predictions' update). 24 leaves room for a failed batch's extra
# writes, and is far below one image's ~15 in the one-image path.
MAX_QUERIES_PER_BATCH = 24


class Shapes(BaseHTTPRequestHandler):
    """A Label Studio ML backend stand-in: a triangle per task in percent; for an image named bad*, a
    brush mask of "dog", a class whose kinds are polygons only (the project's rules refuse it)."""

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/setup":
            answer = {"model_version": "v1"}
        else:
            answer = {"results": [self.prediction(task) for task in body["tasks"]], "model_version": "v1"}
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    @staticmethod
    def prediction(task: dict) -> dict:
        w, h = task["meta"]["width"], task["meta"]["height"]
        base = {"from_name": "polygon", "to_name": "image", "original_width": w, "original_height": h}
        if task["meta"]["file_name"].startswith("bad"):
            import numpy as np

            mask = np.zeros((h, w), bool)
            mask[2:10, 3:12] = True
            return {"result": [{**base, "from_name": "brush", "type": "brushlabels",
                                "value": {"format": "rle", "rle": brush_encode(mask), "brushlabels": ["dog"]}}]}  # fmt: skip
        points = [[10.0, 10.0], [60.0, 12.5], [30.0, 70.0]]
        return {"result": [{**base, "type": "polygonlabels", "value": {"points": points, "polygonlabels": ["cat"]}}],
                "score": 0.5}  # fmt: skip


@pytest.fixture
def service(org_a, settings):
    settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shapes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ModelService.objects.create(project=org_a.project, name="shapes", uses=["prelabel"],
                                      url=f"http://127.0.0.1:{server.server_port}")  # fmt: skip
    server.shutdown()


def images(org, *names: str) -> list[Image]:
    files = [(name, image_bytes(40, 32, seed=k)) for k, name in enumerate(names)]
    assert upload(org.clients[Role.MANAGER], org.project.id, *files).status_code == 201
    return list(Image.objects.filter(project=org.project, original_name__in=names).order_by("id"))


def seeded(image: Image) -> list[dict] | None:
    annotation = Annotation.objects.get(task__image=image)
    if annotation.current_revision == 0:
        return None
    return AnnotationRevision.objects.get(annotation=annotation, number=annotation.current_revision).regions


def test_a_batchs_queries_do_not_grow_with_its_images(org_a, service):
    small, large = (
        images(org_a, *[f"a{k}.png" for k in range(2)]),
        images(org_a, *[f"b{k}.png" for k in range(12)]),
    )
    counts = []
    for batch in (small, large):
        with CaptureQueriesContext(connection) as captured:
            results = images_predict_service(service_id=service.id, image_ids=[i.id for i in batch])
        counts.append(len(captured.captured_queries))
        assert sorted(results) == [i.id for i in batch]
        assert all(p.status == "ok" and p.attempts == 1 and p.model_version == "v1" for p in results.values())
    assert counts[0] == counts[1] <= MAX_QUERIES_PER_BATCH, counts
    for image in small + large:  # every task seeded with its own prediction's region, exactly
        prediction = Prediction.objects.get(image=image)
        assert prediction.status == "ok" and prediction.service_id == service.id and prediction.score == 0.5
        assert prediction.duration_ms > 0 and prediction.error == ""
        (region,) = seeded(image)
        assert region["prediction_id"] == prediction.id and region["source"] == "ai"
        assert region["polygons"][0]["exterior"] == [[4.0, 3.2], [24.0, 4.0], [12.0, 22.4]]
    # a second run of the same images: all done already, nothing claimed, nothing written
    with CaptureQueriesContext(connection) as captured:
        again = images_predict_service(service_id=service.id, image_ids=[i.id for i in large])
    assert {p.id for p in again.values()} == set(
        Prediction.objects.filter(image__in=large).values_list("id", flat=True)
    )
    assert len(captured.captured_queries) <= 4


def test_each_image_of_a_batch_keeps_its_own_outcome(org_a, service):
    good, bad, saved, accepted = images(org_a, "good.png", "bad.png", "saved.png", "zaccepted.png")
    owner = org_a.users[Role.OWNER]
    mine = [{"id": "m", "label": "dog", "kind": "polygon",
             "polygons": [{"exterior": [[1, 1], [9, 1], [9, 9]], "holes": []}]}]  # fmt: skip
    annotation_write(task=saved.task, author=owner, base_revision=0, regions=mine, writer=Writer.IMPORT)
    Task.objects.filter(image=accepted).update(status=TaskStatus.DONE)
    results = images_predict_service(
        service_id=service.id, image_ids=[good.id, bad.id, saved.id, accepted.id]
    )

    assert results[good.id].status == "ok" and seeded(good)[0]["prediction_id"] == results[good.id].id
    # the project's rules refuse the bad image's regions: failed with the reason, not retried, nothing
    # of it written (its prediction holds no regions, its task is untouched)
    refused = Prediction.objects.get(image=bad)
    assert refused.status == "failed" and refused.regions == []
    assert refused.error.startswith("the service's result is refused") and "regions[0].kind" in refused.error
    assert seeded(bad) is None
    # a task someone saved keeps its work, an accepted one too; their predictions are done
    assert results[saved.id].status == "ok" and [r["id"] for r in seeded(saved)] == ["m"]
    assert Annotation.objects.get(task__image=saved).current_revision == 1
    assert results[accepted.id].status == "ok" and seeded(accepted) is None
    assert ModelService.objects.get(id=service.id).failures_in_row == 0  # refusals are not the service's


def test_a_batch_writes_nothing_for_a_prediction_another_run_took(org_a, settings):
    first, second = images(org_a, "first.png", "second.png")
    claimed = predictions_start(images=[first, second], model_name="m", checkpoint_sha256="c", kind="service")
    assert {p.image_id for p in claimed.values()} == {first.id, second.id}
    # the same images again while this run is alive: a live run holds them, nothing is claimed
    assert (
        predictions_start(images=[first, second], model_name="m", checkpoint_sha256="c", kind="service") == {}
    )
    # this run stalls past the stale window; another run takes the second image's prediction
    settings.LABELHUB_JOB_STALE_SECONDS = 0
    other = PRESEGMENT_JOBS.claim(claimed[second.id].id)
    assert other == claimed[second.id].claim_token + 1
    for image in (first, second):
        image.project = org_a.project
    region = {"id": "r", "label": "cat", "kind": "polygon", "source": "ai",
              "polygons": [{"exterior": [[1, 1], [9, 1], [9, 9]], "holes": []}]}  # fmt: skip
    predictions_record(
        outcomes=[Outcome(image, claimed[image.id], regions=[region]) for image in (first, second)]
    )
    assert Prediction.objects.get(image=first).status == "ok" and seeded(first)[0]["id"] == "r"
    taken = Prediction.objects.get(image=second)
    assert taken.status == "running" and taken.attempts == other and taken.regions == []
    assert seeded(second) is None
