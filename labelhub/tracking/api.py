"""Propagation: request one for a track of a video task, follow its progress, cancel it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.core.api import IdFilterSet
from labelhub.labeling.selectors import task_get
from labelhub.projects.selectors import project_ids_visible

from . import services
from .models import PropagationJob


class PropagationOut(serializers.ModelSerializer):
    class Meta:
        model = PropagationJob
        fields = [
            "id",
            "task",
            "track",
            "label",
            "seed_frame",
            "seed_prompt",
            "direction",
            "backend",
            "frames_total",
            "frames_done",
            "last_frame",
            "status",
            "cancel_requested",
            "model_name",
            "model_version",
            "error",
            "created_at",
            "finished_at",
        ]


class PropagateIn(serializers.Serializer):
    track = serializers.CharField(max_length=64, help_text="The track to carry.")
    frame = serializers.IntegerField(help_text="The frame whose shape seeds it.")
    direction = serializers.ChoiceField(choices=["forward", "backward"])
    frames = serializers.IntegerField(
        help_text="How many frames at most (up to LABELHUB_VIDEO_PROPAGATE_MAX_FRAMES)."
    )
    backend = serializers.ChoiceField(choices=["auto", "sam2", "flow"], default="auto")
    points = serializers.JSONField(
        required=False,
        help_text="Seed from a prompt instead of the track's shape: clicks [[x, y], ...] in the frame's "
        "pixels, with point_labels.",
    )
    point_labels = serializers.JSONField(
        required=False, help_text="One per point: 1 (on the object) or 0 (not on it)."
    )
    box = serializers.JSONField(
        required=False,
        help_text="Seed from a box [x0, y0, x1, y1] in the frame's pixels (with or without points).",
    )
    label = serializers.CharField(
        required=False, max_length=100, help_text="The class of a new track seeded by points or a box."
    )


class TaskPropagateView(APIView):
    @extend_schema(request=PropagateIn, responses={202: PropagationOut})
    def post(self, request, task_pk):
        """Carry a track's shape from one frame forward or backward on a worker (SAM 2 when configured,
        else the optical-flow fallback). The seed is the track's shape on `frame`, or a prompt there:
        `points` with `point_labels` and/or a `box` (SAM 2 takes it natively; the fallback segments it
        with the project's interactive segmenter first); the prompt's mask is written on `frame` as a
        keyframe. Results are written into the task as they come; poll the job for progress."""
        task = task_get(user=request.user, task_id=task_pk)
        data = PropagateIn(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.propagation_request(task=task, user=request.user, **data.validated_data)
        return Response(PropagationOut(job).data, status=status.HTTP_202_ACCEPTED)


class PropagationFilter(IdFilterSet):
    class Meta:
        model = PropagationJob
        fields = ["task", "status"]


class PropagationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = PropagationJob.objects.none()
    serializer_class = PropagationOut
    filterset_class = PropagationFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return PropagationJob.objects.filter(task__project_id__in=project_ids_visible(self.request.user))

    @extend_schema(request=None, responses=PropagationOut)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a queued or running propagation; what it wrote so far stays."""
        job = services.propagation_cancel(job=self.get_object(), user=request.user)
        return Response(PropagationOut(job).data)
