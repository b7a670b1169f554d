"""Image embeddings: computed once per image and model, then served from three tiers:
an in-process LRU (the image a labeler is clicking on), the Redis cache (hot images, shared by all
API processes and workers, evicted LRU by Redis) and the storage backend (every embedding ever made).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction

from labelhub.images.models import Image

from .backends import image_pixels
from .models import ImageEmbedding

if TYPE_CHECKING:
    from workers.sam import Embedding, SegmentationBackend

log = logging.getLogger(__name__)


class _ProcessLRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[str, Embedding] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Embedding | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: str, value: Embedding) -> None:
        if self.size <= 0:
            return
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


process_lru = _ProcessLRU(settings.LABELHUB_EMBEDDING_PROCESS_LRU)


def cache_key(*, image: Image, backend: SegmentationBackend) -> str:
    # The image's bytes are in the key: ids restart when a database is recreated (test runs), and a
    # Redis that outlives it must not hand one image's embedding to another.
    return f"lh:emb:{backend.model_name}:{backend.checkpoint_sha256[:16]}:{image.id}:{image.sha256[:16]}"


def _persistent(backend: SegmentationBackend) -> bool:
    # A classical "embedding" is the image itself: storage already holds it.
    return backend.checkpoint_sha256 != "none"


def embedding_lookup(*, image: Image, backend: SegmentationBackend) -> tuple[Embedding | None, str]:
    """The cached embedding and the tier it came from ("process", "redis", "storage"), or (None, "")."""
    from workers.sam import Embedding, EmbeddingMismatchError

    key = cache_key(image=image, backend=backend)
    hit = process_lru.get(key)
    if hit is not None:
        return hit, "process"
    blob = cache.get(key)
    tier = "redis"
    if blob is None and _persistent(backend):
        row = ImageEmbedding.objects.filter(
            image=image, model_name=backend.model_name, checkpoint_sha256=backend.checkpoint_sha256
        ).first()
        if row is not None:
            try:
                with row.file.open("rb") as fh:
                    blob = fh.read()
                tier = "storage"
            except OSError:
                log.warning("embedding file of image %s is missing; recomputing", image.id)
    if blob is None:
        return None, ""
    try:
        embedding = Embedding.from_bytes(blob)
    except EmbeddingMismatchError:
        log.warning("cached embedding of image %s is corrupt; recomputing", image.id)
        return None, ""
    if tier == "storage":
        cache.set(key, blob, timeout=settings.LABELHUB_EMBEDDING_CACHE_SECONDS)
    process_lru.put(key, embedding)
    return embedding, tier


def embedding_store(*, image: Image, backend: SegmentationBackend, embedding: Embedding) -> None:
    """Put `embedding` in every tier. A row whose file went missing gets the new file (repaired)."""
    key = cache_key(image=image, backend=backend)
    blob = embedding.to_bytes()
    cache.set(key, blob, timeout=settings.LABELHUB_EMBEDDING_CACHE_SECONDS)
    process_lru.put(key, embedding)
    if not _persistent(backend):
        return
    identity = {
        "image": image,
        "model_name": backend.model_name,
        "checkpoint_sha256": backend.checkpoint_sha256,
    }
    with transaction.atomic():
        row = ImageEmbedding.objects.select_for_update().filter(**identity).first()
        if row is not None:
            if row.file and row.file.storage.exists(row.file.name):
                return  # another worker stored it first; keep theirs
            log.warning("repairing the missing embedding file of image %s", image.id)
            row.file.save("embedding", ContentFile(blob), save=False)
            row.nbytes = len(blob)
            row.save(update_fields=["file", "nbytes"])
            return
    row = ImageEmbedding(**identity, nbytes=len(blob))
    row.file.save("embedding", ContentFile(blob), save=False)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # another worker stored it first; keep theirs
        row.file.storage.delete(row.file.name)


@contextmanager
def _computing(*, images: list[Image], backend: SegmentationBackend) -> Iterator[None]:
    """Hold the per-image-and-model compute lock of `images` (PostgreSQL session advisory locks, taken
    in id order so two batches never deadlock): a second process asking for the same embedding waits,
    then finds it stored, instead of running the encoder again. Without PostgreSQL (benchmarks on
    SQLite), a process-wide lock does the same for threads."""
    if connection.vendor != "postgresql":
        with _LOCAL_COMPUTE:
            yield
        return
    keys = sorted(f"lh:emb:{backend.model_name}:{backend.checkpoint_sha256}:{i.id}" for i in images)
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for key in reversed(keys):
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


_LOCAL_COMPUTE = threading.Lock()


def embeddings_ensure(
    *, images: list[Image], backend: SegmentationBackend, pixels: dict[int, object] | None = None
) -> dict[int, tuple[Embedding, str]]:
    """Embeddings for `images`: cached ones looked up, the rest computed in encoder batches of
    LABELHUB_SAM_BATCH_SIZE and stored. Returns {image_id: (embedding, tier or "computed")}."""
    found: dict[int, tuple[Embedding, str]] = {}
    missing: list[Image] = []
    for image in images:
        embedding, tier = embedding_lookup(image=image, backend=backend)
        if embedding is None:
            missing.append(image)
        else:
            found[image.id] = (embedding, tier)
    batch = max(1, settings.LABELHUB_SAM_BATCH_SIZE)
    for start in range(0, len(missing), batch):
        chunk = missing[start : start + batch]
        with _computing(images=chunk, backend=backend):
            todo = []
            for image in chunk:  # computed by another worker while this one waited for the lock?
                embedding, tier = embedding_lookup(image=image, backend=backend)
                if embedding is None:
                    todo.append(image)
                else:
                    found[image.id] = (embedding, tier)
            if not todo:
                continue
            arrays = [pixels[i.id] if pixels and i.id in pixels else image_pixels(i) for i in todo]
            for image, embedding in zip(todo, backend.embed(arrays), strict=True):
                embedding_store(image=image, backend=backend, embedding=embedding)
                found[image.id] = (embedding, "computed")
    return found


def window_embedding(
    *, image: Image, window: dict, backend: SegmentationBackend
) -> tuple[Embedding, str, float]:
    """The embedding of a view window of a gigapixel image (read from its pyramid with its long side at
    most LABELHUB_PYRAMID_WINDOW_MAX_SIDE), cached per image, window and model in the process LRU and
    Redis (not in storage: windows are many and cheap to read again). Returns (embedding, tier, scale),
    scale in full-resolution pixels per window pixel."""
    from labelhub.images.pyramids import pyramid_reader
    from workers.sam import Embedding, EmbeddingMismatchError

    side = settings.LABELHUB_PYRAMID_WINDOW_MAX_SIDE
    x, y, w, h = window["x"], window["y"], window["width"], window["height"]
    scale = w / max(1, round(w / max(1.0, max(w, h) / side)))
    key = f"{cache_key(image=image, backend=backend)}:w{x},{y},{w},{h},{side}"
    hit = process_lru.get(key)
    if hit is not None:
        return hit, "process", scale
    blob = cache.get(key)
    if blob is not None:
        try:
            embedding = Embedding.from_bytes(blob)
            process_lru.put(key, embedding)
            return embedding, "redis", scale
        except EmbeddingMismatchError:
            log.warning("cached window embedding of image %s is corrupt; recomputing", image.id)
    pixels, scale = pyramid_reader(image).window(x, y, w, h, max_side=side)
    embedding = backend.embed([pixels])[0]
    cache.set(key, embedding.to_bytes(), timeout=settings.LABELHUB_EMBEDDING_CACHE_SECONDS)
    process_lru.put(key, embedding)
    return embedding, "computed", scale
