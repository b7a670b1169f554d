"""Export formats, one module each, registered by name with `@register` (see base.py)."""

from __future__ import annotations

from . import coco, coco_panoptic, cvat, label_studio, labelhub_json, masks, voc, yolo  # noqa: F401 - registers the formats
from .base import FORMATS, ExportFormat, Record, register

__all__ = ["FORMATS", "ExportFormat", "Record", "register"]
