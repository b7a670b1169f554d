"""QA endpoints: project metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.core.errors import DomainError
from labelhub.projects.selectors import project_get

from .metrics import metrics_subject, project_metrics
from .video import task_video_metrics


def _when(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time (or date, meaning its midnight UTC) from a query parameter."""
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is not None:
            parsed = datetime(day.year, day.month, day.day)
    if parsed is None:
        raise DomainError(f"{field} is an ISO 8601 date or date-time.", field=field)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class MetricsOut(serializers.Serializer):
    project = serializers.IntegerField()
    user = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    tasks_per_stage = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    stranded = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Per review stage, open tasks no member of the stage's role may take (all worked on or "
        "checked them earlier): offered to managers and owners. Empty for one user's metrics.",
    )
    throughput = serializers.JSONField(help_text="{by_stage: {stage: {kind: n}}, done, done_per_hour}")
    time = serializers.JSONField(
        help_text="{stage: {actions, work_seconds_total, work_seconds_mean, active_seconds_total, "
        "active_seconds_mean}} (claim to action, and active time from heartbeats, in seconds)"
    )
    rejection_rate = serializers.DictField(child=serializers.FloatField(allow_null=True))
    gold = serializers.JSONField(help_text="{scored, mean_score, by_user: {username: {scored, mean_score}}}")
    ai_assist = serializers.JSONField(
        help_text="{tasks, ai_regions, kept, deleted, unchanged, unchanged_share, mean_iou, "
        "human_regions_added, vertices_moved_or_added, vertices_removed}"
    )
    segmentation = serializers.JSONField(
        help_text="Pixel accuracy, Dice, IoU, Boundary F1 (2 px) means over the classes: {tolerance_px, "
        "prelabel: {overall, by_model, per_task}, annotator_vs_gold: {overall, by_user}, "
        "annotator_vs_fix: {overall, by_user}}"
    )
    by_user = serializers.JSONField()


class ProjectMetricsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Window start (inclusive)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Window end (exclusive)."),
            OpenApiParameter("user", OpenApiTypes.INT, description="Only this user's work (user id)."),
        ],
        responses=MetricsOut,
    )
    def get(self, request, project_pk: int):
        """Project metrics over a time window: tasks per stage, throughput, time spent, rejection rate per
        stage, gold accuracy and AI-assist figures. Managers see anyone's; others only their own."""
        project = project_get(user=request.user, project_id=project_pk)
        since = _when(request.query_params.get("since"), "since")
        until = _when(request.query_params.get("until"), "until")
        raw_user = request.query_params.get("user")
        user_id = None
        if raw_user:
            try:
                user_id = int(raw_user)
            except ValueError:
                raise DomainError("user is a user id.", field="user") from None
        user = metrics_subject(viewer=request.user, project=project, user_id=user_id)
        return Response(project_metrics(project=project, since=since, until=until, user=user))


class VideoMetricsOut(serializers.Serializer):
    task = serializers.IntegerField()
    revision = serializers.IntegerField()
    frames = serializers.JSONField(
        help_text="[{track, frame, model, corrected, j, f, jf, iou, dice, pixel_accuracy, bf1}]: each shape a "
        "model propagated vs the shape kept on that frame (corrected: a person changed it)"
    )
    tracks = serializers.JSONField(help_text="{track: the means of its frames, frames}")
    overall = serializers.JSONField(help_text="The means over the task's frames, frames, corrected")


class TaskVideoMetricsView(APIView):
    @extend_schema(responses=VideoMetricsOut)
    def get(self, request, task_pk):
        """Propagated vs kept, for a video task: J&F (DAVIS), IoU, Dice, pixel accuracy and Boundary F1
        (2 px) per frame, per track and for the task."""
        from labelhub.labeling.selectors import task_get

        task = task_get(user=request.user, task_id=task_pk)
        if not task.video_id:
            raise DomainError("Only video tasks have video metrics.", field="task", code="not_a_video_task")
        return Response(task_video_metrics(task))
