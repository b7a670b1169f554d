"""Label Studio's ML backend protocol, the pure parts: the labelling config a backend is set up with,
the task JSON it predicts on, its results converted to pixel geometry and back. No Django, no I/O."""

from __future__ import annotations

from .convert import (
    CONTROL_NAMES,
    Limits,
    ResultError,
    box_result,
    click_context,
    label_config,
    prediction_shapes,
    region_results,
)

__all__ = [
    "CONTROL_NAMES",
    "Limits",
    "ResultError",
    "box_result",
    "click_context",
    "label_config",
    "prediction_shapes",
    "region_results",
]
