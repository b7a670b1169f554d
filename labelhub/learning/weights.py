"""A project model's device and its loaded weights (one version per process): what promotion and
pre-labels run the model with.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

from labelhub.core.errors import DomainError

from .models import ModelVersion


def _device() -> str:
    if settings.LABELHUB_TRAIN_DEVICE:
        return settings.LABELHUB_TRAIN_DEVICE
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_MODELS: dict[int, tuple[Any, Any]] = {}


def _load(version: ModelVersion):
    """The version's network in eval mode (cached per process: versions never change)."""
    from workers.train import load_model

    if version.id not in _MODELS:
        with version.weights.open("rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != version.weights_sha256:
            raise DomainError(f"The weights of {version.prediction_model_name} do not match their SHA-256.")
        _MODELS.clear()  # one model per process is enough for a queue worker
        _MODELS[version.id] = load_model(data, device=_device())
    return _MODELS[version.id]
