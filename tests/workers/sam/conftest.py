"""Fixtures for the SAM worker tests: real vit_b architecture with seeded random weights.

The SAM image encoder always runs at 1024x1024; on the 2-core dev box one vit_b image takes
~20 s, so every fixture that encodes is session-scoped and encodes as few images as possible.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.workers.sam._helpers import grabcut_dir, load_rgb, synthetic_image


@pytest.fixture(scope="session")
def test_images() -> list[np.ndarray]:
    """Two images of different sizes/aspect: a real GrabCut image when the shared data exists
    (else a synthetic one), and a synthetic portrait image."""
    imgs = sorted((grabcut_dir() / "images").glob("*"))
    first = load_rgb(imgs[0]) if imgs else synthetic_image(240, 320, seed=1)
    return [first, synthetic_image(300, 180, seed=2)]


@pytest.fixture(scope="session")
def sam_loaded():
    import torch  # pinned in requirements.txt: imported, never skipped

    from workers.sam.registry import load_sam

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return load_sam("vit_b", None, device="cpu", seed=0)


@pytest.fixture(scope="session")
def sam_backend(sam_loaded):
    from workers.sam.predictor import SamBackend

    return SamBackend(sam_loaded, optimized=True)


@pytest.fixture(scope="session")
def classical_backend():
    from workers.sam.classical import ClassicalBackend

    return ClassicalBackend()


_EMBED_CACHE: dict[str, tuple] = {}


def _embedded(name: str, backend, test_images) -> tuple:
    if name not in _EMBED_CACHE:
        c0, i0 = backend.encoder_calls, backend.images_encoded
        embs = backend.embed(list(test_images))
        _EMBED_CACHE[name] = (backend, embs, backend.encoder_calls - c0, backend.images_encoded - i0)
    return _EMBED_CACHE[name]


@pytest.fixture(scope="session", params=["sam-vit_b-random", "classical"])
def embedded(request, test_images):
    """(backend, embeddings of test_images, encoder_calls delta, images_encoded delta).

    Both images go through ONE batched ``embed`` call."""
    fixture = "classical_backend" if request.param == "classical" else "sam_backend"
    return _embedded(request.param, request.getfixturevalue(fixture), test_images)


@pytest.fixture(scope="session")
def sam_embedded(sam_backend, test_images):
    """`embedded` for the SAM backend only."""
    return _embedded("sam-vit_b-random", sam_backend, test_images)
