"""Images: upload (multipart, many files), import from a server folder, list, read, download."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.core.api import IdFilterSet
from labelhub.core.downloads import stored_file_response
from labelhub.core.errors import Conflict, DomainError, NotFound
from labelhub.core.idempotency import idempotent
from labelhub.core.limits import FORM_OVERHEAD_BYTES, request_size_limit
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_get, project_ids_visible

from . import services
from .models import Image


class ImageOut(serializers.ModelSerializer):
    task = serializers.IntegerField(source="task.id", read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "project",
            "task",
            "original_name",
            "width",
            "height",
            "format",
            "sha256",
            "size_bytes",
            "pyramid_status",
            "pyramid_progress",
            "pyramid_error",
            "created_at",
        ]


class UploadIn(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), help_text="One or more image files.")


class UploadOut(serializers.Serializer):
    created = ImageOut(many=True)
    duplicates = ImageOut(many=True)


class ImportIn(serializers.Serializer):
    path = serializers.CharField(help_text="A folder on the server, inside LABELHUB_IMPORT_ROOTS.")
    recursive = serializers.BooleanField(default=False)


# what the file endpoint sends for each accepted format ("image/jpg" and "image/tif" are not media types)
IMAGE_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}


def project_for_write(request, project_pk) -> Project:
    return project_get(user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="add images")


def _result(result: services.UploadResult) -> Response:
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response(UploadOut({"created": result.created, "duplicates": result.duplicates}).data, status=code)


class ProjectImageUploadView(APIView):
    parser_classes = [parsers.MultiPartParser]
    throttle_scope = "upload"

    def initial(self, request, *args, **kwargs):
        # before authentication: a session's CSRF check would parse the body
        per_file = services.settings.LABELHUB_MAX_UPLOAD_BYTES
        request_size_limit(
            request,
            max_body=per_file * services.settings.LABELHUB_MAX_FILES_PER_UPLOAD + FORM_OVERHEAD_BYTES,
            max_file=per_file,
            field="files[]",
        )
        super().initial(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": UploadIn}, responses={201: UploadOut, 200: UploadOut})
    @idempotent
    def post(self, request, project_pk):
        """Upload images (form field `files`, repeated). All or nothing; duplicates are reported, not stored twice."""
        project = project_for_write(request, project_pk)
        uploads = request.FILES.getlist("files")
        if not uploads:
            raise DomainError("Send images in the multipart field 'files'.", field="files", code="required")
        # Each file's size was bounded while it streamed in (request_size_limit in `initial`); the
        # service checks it again as it does for every source of images (image_inspect).
        files = [services.IncomingFile(name=upload.name or "image", data=upload.read()) for upload in uploads]
        return _result(services.images_add(project=project, files=files, user=request.user))


class ProjectImageImportView(APIView):
    throttle_scope = "import"

    @extend_schema(request=ImportIn, responses={201: UploadOut, 200: UploadOut})
    @idempotent
    def post(self, request, project_pk):
        """Import the images of a server-side folder (inside LABELHUB_IMPORT_ROOTS). All or nothing."""
        project = project_for_write(request, project_pk)
        data = ImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        return _result(
            services.images_import_folder(project=project, user=request.user, **data.validated_data)
        )


class ImageFilter(IdFilterSet):
    class Meta:
        model = Image
        fields = ["project", "format", "sha256"]


class ImageViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    queryset = Image.objects.none()
    serializer_class = ImageOut
    filterset_class = ImageFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ["id", "created_at", "original_name"]

    def get_queryset(self):
        return Image.objects.filter(project_id__in=project_ids_visible(self.request.user)).select_related(
            "task", "project"
        )

    def destroy(self, request, *args, **kwargs):
        services.image_delete(image=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            (200, media): OpenApiTypes.BINARY
            for media in (
                "image/jpeg",
                "image/png",
                "image/bmp",
                "image/tiff",
                "image/webp",
                "application/octet-stream",
            )
        }
        | {302: None}
    )
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        """The image's bytes as uploaded. On S3 storage: 302 to a short-lived presigned URL (or, with
        LABELHUB_S3_DOWNLOAD=proxy, the bytes with the client's Range forwarded to S3)."""
        image = self.get_object()
        ext = image.file.name.rsplit(".", 1)[-1]
        media = IMAGE_MEDIA_TYPES.get(image.format, "application/octet-stream")
        return stored_file_response(
            file=image.file,
            filename=f"{image.sha256}.{ext}",
            content_type=media,
            etag=image.sha256,
            range_header=request.headers.get("Range"),
            if_range=request.headers.get("If-Range"),
            disposition="inline",
        )

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 302: None})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        """A JPEG at most 256 px on a side, made at upload (the task list's thumbnails); the image itself
        when it has none (images stored before thumbnails existed)."""
        image = self.get_object()
        if not image.thumbnail.name:
            return self.file(request, pk)
        response = stored_file_response(
            file=image.thumbnail,
            filename=f"{image.sha256}-thumb.jpg",
            content_type="image/jpeg",
            etag=f"{image.sha256}-thumb",
            disposition="inline",
        )
        if response.status_code == 200:
            response["Cache-Control"] = "private, max-age=86400"
        return response


