"""Model services of a project (Label Studio ML backends): register, check, pre-label; and the signed
image URLs the services fetch."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import ALL_ROLES
from labelhub.core.idempotency import idempotent
from labelhub.projects.selectors import project_get

from . import model_services
from .models import ModelService, RectangleMode, ServiceAuth, ServiceUse


class ModelServiceOut(serializers.ModelSerializer):
    has_credential = serializers.SerializerMethodField()

    class Meta:
        model = ModelService
        fields = [
            "id",
            "project",
            "name",
            "url",
            "auth",
            "has_credential",
            "timeout_seconds",
            "uses",
            "rectangles",
            "healthy",
            "health_message",
            "model_version",
            "checked_at",
            "failures_in_row",
            "paused",
            "paused_reason",
            "created_at",
        ]

    def get_has_credential(self, obj) -> bool:
        return bool(obj.credential)


class ModelServiceIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=1000, help_text="The backend's base URL, e.g. http://sam2:9090.")
    auth = serializers.ChoiceField(choices=ServiceAuth.values, required=False)
    credential = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="Token, or username:password (basic)."
    )
    timeout_seconds = serializers.FloatField(required=False)
    uses = serializers.ListField(child=serializers.ChoiceField(choices=ServiceUse.values), required=False)
    rectangles = serializers.ChoiceField(choices=RectangleMode.values, required=False)
    paused = serializers.BooleanField(required=False, help_text="false resumes a paused service.")


class PredictIn(serializers.Serializer):
    image_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Default: every image of the project."
    )


class QueuedBatchesOut(serializers.Serializer):
    queued = serializers.IntegerField(help_text="Batches queued.")


def _project(request, project_pk: int, *, manage: bool):
    roles = MANAGING_ROLES if manage else ALL_ROLES
    return project_get(user=request.user, project_id=project_pk, roles=roles, action="manage model services")


class ProjectModelServicesView(APIView):
    @extend_schema(responses=ModelServiceOut(many=True))
    def get(self, request, project_pk: int):
        """The project's model services (credentials are never shown)."""
        project = _project(request, project_pk, manage=False)
        return Response(ModelServiceOut(project.model_services.all(), many=True).data)

    @extend_schema(request=ModelServiceIn, responses={201: ModelServiceOut})
    @idempotent
    def post(self, request, project_pk: int):
        """Register a Label Studio ML backend on the project (owners and managers)."""
        project = _project(request, project_pk, manage=True)
        data = ModelServiceIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = {k: v for k, v in data.validated_data.items() if k != "paused"}
        service = model_services.service_create(project=project, **values)
        return Response(ModelServiceOut(service).data, status=status.HTTP_201_CREATED)


class ModelServiceView(APIView):
    @extend_schema(responses=ModelServiceOut)
    def get(self, request, project_pk: int, service_pk: int):
        project = _project(request, project_pk, manage=False)
        return Response(
            ModelServiceOut(model_services.service_get(project=project, service_id=service_pk)).data
        )

    @extend_schema(request=ModelServiceIn, responses=ModelServiceOut)
    def patch(self, request, project_pk: int, service_pk: int):
        """Change a service; `paused: false` resumes it."""
        project = _project(request, project_pk, manage=True)
        service = model_services.service_get(project=project, service_id=service_pk)
        data = ModelServiceIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            ModelServiceOut(model_services.service_update(service=service, **data.validated_data)).data
        )

    @extend_schema(responses={204: None})
    def delete(self, request, project_pk: int, service_pk: int):
        project = _project(request, project_pk, manage=True)
        model_services.service_get(project=project, service_id=service_pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelServiceCheckView(APIView):
    @extend_schema(request=None, responses=ModelServiceOut)
    def post(self, request, project_pk: int, service_pk: int):
        """Test the service now: GET /health, then POST /setup with the project's labelling config;
        `healthy`, `health_message` and `model_version` say what came back."""
        project = _project(request, project_pk, manage=True)
        service = model_services.service_get(project=project, service_id=service_pk)
        return Response(ModelServiceOut(model_services.service_check(service=service)).data)


class ModelServicePredictView(APIView):
    @extend_schema(request=PredictIn, responses={202: QueuedBatchesOut})
    @idempotent
    def post(self, request, project_pk: int, service_pk: int):
        """Queue pre-labels of images (default: all the project's) by this service, in batches."""
        project = _project(request, project_pk, manage=True)
        service = model_services.service_get(project=project, service_id=service_pk)
        data = PredictIn(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data.get("image_ids")
        known = project.images.filter(id__in=ids) if ids is not None else project.images.all()
        queued = model_services.service_predict_enqueue(
            service=service, image_ids=sorted(known.values_list("id", flat=True))
        )
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class ModelServiceConfigView(APIView):
    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.STR})
    def get(self, request, project_pk: int):
        """The project's Label Studio labelling config (what /setup sends; Label Studio accepts it)."""
        from django.http import HttpResponse

        project = _project(request, project_pk, manage=False)
        return HttpResponse(model_services.label_config_of(project), content_type="application/xml")


class ServiceImageView(APIView):
    """An image's bytes for a model service: the signed, expiring URL is the credential."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, auth=[])
    def get(self, request, token: str):
        from labelhub.images.api import IMAGE_MEDIA_TYPES

        image = model_services.image_from_token(token)
        media = IMAGE_MEDIA_TYPES.get(image.format, "application/octet-stream")
        return FileResponse(image.file.open("rb"), content_type=media)
