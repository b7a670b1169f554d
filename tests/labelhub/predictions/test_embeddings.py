"""Embeddings: computed once per image and model even when two workers ask at once, and repaired when
their stored file is lost. SAM vit_b with seeded random weights; one real encoder run (~20 s on the
dev box), which the two threads share."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.backends import segmentation_backend
from labelhub.predictions.embeddings import embedding_lookup, embedding_store, embeddings_ensure, process_lru
from labelhub.predictions.models import ImageEmbedding
from tests.helpers import disc_image_bytes, upload


@pytest.fixture
def sam_settings(settings):
    settings.LABELHUB_SAM_RANDOM_SEED = "0"
    settings.LABELHUB_SAM_MODEL = "vit_b"
    settings.LABELHUB_SAM_DEVICE = "cpu"
    settings.LABELHUB_SAM_BATCH_SIZE = 3
    cache.clear()
    process_lru.clear()
    yield settings
    process_lru.clear()


@pytest.mark.django_db
def test_batch_size_setting_reaches_the_backend(sam_settings):
    assert segmentation_backend().max_batch == 3


@pytest.mark.django_db(transaction=True)
def test_lost_file_is_recomputed_once_by_two_workers_and_stored_again(org_a, sam_settings):
    if connection.vendor != "postgresql":
        pytest.skip("the compute lock is a PostgreSQL advisory lock")
    from workers.sam import Embedding

    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("disc.png", disc_image_bytes())).status_code
        == 201
    )
    image = Image.objects.get()
    backend = segmentation_backend()
    fake = Embedding(
        backend.model_name,
        backend.checkpoint_sha256,
        (80, 96),
        (853, 1024),
        np.zeros((256, 64, 64), np.float16),
    )
    embedding_store(image=image, backend=backend, embedding=fake)
    row = ImageEmbedding.objects.get(image=image)
    row.file.storage.delete(row.file.name)  # the file is lost; the row stays
    cache.clear()
    process_lru.clear()
    assert embedding_lookup(image=image, backend=backend) == (None, "")

    encoded = backend.images_encoded
    tiers: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait()
            [(emb, tier)] = embeddings_ensure(images=[image], backend=backend).values()
            assert emb.data.shape == (256, 64, 64) and emb.data.any()
            tiers.append(tier)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(tiers) == ["computed", "process"]  # the second waited for the first, then found it
    assert backend.images_encoded == encoded + 1
    row = ImageEmbedding.objects.get(image=image)  # still one row, now with its file again
    assert row.file.storage.exists(row.file.name)
    cache.clear()
    process_lru.clear()
    stored, tier = embedding_lookup(image=image, backend=backend)
    assert tier == "storage" and stored.data.any()
