"""Project models: segmentation networks trained on a project's accepted labels, and the
segmentation metrics they are judged by. Imports no Django; torch is imported lazily so the
metrics load without it."""

from __future__ import annotations

from .metrics import boundary_f1, dice, iou, mean_scores, pixel_accuracy, segmentation_scores
from .training import TrainConfig, TrainResult, load_model, train_model

__all__ = [
    "TrainConfig",
    "TrainResult",
    "boundary_f1",
    "dice",
    "iou",
    "load_model",
    "mean_scores",
    "pixel_accuracy",
    "segmentation_scores",
    "train_model",
]
