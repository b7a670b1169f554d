"""A video's tracks as a dataset file (CVAT for video 1.1, YouTube-VIS, DAVIS PNGs, MOTS), and the CVAT
and YouTube-VIS ones read back into the video's tasks."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.core.errors import DomainError, NotFound
from labelhub.projects.selectors import project_ids_visible
from labelhub.videos.models import Video

from .formats.video import MEDIA_TYPES, VIDEO_FORMATS, VIDEO_IMPORT_FORMATS
from .video import video_export, video_import

EXTENSIONS = {"cvat_video": "xml", "youtube_vis": "json", "davis": "zip", "mots": "txt", "mots_png": "zip"}


def _video(request, video_pk) -> Video:
    video = (
        Video.objects.filter(pk=video_pk, project_id__in=project_ids_visible(request.user))
        .select_related("project")
        .first()
    )
    if video is None:
        raise NotFound("No such video.")
    return video


class VideoImportIn(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=sorted(VIDEO_IMPORT_FORMATS))


class VideoImportOut(serializers.Serializer):
    shapes = serializers.IntegerField()


class VideoExportView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("format_name", str, enum=sorted(VIDEO_FORMATS), required=True)],
        responses={(200, media): OpenApiTypes.BINARY for media in sorted(set(MEDIA_TYPES.values()))},
    )
    def get(self, request, video_pk):
        """The video's tracks in `format_name` (managers and owners). Not `format`: DRF reads that one as
        the response renderer."""
        video = _video(request, video_pk)
        name = request.query_params.get("format_name", "")
        if name not in VIDEO_FORMATS:
            raise DomainError(f"format_name is one of {sorted(VIDEO_FORMATS)}.", field="format_name")
        data = video_export(video=video, user=request.user, format=name)
        response = HttpResponse(data, content_type=MEDIA_TYPES[name])
        response["Content-Disposition"] = f'attachment; filename="video-{video.pk}.{EXTENSIONS[name]}"'
        return response


class VideoImportView(APIView):
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(request={"multipart/form-data": VideoImportIn}, responses=VideoImportOut)
    def post(self, request, video_pk):
        """Replace the video's tracks with a CVAT for video or YouTube-VIS file (all or nothing)."""
        video = _video(request, video_pk)
        data = VideoImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        count = video_import(
            video=video,
            user=request.user,
            format=data.validated_data["format"],
            data=data.validated_data["file"].read(),
        )
        return Response({"shapes": count})
