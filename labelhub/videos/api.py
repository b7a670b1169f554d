"""Videos: upload (a video file or a zip of frames), list, read, one frame as JPEG."""

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
from labelhub.core.errors import DomainError
from labelhub.core.idempotency import idempotent
from labelhub.core.limits import FORM_OVERHEAD_BYTES, request_size_limit
from labelhub.projects.selectors import project_get, project_ids_visible

from . import services
from .models import Video


class VideoOut(serializers.ModelSerializer):
    fps = serializers.SerializerMethodField()
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = Video
        fields = [
            "id",
            "project",
            "original_name",
            "container",
            "codec",
            "width",
            "height",
            "fps",
            "frame_count",
            "sha256",
            "size_bytes",
            "tasks",
            "created_at",
        ]

    def get_fps(self, video: Video) -> float:
        return float(video.fps)

    def get_tasks(self, video: Video) -> list[dict]:
        """The tasks covering the video: [{id, frame_start, frame_stop}] (stop exclusive)."""
        return [
            {"id": t.id, "frame_start": t.frame_start, "frame_stop": t.frame_stop}
            for t in video.tasks.order_by("frame_start")
        ]


class VideoUploadIn(serializers.Serializer):
    file = serializers.FileField(help_text="An MP4, MOV or WebM video, or a zip of frame images.")


class ProjectVideoUploadView(APIView):
    parser_classes = [parsers.MultiPartParser]
    throttle_scope = "upload"

    def initial(self, request, *args, **kwargs):
        limit = settings.LABELHUB_VIDEO_MAX_BYTES
        request_size_limit(request, max_body=limit + FORM_OVERHEAD_BYTES, max_file=limit, field="file")
        super().initial(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": VideoUploadIn}, responses={201: VideoOut})
    @idempotent
    def post(self, request, project_pk):
        """Upload one video (form field `file`). Checked from its headers before decoding; decoded once,
        every frame stored under its number; tasks cover frame ranges with a small overlap. All or
        nothing."""
        project = project_get(
            user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="add videos"
        )
        upload = request.FILES.get("file")
        if upload is None:
            raise DomainError("Send the video in the multipart field 'file'.", field="file", code="required")
        video = services.video_add(
            project=project, name=upload.name or "video", data=upload.read(), user=request.user
        )
        return Response(VideoOut(video).data, status=status.HTTP_201_CREATED)


class VideoFilter(IdFilterSet):
    class Meta:
        model = Video
        fields = ["project"]


class VideoViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    queryset = Video.objects.none()
    serializer_class = VideoOut
    filterset_class = VideoFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return Video.objects.filter(project_id__in=project_ids_visible(self.request.user)).select_related(
            "project"
        )

    def destroy(self, request, *args, **kwargs):
        services.video_delete(video=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path=r"frames/(?P<number>\d+)")
    def frame(self, request, pk=None, number=None):
        """Frame `number` (0-based, in decode order: the numbering every part of LabelHub uses) as JPEG.
        Cacheable: a frame never changes."""
        video = self.get_object()
        data = services.frame_read(video, int(number))
        response = HttpResponse(data, content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=86400, immutable"
        return response
