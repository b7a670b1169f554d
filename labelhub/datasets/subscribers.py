"""The datasets app's subscribers of deletions below it: exports keep what they hold when an image or a
project goes."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File

from labelhub.core.events import DomainEvent
from labelhub.core.files import files_delete_on_commit
from labelhub.images.models import Image

from .models import Export, ExportItem, ExportStatus, Import


def on_image_deleting(event: DomainEvent) -> None:
    """Subscriber of "image.deleting" (in the deleting transaction): every export item of the image
    takes its own copy of what the export needs, so an existing export never changes. An archive not
    written yet that includes images also keeps a copy of the image file until it is written."""
    image = event.context["image"]
    items = list(
        ExportItem.objects.filter(image_id=image.pk, detached=False).select_related("export", "revision")
    )
    storage = Image._meta.get_field("file").storage
    for item in items:
        item.detached = True
        item.original_name, item.width, item.height = image.original_name, image.width, image.height
        item.sha256 = image.sha256
        item.regions = item.revision.regions if item.revision_id else []
        item.stage = item.revision.stage if item.revision_id else ""
        if item.export.include_images and item.export.status != ExportStatus.DONE and image.file.name:
            suffix = Path(image.file.name).suffix
            with storage.open(image.file.name, "rb") as fh:
                item.image_file = storage.save(
                    f"projects/{image.project_id}/exports/held/{item.export_id}-{image.pk}{suffix}", File(fh)
                )
    ExportItem.objects.bulk_update(
        items, ["detached", "original_name", "width", "height", "sha256", "regions", "stage", "image_file"]
    )


def on_project_deleting(event: DomainEvent) -> None:
    """Subscriber of "project.deleting" (in its transaction): export archives, held image copies and
    waiting import uploads go once the deletion commits."""
    project = event.context["project"]
    storage = Image._meta.get_field("file").storage
    names = list(Export.objects.filter(project=project).values_list("file", flat=True))
    names += (
        ExportItem.objects.filter(export__project=project)
        .exclude(image_file="")
        .values_list("image_file", flat=True)
    )
    names += Import.objects.filter(project=project).values_list("file", flat=True)
    files_delete_on_commit(storage, names)
