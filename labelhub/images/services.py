"""Writes for images: upload (many files per request), import from a server-side folder, deletion.

A request is all or nothing: every file is checked before any is stored, and a failure while storing
removes what this request already wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent, ImageDeleting, ImagesAdded, announce
from labelhub.core.files import files_delete_on_commit
from labelhub.core.queue import enqueue_on_commit
from labelhub.projects.models import Project

from .decoding import DecodedImage, image_inspect, thumbnail_jpeg
from .models import Image, PyramidStatus
from .pyramids import PyramidInfo, pyramid_probe

IMPORT_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class IncomingFile:
    """An uploaded file (bytes in hand) or a server-side file (read when needed, never all at once)."""

    name: str
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


@dataclass
class UploadResult:
    created: list[Image]
    duplicates: list[Image]


def _inspect_all(
    files: list[IncomingFile], field: str, max_files: int, *, pyramids: bool = False
) -> list[DecodedImage | PyramidInfo]:
    if not files:
        raise DomainError("Send at least one image.", field=field, code="required")
    if len(files) > max_files:
        raise DomainError(f"At most {max_files} files per request.", field=field, code="too_many_files")
    decoded: list[DecodedImage | PyramidInfo] = []
    for index, incoming in enumerate(files):
        try:
            if pyramids and incoming.path is not None:
                # A server-side file is looked at from its size and header first: a gigapixel image is
                # never read whole (see pyramids.py); an ordinary one takes the checks below.
                info = pyramid_probe(
                    incoming.path,
                    max_image_pixels=settings.LABELHUB_MAX_IMAGE_PIXELS,
                    max_image_bytes=settings.LABELHUB_MAX_UPLOAD_BYTES,
                    max_pixels=settings.LABELHUB_MAX_PYRAMID_PIXELS,
                    max_bytes=settings.LABELHUB_MAX_PYRAMID_BYTES,
                    field=f"{field}[{index}]",
                )
                if info is not None:
                    decoded.append(info)
                    continue
            decoded.append(
                image_inspect(
                    incoming.read(),
                    max_pixels=settings.LABELHUB_MAX_IMAGE_PIXELS,
                    max_bytes=settings.LABELHUB_MAX_UPLOAD_BYTES,
                    field=f"{field}[{index}]",
                )
            )
        except DomainError as exc:
            exc.message = f"{incoming.name}: {exc.message}"
            raise
    return decoded


def images_add(
    *,
    project: Project,
    files: list[IncomingFile],
    user=None,
    field: str = "files",
    max_files: int | None = None,
    presegment: bool = True,
    pyramids: bool = False,
) -> UploadResult:
    """Store images in a project, one task each (the "images.added" event); the same bytes twice in a
    project are one image. With `presegment`, each new image is queued for pre-segmentation once the
    transaction commits."""
    decoded = _inspect_all(
        files, field, max_files or settings.LABELHUB_MAX_FILES_PER_UPLOAD, pyramids=pyramids
    )
    stored: list[Image] = []
    try:
        with transaction.atomic():
            created: list[Image] = []
            duplicates: list[Image] = []
            seen: dict[str, Image] = {}
            for incoming, info in zip(files, decoded, strict=True):
                existing = (
                    seen.get(info.sha256) or Image.objects.filter(project=project, sha256=info.sha256).first()
                )
                if existing is not None:
                    duplicates.append(existing)
                    continue
                image = Image(
                    project=project,
                    original_name=Path(incoming.name).name[:255] or "image",
                    width=info.width,
                    height=info.height,
                    format=info.format,
                    sha256=info.sha256,
                    size_bytes=info.size_bytes,
                    uploaded_by=user,
                )
                if isinstance(info, PyramidInfo):
                    _pyramid_store(image, incoming.path, info)
                    stored.append(image)
                else:
                    data = incoming.read()
                    image.file.save("upload", ContentFile(data), save=False)
                    stored.append(image)
                    image.thumbnail.save("thumb.jpg", ContentFile(thumbnail_jpeg(data)), save=False)
                image.save()
                if image.pyramid_status == PyramidStatus.PENDING:
                    enqueue_on_commit("labelhub.images.build_pyramid", image.pk)
                seen[info.sha256] = image
                created.append(image)
            if created:
                # labeling gives each image its task (in this transaction); predictions queues the
                # pre-segmentation once it commits.
                announce(
                    ImagesAdded(
                        image_ids=[i.id for i in created],
                        presegment=presegment,
                        prelabel=project.prelabel,
                    ),
                    organization_id=project.organization_id,
                    project_id=project.pk,
                    context={"images": created},
                )
    except BaseException:
        for image in stored:  # the rows rolled back; remove the files this request wrote
            for f in (image.file, image.thumbnail, image.pyramid):
                if f.name:
                    f.storage.delete(f.name)
        raise
    return UploadResult(created=created, duplicates=duplicates)


def import_path_resolve(path: str, *, field: str = "path") -> Path:
    """Resolve a server-side folder, refusing anything outside LABELHUB_IMPORT_ROOTS (symlinks resolved)."""
    if not isinstance(path, str) or not path:
        raise DomainError("path names a folder on the server.", field=field, code="required")
    roots = settings.LABELHUB_IMPORT_ROOTS
    if not roots:
        raise DomainError(
            "Server-side import is off: no LABELHUB_IMPORT_ROOTS configured.",
            field=field,
            code="import_disabled",
        )
    if "\x00" in path:
        raise DomainError("path contains a NUL byte.", field=field)
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise DomainError(
            "path is outside the configured import roots.", field=field, code="path_outside_import_roots"
        )
    if not resolved.is_dir():
        raise DomainError("path is not a folder on the server.", field=field, code="not_a_folder")
    return resolved


def images_import_folder(*, project: Project, path: str, user=None, recursive: bool = False) -> UploadResult:
    """Import every image file of a server-side folder inside LABELHUB_IMPORT_ROOTS, all or nothing."""
    folder = import_path_resolve(path)
    entries = folder.rglob("*") if recursive else folder.iterdir()
    files = []
    for entry in sorted(entries):
        if entry.suffix.lower() not in IMPORT_SUFFIXES or not entry.is_file():
            continue
        # A link that leads out of the import roots is skipped, like any other file outside them.
        real = entry.resolve()
        if not any(real.is_relative_to(root) for root in settings.LABELHUB_IMPORT_ROOTS):
            continue
        files.append(IncomingFile(name=str(entry.relative_to(folder)), path=real))
    if not files:
        raise DomainError("The folder holds no image files.", field="path", code="empty_folder")
    return images_add(
        project=project,
        files=files,
        user=user,
        field="path",
        max_files=settings.LABELHUB_MAX_IMPORT_FILES,
        pyramids=True,
    )


def _pyramid_store(image: Image, path: Path, info: PyramidInfo) -> None:
    """Store a gigapixel image's file (streamed, never read whole) and its thumbnail (from its smallest
    level, or libvips' shrink-on-load). A source that is already a pyramid serves its own levels; any
    other gets one built on the cpu queue (`pyramid_status` pending until then)."""
    import pyvips
    from django.core.files import File

    with path.open("rb") as fh:
        image.file.save("upload", File(fh), save=False)
    if info.levels:
        image.pyramid.name = image.file.name
        image.pyramid_status = PyramidStatus.READY
        image.pyramid_progress = 1.0
        thumb = pyvips.Image.thumbnail(f"{path}[page={info.levels[-1].page}]", 256)
    else:
        image.pyramid_status = PyramidStatus.PENDING
        thumb = pyvips.Image.thumbnail(str(path), 256)
    if thumb.hasalpha():
        thumb = thumb.flatten(background=[255] * (thumb.bands - 1))
    image.thumbnail.save("thumb.jpg", ContentFile(thumb.jpegsave_buffer(Q=80)), save=False)


def pyramid_build_run(*, image_id: int) -> Image | None:
    """Build the pending pyramid of an image (the cpu queue's job): libvips streams the stored file
    into a tiled BigTIFF, `pyramid_progress` updated as it goes; a failure is recorded on the row."""
    import tempfile

    from django.core.files import File

    from labelhub.core.downloads import _key, is_s3

    from .pyramids import pyramid_build

    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.pyramid_status != PyramidStatus.PENDING:
        return image
    storage = image.file.storage
    last = [0]

    def progress(percent: int) -> None:
        if percent >= last[0] + 5:
            last[0] = percent
            Image.objects.filter(pk=image.pk).update(pyramid_progress=min(percent, 99) / 100)

    with tempfile.TemporaryDirectory(prefix="lh-pyramid-") as tmp:
        out = Path(tmp) / "pyramid.tif"
        try:
            if is_s3(storage):
                source = Path(tmp) / f"source.{image.file.name.rsplit('.', 1)[-1]}"
                storage.bucket.download_file(_key(storage, image.file.name), str(source))
            else:
                source = Path(storage.path(image.file.name))
            pyramid_build(source, out, tile=settings.LABELHUB_PYRAMID_TILE, progress=progress)
            with out.open("rb") as fh:
                image.pyramid.save("pyramid.tif", File(fh), save=False)
        except Exception as exc:  # libvips raises pyvips.Error on a damaged source
            Image.objects.filter(pk=image.pk).update(
                pyramid_status=PyramidStatus.FAILED, pyramid_error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            image.refresh_from_db()
            return image
    image.pyramid_status = PyramidStatus.READY
    image.pyramid_progress = 1.0
    image.save(update_fields=["pyramid", "pyramid_status", "pyramid_progress"])
    return image


@transaction.atomic
def image_delete(*, image: Image, user) -> None:
    """Delete an image with its task, annotations and predictions (managers and owners only). The apps
    above hear of it first, in this transaction ("image.deleting": an export keeps its own copy of the
    image's item); the stored files go once the deletion commits."""
    role_require(
        user=user, organization_id=image.project.organization_id, roles=MANAGING_ROLES, action="delete images"
    )
    announce(
        ImageDeleting(image=image.pk),
        organization_id=image.project.organization_id,
        project_id=image.project_id,
        context={"image": image},
    )
    files_delete_on_commit(
        image.file.storage, list({image.file.name, image.thumbnail.name, image.pyramid.name})
    )
    image.delete()


def on_project_deleting(event: DomainEvent) -> None:
    """Subscriber of "project.deleting" (in its transaction): the project's image files go on commit."""
    names = Image.objects.filter(project=event.context["project"]).values_list("file", "thumbnail", "pyramid")
    storage = Image._meta.get_field("file").storage
    files_delete_on_commit(storage, list({name for row in names.iterator() for name in row}))
