"""Projects: CRUD and counts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labelhub.accounts.models import MANAGING_ROLES, Role
from labelhub.core.api import IdFilterSet
from labelhub.core.errors import DomainError, NotFound
from labelhub.core.idempotency import idempotent

from . import selectors, services
from .models import Prelabel, Project, ProjectMember, QualityAction, QualityMetric, Segmentation, Simplifier
from .selectors import project_get, projects_visible


class StageSerializer(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    sample_rate = serializers.FloatField(required=False)
    reject_to = serializers.CharField(required=False, allow_null=True)


class LabelClassSerializer(serializers.Serializer):
    name = serializers.CharField()
    color = serializers.CharField(required=False)
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=["polygon", "mask"]), required=False)
    type = serializers.ChoiceField(
        choices=["thing", "stuff"], required=False, help_text="thing (default) or stuff."
    )
    hotkey = serializers.CharField(
        required=False, help_text="One letter or digit that picks this class in the app (optional)."
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data.setdefault("type", "thing")  # classes saved before there were types are things
        return data


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
            "segmentation",
            "polygon_simplifier",
            "polygon_min_iou",
            "polygon_max_distance",
            "members_download_exports",
            "prelabel",
            "retrain_every",
            "independent_reviews",
            "honeypot_rate",
            "immediate_feedback",
            "quality_metric",
            "quality_bound",
            "quality_threshold",
            "quality_action",
            "quality_send_back_below",
            "quality_send_back_limit",
            "consensus_annotators",
            "consensus_quorum",
            "consensus_min_iou",
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
    segmentation = serializers.ChoiceField(
        choices=Segmentation.values, required=False, help_text="instance (default), semantic or panoptic."
    )
    polygon_simplifier = serializers.ChoiceField(choices=Simplifier.values, required=False)
    polygon_min_iou = serializers.FloatField(required=False)
    polygon_max_distance = serializers.FloatField(required=False, allow_null=True)
    members_download_exports = serializers.BooleanField(
        required=False, help_text="Let the project's annotators and reviewers download its exports."
    )
    prelabel = serializers.ChoiceField(choices=Prelabel.values, required=False)
    retrain_every = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    independent_reviews = serializers.BooleanField(
        required=False,
        help_text="On (default): who acted on a task in one review stage never acts on it in a later one.",
    )
    honeypot_rate = serializers.FloatField(
        required=False, help_text="Share of first-stage claims that hand out a gold task (honeypot), 0-1."
    )
    immediate_feedback = serializers.BooleanField(
        required=False, help_text="Tell a labeler their honeypot's score right after submitting it."
    )
    quality_metric = serializers.ChoiceField(choices=QualityMetric.values, required=False)
    quality_bound = serializers.FloatField(
        required=False, help_text="Pass mark of a matched region's quality_metric (default 0.9)."
    )
    quality_threshold = serializers.FloatField(
        required=False, allow_null=True, help_text="Estimated accuracy below which quality_action applies."
    )
    quality_action = serializers.ChoiceField(choices=QualityAction.values, required=False)
    quality_send_back_below = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="0-1: a submit measured below this goes back to its annotator with a system comment (a "
        "honeypot's accuracy where immediate_feedback is on; a consensus merge's mean agreement); null: never.",
    )
    quality_send_back_limit = serializers.IntegerField(
        required=False, help_text="Automatic send-backs per task at most (per labeler on a honeypot), 1-10."
    )
    consensus_annotators = serializers.IntegerField(
        required=False, help_text="Annotators per task working independently (1: no consensus)."
    )
    consensus_quorum = serializers.IntegerField(
        required=False, help_text="Annotators who must agree on a region (0: a strict majority)."
    )
    consensus_min_iou = serializers.FloatField(
        required=False, help_text="IoU at which two annotators' regions are the same region."
    )


class CountsOut(serializers.Serializer):
    images = serializers.IntegerField()
    videos = serializers.IntegerField()
    tasks = serializers.IntegerField()
    by_stage = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    predictions = serializers.DictField(child=serializers.IntegerField())


class ProjectFilter(IdFilterSet):
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
        return projects_visible(user=self.request.user)

    @extend_schema(request=ProjectIn, responses={201: ProjectOut})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        org_id = values.pop("organization", None)
        if org_id is None:
            raise DomainError("organization is required.", field="organization", code="required")
        project = services.project_create(organization_id=org_id, user=request.user, **values)
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProjectIn, responses=ProjectOut)
    def partial_update(self, request, *args, **kwargs):
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=self.get_object(), user=request.user, **data.validated_data)
        return Response(ProjectOut(project).data)

    def destroy(self, request, *args, **kwargs):
        services.project_delete(project=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=CountsOut)
    @action(detail=True, methods=["get"])
    def counts(self, request, pk=None):
        """Images, tasks per stage and status, and predictions per status."""
        return Response(selectors.project_counts(project=self.get_object()))


class ProjectMemberOut(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ProjectMember
        fields = ["id", "user", "username", "created_at"]


class ProjectMemberIn(serializers.Serializer):
    user = serializers.IntegerField(help_text="Id of a member of the project's organization.")


class ProjectMemberViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Who works on a project (owners and managers manage it; annotators and reviewers see only the
    projects they are members of). `DELETE .../members/{user id}/` removes one."""

    queryset = ProjectMember.objects.none()
    serializer_class = ProjectMemberOut
    lookup_value_regex = r"\d+"

    def project(self) -> Project:
        return project_get(
            user=self.request.user,
            project_id=self.kwargs["project_pk"],
            roles=MANAGING_ROLES,
            action="manage project members",
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ProjectMember.objects.none()
        return ProjectMember.objects.filter(project=self.project()).select_related("user")

    @extend_schema(request=ProjectMemberIn, responses={201: ProjectMemberOut})
    def create(self, request, *args, **kwargs):
        project = self.project()
        data = ProjectMemberIn(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.project_member_add(project=project, user_id=data.validated_data["user"])
        return Response(ProjectMemberOut(member).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        project = self.project()
        if not ProjectMember.objects.filter(project=project, user_id=kwargs["pk"]).exists():
            raise NotFound("No such project member.")
        services.project_member_remove(project=project, user_id=int(kwargs["pk"]))
        return Response(status=status.HTTP_204_NO_CONTENT)
