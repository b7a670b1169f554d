"""Dataset formats, one module each holding both directions: the export writer registered by name with
`@register` and, where the format can be read, the import parser registered with `@register_import`
(see base.py)."""

from __future__ import annotations

from . import coco, coco_panoptic, cvat, label_studio, labelhub_json, masks, video, voc, yolo  # noqa: F401 - registers the formats
from .base import FORMATS, IMPORT_FORMATS, ExportFormat, ImportFormat, Record, register, register_import

__all__ = [
    "FORMATS",
    "IMPORT_FORMATS",
    "ExportFormat",
    "ImportFormat",
    "Record",
    "register",
    "register_import",
]