def _visible_image(request, image_pk: int) -> Image:
    image = Image.objects.filter(pk=image_pk, project_id__in=project_ids_visible(request.user)).first()
    if image is None:
        raise NotFound("No such image.")
    return image


def _ready_pyramid(image: Image) -> None:
    if not image.is_pyramid:
        raise Conflict("This image has no tile pyramid: use its file.", code="not_a_pyramid")
    if image.pyramid_status != "ready":
        raise Conflict(
            f"The image's tile pyramid is {image.pyramid_status or 'missing'} "
            f"({round(image.pyramid_progress * 100)}%).",
            code="pyramid_not_ready",
        )


TILE_CACHE = "private, max-age=31536000, immutable"  # a tile's URL names its image's bytes (ETag)


def _not_modified(request, etag: str) -> HttpResponse | None:
    sent = request.headers.get("If-None-Match", "")
    if etag in {tag.strip() for tag in sent.split(",")} or sent.strip() == "*":
        response = HttpResponse(status=304)
        response["ETag"] = etag
        response["Cache-Control"] = TILE_CACHE
        return response
    return None


class ImageTilesDescriptorView(APIView):
    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.STR})
    def get(self, request, image_pk: int):
        """The Deep Zoom (DZI) descriptor of a gigapixel image's tile pyramid: size and tile size; tiles
        at `tiles/{level}/{col}_{row}.jpg` (level N = ceil(log2(max side)) is full resolution, each level
        below half the one above). 409 `pyramid_not_ready` while the pyramid is built."""
        from .pyramids import dzi_xml

        image = _visible_image(request, image_pk)
        _ready_pyramid(image)
        etag = f'"{image.sha256[:24]}-dzi-{settings.LABELHUB_PYRAMID_TILE}"'
        cached = _not_modified(request, etag)
        if cached is not None:
            return cached
        body = dzi_xml(width=image.width, height=image.height, tile=settings.LABELHUB_PYRAMID_TILE)
        response = HttpResponse(body, content_type="application/xml")
        response["ETag"] = etag
        response["Cache-Control"] = TILE_CACHE
        return response


class ImageTileView(APIView):
    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 304: None})
    def get(self, request, image_pk: int, level: int, col: int, row: int):
        """One Deep Zoom tile (JPEG), read from the pyramid's nearest level at or above it. Cached for
        good (`ETag` from the image's SHA-256 and the tile's place; `If-None-Match` answers 304)."""
        from .pyramids import pyramid_reader

        image = _visible_image(request, image_pk)
        _ready_pyramid(image)
        tile = settings.LABELHUB_PYRAMID_TILE
        etag = f'"{image.sha256[:24]}-{tile}-{level}-{col}-{row}"'
        cached = _not_modified(request, etag)
        if cached is not None:
            return cached
        data = pyramid_reader(image).tile_jpeg(level, col, row, tile)
        if data is None:
            raise NotFound("No such tile.")
        response = HttpResponse(data, content_type="image/jpeg")
        response["ETag"] = etag
        response["Cache-Control"] = TILE_CACHE
        return response
