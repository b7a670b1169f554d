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

from .metrics import PER_TASK_MAX_PAGE_SIZE, gold_visible_to, metrics_subject, project_metrics
from .report import quality_report
from .selectors import report_require, task_feedback
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


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"{name} is a whole number (an id).", field=name) from None


def _per_task_param(request) -> tuple[int, int] | None:
    """(page, page size) when `per_task` asks for the per-task figures; None otherwise."""
    raw = (request.query_params.get("per_task") or "").lower()
    if raw in ("", "false", "0", "no"):
        return None
    if raw not in ("true", "1", "yes"):
        raise DomainError("per_task is true or false.", field="per_task")
    page = _int_param(request, "page")
    size = _int_param(request, "page_size")
    page, size = 1 if page is None else page, 500 if size is None else size
    if page < 1 or page > 10**6:
        raise DomainError("page is a whole number from 1 to 1000000.", field="page")
    if not 1 <= size <= PER_TASK_MAX_PAGE_SIZE:
        raise DomainError(
            f"page_size is a whole number from 1 to {PER_TASK_MAX_PAGE_SIZE}.", field="page_size"
        )
    return page, size


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
    gold = serializers.JSONField(
        allow_null=True,
        help_text="{scored, mean_score, by_user: {username: {scored, mean_score}}}; null for members who "
        "are no managers in a project without immediate feedback (gold stays hidden from them)",
    )
    ai_assist = serializers.JSONField(
        help_text="{tasks, ai_regions, kept, deleted, unchanged, unchanged_share, mean_iou, "
        "human_regions_added, vertices_moved_or_added, vertices_removed}"
    )
    segmentation = serializers.JSONField(
        help_text="Pixel accuracy, Dice, IoU, Boundary F1 (2 px), per class and means over the classes "
        "present: {tolerance_px, prelabel: {overall, by_model, per_task}, annotator_vs_gold: {overall, "
        "by_user} (null where gold is hidden), annotator_vs_fix: {overall, by_user}}; per_task is null "
        "unless ?per_task=true, then one page: {page, page_size, has_next, results: [{task, model, "
        "pixel_accuracy, dice, iou, boundary_f1}]}"
    )
    consensus = serializers.JSONField(help_text="{by_user: {username: {passes, mean_agreement}}}")
    by_user = serializers.JSONField(
        help_text="{username: {actions, submitted, reviewed, actions_per_hour, work_seconds, active_seconds "
        "(claims released, expired or reassigned included), rejections_received, rejection_rate, "
        "gold_mean_score, ai_assist: {tasks, ai_regions, kept_share, unchanged_share, mean_iou} | null}}"
    )


class ProjectMetricsView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Window start (inclusive)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Window end (exclusive)."),
            OpenApiParameter("user", OpenApiTypes.INT, description="Only this user's work (user id)."),
            OpenApiParameter(
                "per_task",
                OpenApiTypes.BOOL,
                description="Include one page of the pre-labels' per-task figures (default: left out).",
            ),
            OpenApiParameter("page", OpenApiTypes.INT, description="That page (with per_task; default 1)."),
            OpenApiParameter(
                "page_size", OpenApiTypes.INT, description="Its size, 1-1000 (with per_task; default 500)."
            ),
        ],
        responses=MetricsOut,
    )
    def get(self, request, project_pk: int):
        """Project metrics over a time window: tasks per stage, throughput, time spent, rejection rate per
        stage, gold accuracy and AI-assist figures. Managers see anyone's; others only their own."""
        project = project_get(user=request.user, project_id=project_pk)
        since = _when(request.query_params.get("since"), "since")
        until = _when(request.query_params.get("until"), "until")
        user_id = _int_param(request, "user")
        user = metrics_subject(viewer=request.user, project=project, user_id=user_id)
        gold_visible = gold_visible_to(viewer=request.user, project=project)
        return Response(
            project_metrics(
                project=project,
                since=since,
                until=until,
                user=user,
                gold_visible=gold_visible,
                per_task=_per_task_param(request),
            )
        )


class QualityReportOut(serializers.Serializer):
    project = serializers.IntegerField()
    accuracy = serializers.JSONField(
        help_text="{units, correct, accuracy, ci95: [low, high]} (95% Wilson, cc)"
    )
    by_source = serializers.JSONField(help_text="{honeypots: {...}, reviews: {...}}, each like accuracy")
    errors = serializers.JSONField(help_text="{missing, extra, class, boundary}: region errors by kind")
    per_class = serializers.JSONField(help_text="{class: {units, correct, accuracy, ci95, errors}}")
    by_user = serializers.JSONField(help_text="{username: {units, correct, accuracy, ci95, samples, errors}}")
    segmentation = serializers.JSONField(
        help_text="{n, pixel_accuracy, dice, iou, boundary_f1, per_class}: means over the classes present"
    )
    bound = serializers.JSONField(help_text="{metric, value}: how a matched region is judged")
    threshold = serializers.FloatField(allow_null=True)
    action = serializers.CharField()
    below_threshold = serializers.BooleanField()


class ProjectQualityView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("user", OpenApiTypes.INT, description="Only this labeler's work (user id)."),
        ],
        responses=QualityReportOut,
    )
    def get(self, request, project_pk: int):
        """The project's quality report (managers and owners; an export keeps its own, of its tasks, in
        its `quality` and its manifest): accuracy of its regions estimated from
        honeypots and first reviews with a 95% confidence interval, per class and per labeler, errors by
        kind, and pixel accuracy, Dice, IoU and Boundary F1."""
        project = project_get(user=request.user, project_id=project_pk)
        report_require(viewer=request.user, project=project)
        user_id = _int_param(request, "user")
        user = metrics_subject(viewer=request.user, project=project, user_id=user_id) if user_id else None
        return Response(quality_report(project=project, user=user))


class TaskFeedbackOut(serializers.Serializer):
    task = serializers.IntegerField()
    passed = serializers.BooleanField()
    accuracy = serializers.FloatField(allow_null=True)
    units = serializers.IntegerField()
    correct = serializers.IntegerField()
    errors = serializers.JSONField(help_text="{missing, extra, class, boundary}")
    matches = serializers.JSONField(help_text="[{reference, submitted, iou, score, verdict}]")
    missing = serializers.JSONField(help_text="ids of the reference regions you did not draw")
    extra = serializers.JSONField(help_text="ids of your regions that match none")
    expected = serializers.JSONField(help_text="the known-correct regions")
    bound = serializers.JSONField(help_text="{metric, value}: how a matched region was judged")


class TaskFeedbackView(APIView):
    @extend_schema(responses=TaskFeedbackOut)
    def get(self, request, task_pk: int):
        """Immediate feedback: in a project that enables it, the score of the gold task (honeypot) you
        just submitted, with each error. 404 for any other task, and always where feedback is off."""
        return Response(task_feedback(user=request.user, task_id=task_pk))


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
