"""Decoding clicks in the browser: the API serves the image embedding (fp16) and SAM's decoder as ONNX,
behind authentication and organization isolation, and a client decoding with them (what the labeling
app does with onnxruntime-web, here with onnxruntime in Python) gets the server's own mask.

SAM vit_b with seeded random weights; the embedding is a seeded array stored through the service, so
no test here runs the image encoder (one decoder export, ~3 s). Random weights: plumbing, not quality.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from django.core.cache import cache

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.backends import segmentation_backend
from labelhub.predictions.embeddings import embedding_store, process_lru
from tests.helpers import disc_image_bytes, upload
from workers.geometry import rle_to_mask


@pytest.fixture
def sam_settings(settings, tmp_path_factory):
    settings.LABELHUB_SAM_RANDOM_SEED = "0"
    settings.LABELHUB_SAM_MODEL = "vit_b"
    settings.LABELHUB_SAM_DEVICE = "cpu"
    settings.LABELHUB_SAM_DECODER = "torch"  # the server decodes with PyTorch; the client with ONNX
    settings.LABELHUB_SAM_ONNX_DIR = str(tmp_path_factory.getbasetemp() / "onnx")
    cache.clear()
    process_lru.clear()
    yield settings
    process_lru.clear()


@pytest.fixture
def embedded_image(org_a, sam_settings):
    from workers.sam import Embedding

    assert (
        upload(
            org_a.clients[Role.OWNER], org_a.project.id, ("disc.png", disc_image_bytes(96, 80))
        ).status_code
        == 201
    )
    image = Image.objects.get()
    backend = segmentation_backend()
    data = np.random.default_rng(0).normal(0, 1, (256, 64, 64)).astype(np.float16)
    embedding = Embedding(backend.model_name, backend.checkpoint_sha256, (80, 96), (853, 1024), data)
    embedding_store(image=image, backend=backend, embedding=embedding)
    return image, embedding


def _browser_click(decoder: bytes, features: np.ndarray, headers, x: float, y: float) -> np.ndarray:
    """What the app does: map the click into the 1024 frame, pad with a (0, 0) point labelled -1,
    run the graph, take the best of mask tokens 1-3, upscale to the image (threshold 0)."""
    from workers.sam.onnx_decoder import upscale_logits

    oh, ow = (int(v) for v in headers["X-Original-Size"].split(","))
    ih, iw = (int(v) for v in headers["X-Input-Size"].split(","))
    session = ort.InferenceSession(decoder, providers=["CPUExecutionProvider"])
    low, iou = session.run(
        None,
        {
            "image_embeddings": features.astype(np.float32),
            "point_coords": np.array([[[x * iw / ow, y * ih / oh], [0, 0]]], np.float32),
            "point_labels": np.array([[1, -1]], np.float32),
            "mask_input": np.zeros((1, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
        },
    )
    best = 1 + int(np.argmax(iou[0, 1:]))
    return upscale_logits(low[0, best], (ih, iw), (oh, ow)) > 0


@pytest.mark.django_db
def test_browser_decodes_the_served_embedding_like_the_server(org_a, embedded_image):
    image, embedding = embedded_image
    client = org_a.clients[Role.ANNOTATOR]
    got = client.get(f"/api/v1/images/{image.id}/embedding/", {"model": "sam-vit_b"})
    assert got.status_code == 200
    assert got["Content-Type"] == "application/octet-stream"
    assert got["X-Embedding-Shape"] == "1,256,64,64" and got["X-Embedding-Dtype"] == "float16"
    assert (got["X-Original-Size"], got["X-Input-Size"]) == ("80,96", "853,1024")
    assert (got["X-Model-Name"], got["X-Checkpoint-Sha256"]) == ("sam-vit_b", "random-seed-0")
    features = np.frombuffer(got.content, "<f2").reshape(1, 256, 64, 64)
    assert np.array_equal(features[0], embedding.data)

    model = client.get("/api/v1/models/sam/decoder.onnx")
    assert model.status_code == 200 and model["X-Checkpoint-Sha256"] == "random-seed-0"
    decoder = b"".join(model.streaming_content)

    served = client.post(
        f"/api/v1/images/{image.id}/segment/", {"points": [[48, 40]], "point_labels": [1]}, format="json"
    )
    assert served.status_code == 200, served.json()
    server_mask = rle_to_mask(served.json()["rle"])
    browser_mask = _browser_click(decoder, features, got, 48, 40)
    assert 0 < server_mask.sum() < server_mask.size
    union = (server_mask | browser_mask).sum()
    assert (server_mask & browser_mask).sum() / union >= 0.99


@pytest.mark.django_db
def test_embedding_and_decoder_need_auth_and_the_images_organization(org_a, org_b, embedded_image):
    from rest_framework.test import APIClient

    image, _ = embedded_image
    assert org_b.clients[Role.OWNER].get(f"/api/v1/images/{image.id}/embedding/").status_code == 404
    anonymous = APIClient()
    assert anonymous.get(f"/api/v1/images/{image.id}/embedding/").status_code in (401, 403)
    assert anonymous.get("/api/v1/models/sam/decoder.onnx").status_code in (401, 403)
    wrong = org_a.clients[Role.ANNOTATOR].get(f"/api/v1/images/{image.id}/embedding/", {"model": "sam-vit_h"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "model"


@pytest.mark.django_db
def test_classical_backend_has_nothing_to_decode_in_the_browser(org_a):
    cache.clear()
    process_lru.clear()
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("disc.png", disc_image_bytes())).status_code
        == 201
    )
    image = Image.objects.get()
    client = org_a.clients[Role.ANNOTATOR]
    for url in (f"/api/v1/images/{image.id}/embedding/", "/api/v1/models/sam/decoder.onnx"):
        response = client.get(url)
        assert response.status_code == 409 and response.json()["error"]["code"] == "no_sam_model"
