"""Tasks, annotations (current or any revision; writes name the revision they read) and comments."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labelhub.accounts.models import Role
from labelhub.accounts.selectors import role_require
from labelhub.core.api import PassThroughField
from labelhub.core.errors import Conflict, DomainError, NotFound

from . import selectors, services
from .models import AnnotationRevision, Comment, Task, TaskStatus

# Who may write regions at all; the QA workflow narrows this to the task's current worker.
WRITER_ROLES = (Role.OWNER, Role.MANAGER, Role.ANNOTATOR, Role.REVIEWER)


class TaskOut(serializers.ModelSerializer):
    revision = serializers.IntegerField(source="annotation.current_revision", read_only=True)
    image_width = serializers.IntegerField(source="image.width", read_only=True)
    image_height = serializers.IntegerField(source="image.height", read_only=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "image",
            "image_width",
            "image_height",
            "stage",
            "status",
            "assignee",
            "lease_expires_at",
            "revision",
            "created_at",
            "updated_at",
        ]


class RegionSerializer(serializers.Serializer):
    id = serializers.CharField(required=False)
    label = serializers.CharField()
    kind = serializers.ChoiceField(choices=["polygon", "mask"])
    polygons = serializers.JSONField(
        required=False, help_text="[{exterior: [[x, y], ...], holes: [[[x, y], ...]]}]"
    )
    rle = serializers.JSONField(required=False, help_text="COCO RLE {size: [height, width], counts}")
    source = serializers.ChoiceField(choices=["ai", "human"], required=False)
    prediction_id = serializers.IntegerField(required=False, allow_null=True)
    score = serializers.FloatField(required=False, allow_null=True)


class RevisionOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True)
    regions = RegionSerializer(many=True)

    class Meta:
        model = AnnotationRevision
        fields = ["number", "regions", "author", "stage", "summary", "created_at"]


class RevisionBrief(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True)

    class Meta:
        model = AnnotationRevision
        fields = ["number", "author", "stage", "summary", "created_at"]


class AnnotationOut(serializers.Serializer):
    task = serializers.IntegerField()
    revision = serializers.IntegerField(help_text="The revision shown; send it back when you save.")
    current_revision = serializers.IntegerField()
    regions = RegionSerializer(many=True)
    author = serializers.CharField(allow_null=True)
    stage = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)


class AnnotationIn(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=0, help_text="The revision you read (0 when there was none)."
    )
    regions = PassThroughField(help_text="The full list of regions after your change (see Region).")


class CommentOut(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None, read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "task", "author", "text", "region_id", "x", "y", "revision", "resolved", "created_at"]


class CommentIn(serializers.Serializer):
    text = serializers.CharField(max_length=5000)
    region_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    x = serializers.FloatField(required=False, allow_null=True)
    y = serializers.FloatField(required=False, allow_null=True)


class CommentPatch(serializers.Serializer):
    resolved = serializers.BooleanField()


def annotation_payload(task: Task, revision: AnnotationRevision | None) -> dict:
    return {
        "task": task.id,
        "revision": revision.number if revision else 0,
        "current_revision": task.annotation.current_revision,
        "regions": revision.regions if revision else [],
        "author": revision.author.username if revision and revision.author else None,
        "stage": revision.stage if revision else None,
        "created_at": revision.created_at if revision else None,
    }


class TaskFilter(filters.FilterSet):
    class Meta:
        model = Task
        fields = ["project", "stage", "status", "assignee", "image"]


class TaskViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Task.objects.none()
    serializer_class = TaskOut
    filterset_class = TaskFilter
    lookup_value_regex = r"\d+"
    ordering_fields = ["id", "created_at", "updated_at"]

    def get_queryset(self):
        return selectors.tasks_visible(user=self.request.user)

    def task(self) -> Task:
        try:
            task_id = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            raise NotFound("No such task.") from None
        return selectors.task_get(user=self.request.user, task_id=task_id)

    @extend_schema(
        methods=["GET"],
        parameters=[
            OpenApiParameter("revision", OpenApiTypes.INT, description="A past revision; default current.")
        ],
        responses=AnnotationOut,
    )
    @extend_schema(
        methods=["PUT"], request=AnnotationIn, responses={200: AnnotationOut, 409: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["get", "put"])
    def annotation(self, request, pk=None):
        """Read the annotation (current or `?revision=N`); PUT the full region list with the revision you read.
        A stale revision answers 409 and the newer revision is kept."""
        task = self.task()
        if request.method == "GET":
            number = request.query_params.get("revision")
            if number is not None:
                try:
                    number = int(number)
                except ValueError:
                    raise DomainError("revision is an integer.", field="revision") from None
            revision = selectors.annotation_revision_get(task=task, number=number)
            return Response(annotation_payload(task, revision))
        role_require(
            user=request.user,
            organization_id=task.project.organization_id,
            roles=WRITER_ROLES,
            action="edit annotations",
        )
        if task.status == TaskStatus.DONE:
            raise Conflict("The task is accepted; its annotation is final.", code="task_done")
        data = AnnotationIn(data=request.data)
        data.is_valid(raise_exception=True)
        revision = services.annotation_save(
            task=task,
            author=request.user,
            base_revision=data.validated_data["revision"],
            regions=data.validated_data["regions"],
        )
        task.annotation.current_revision = revision.number
        return Response(annotation_payload(task, revision))

    @extend_schema(responses=RevisionBrief(many=True))
    @action(detail=True, methods=["get"])
    def revisions(self, request, pk=None):
        """Every revision of the task's annotation: who, when, stage, what changed."""
        task = self.task()
        revisions = task.annotation.revisions.select_related("author").order_by("number")
        return Response(RevisionBrief(revisions, many=True).data)

    @extend_schema(methods=["GET"], responses=CommentOut(many=True))
    @extend_schema(methods=["POST"], request=CommentIn, responses={201: CommentOut})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        """Comments on the task, optionally pinned to a region (`region_id`) or a point (`x`, `y`)."""
        task = self.task()
        if request.method == "GET":
            return Response(CommentOut(task.comments.select_related("author"), many=True).data)
        role_require(
            user=request.user,
            organization_id=task.project.organization_id,
            roles=WRITER_ROLES,
            action="comment",
        )
        data = CommentIn(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_create(task=task, author=request.user, **data.validated_data)
        return Response(CommentOut(comment).data, status=status.HTTP_201_CREATED)


class CommentViewSet(mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    queryset = Comment.objects.none()
    serializer_class = CommentOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "patch"]

    def get_queryset(self):
        from labelhub.accounts.selectors import organization_ids_for

        return Comment.objects.filter(
            task__project__organization_id__in=organization_ids_for(self.request.user)
        )

    @extend_schema(request=CommentPatch, responses=CommentOut)
    def partial_update(self, request, *args, **kwargs):
        """Resolve (or reopen) a comment."""
        comment = self.get_object()
        role_require(
            user=request.user,
            organization_id=comment.task.project.organization_id,
            roles=WRITER_ROLES,
            action="resolve comments",
        )
        data = CommentPatch(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_resolve(
            comment=comment, user=request.user, resolved=data.validated_data["resolved"]
        )
        return Response(CommentOut(comment).data)
