"""Projects: CRUD and counts."""

from __future__ import annotations

from django.db.models import Count, F
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labelhub.accounts.models import MANAGING_ROLES, Organization, Role
from labelhub.accounts.selectors import organization_ids_for, role_require
from labelhub.core.errors import DomainError

from . import services
from .models import Project, Simplifier


class StageSerializer(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    sample_rate = serializers.FloatField(required=False)
    reject_to = serializers.CharField(required=False, allow_null=True)


class LabelClassSerializer(serializers.Serializer):
    name = serializers.CharField()
    color = serializers.CharField(required=False)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=["polygon", "mask"]), required=False)


class ProjectOut(serializers.ModelSerializer):
    label_schema = LabelClassSerializer(many=True)
    pipeline = StageSerializer(many=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "organization",
            "name",
            "description",
            "label_schema",
            "pipeline",
            "polygon_simplifier",
            "polygon_min_iou",
            "polygon_max_distance",
            "created_at",
            "updated_at",
        ]


class ProjectIn(serializers.Serializer):
    """Input for create (organization and name required) and update (any subset)."""

    organization = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    label_schema = serializers.JSONField(required=False)
    pipeline = serializers.JSONField(required=False)
    polygon_simplifier = serializers.ChoiceField(choices=Simplifier.values, required=False)
    polygon_min_iou = serializers.FloatField(required=False)
    polygon_max_distance = serializers.FloatField(required=False, allow_null=True)


class CountsOut(serializers.Serializer):
    images = serializers.IntegerField()
    tasks = serializers.IntegerField()
    by_stage = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    predictions = serializers.DictField(child=serializers.IntegerField())


class ProjectFilter(filters.FilterSet):
    class Meta:
        model = Project
        fields = ["organization"]


class ProjectViewSet(viewsets.ModelViewSet):
    queryset = Project.objects.none()
    serializer_class = ProjectOut
    lookup_value_regex = r"\d+"
    filterset_class = ProjectFilter
    http_method_names = ["get", "post", "patch", "delete"]
    ordering_fields = ["id", "name", "created_at"]

    def get_queryset(self):
        return Project.objects.filter(organization_id__in=organization_ids_for(self.request.user))

    @extend_schema(request=ProjectIn, responses={201: ProjectOut})
    def create(self, request, *args, **kwargs):
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        org_id = values.pop("organization", None)
        if org_id is None:
            raise DomainError("organization is required.", field="organization", code="required")
        role_require(
            user=request.user, organization_id=org_id, roles=MANAGING_ROLES, action="create projects"
        )
        project = services.project_create(
            organization=Organization.objects.get(pk=org_id), user=request.user, **values
        )
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProjectIn, responses=ProjectOut)
    def partial_update(self, request, *args, **kwargs):
        project = self.get_object()
        role_require(
            user=request.user,
            organization_id=project.organization_id,
            roles=MANAGING_ROLES,
            action="edit projects",
        )
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "organization" in values:
            raise DomainError("A project cannot move to another organization.", field="organization")
        project = services.project_update(project=project, **values)
        return Response(ProjectOut(project).data)

    def destroy(self, request, *args, **kwargs):
        services.project_delete(project=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=CountsOut)
    @action(detail=True, methods=["get"])
    def counts(self, request, pk=None):
        """Images, tasks per stage and status, and predictions per status."""
        project = self.get_object()
        by_stage: dict[str, dict[str, int]] = {name: {} for name in project.stage_names}
        for row in project.tasks.values("stage", "status").annotate(n=Count("id")):
            by_stage.setdefault(row["stage"], {})[row["status"]] = row["n"]
        predictions = {
            row["status"]: row["n"]
            # through the reverse relation image -> predictions: projects imports no app above it
            for row in project.images.filter(predictions__isnull=False)
            .values(status=F("predictions__status"))
            .annotate(n=Count("predictions__id"))
        }
        return Response(
            {
                "images": project.images.count(),
                "tasks": project.tasks.count(),
                "by_stage": by_stage,
                "predictions": predictions,
            }
        )
