"""QA endpoints: project metrics and webhooks (with their delivery log)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES, Membership, Organization
from labelhub.accounts.selectors import organization_ids_for, role_of, role_require
from labelhub.core.errors import DomainError, NotFound
from labelhub.projects.models import Project
from labelhub.projects.selectors import project_get

from .metrics import project_metrics
from .models import WEBHOOK_EVENTS, Webhook, WebhookDelivery
from .webhooks import webhook_events_clean, webhook_url_clean


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
        user = None
        raw_user = request.query_params.get("user")
        if raw_user:
            try:
                user_id = int(raw_user)
            except ValueError:
                raise DomainError("user is a user id.", field="user") from None
            user = (
                get_user_model()
                .objects.filter(pk=user_id, memberships__organization_id=project.organization_id)
                .first()
            )
            if user is None:
                raise DomainError("No such member.", field="user")
        role = role_of(user=request.user, organization_id=project.organization_id)
        if role not in MANAGING_ROLES:
            if user is not None and user.pk != request.user.pk:
                role_require(
                    user=request.user,
                    organization_id=project.organization_id,
                    roles=MANAGING_ROLES,
                    action="see other members' metrics",
                )
            user = request.user
        return Response(project_metrics(project=project, since=since, until=until, user=user))


class WebhookOut(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "organization", "project", "url", "secret", "events", "active", "created_at"]


class WebhookIn(serializers.Serializer):
    organization = serializers.IntegerField(required=False)
    project = serializers.IntegerField(required=False, allow_null=True)
    url = serializers.CharField(required=False, max_length=1000)
    secret = serializers.CharField(
        required=False, max_length=200, help_text="HMAC-SHA256 key; generated when left out."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(WEBHOOK_EVENTS)), required=False, help_text="Empty: all."
    )
    active = serializers.BooleanField(required=False)


class DeliveryOut(serializers.ModelSerializer):
    log = serializers.JSONField(help_text="[{at, status_code, error, duration_ms}], one per attempt")
    payload = serializers.JSONField()

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event",
            "payload",
            "status",
            "attempts",
            "log",
            "created_at",
            "delivered_at",
        ]


class WebhookViewSet(viewsets.ModelViewSet):
    """Webhooks of the organizations you manage (owners and managers only)."""

    queryset = Webhook.objects.none()
    serializer_class = WebhookOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        managed = Membership.objects.filter(user=self.request.user, role__in=MANAGING_ROLES).values(
            "organization_id"
        )
        return Webhook.objects.filter(organization_id__in=managed)

    def _project(self, organization_id: int, project_id: int | None) -> Project | None:
        if project_id is None:
            return None
        project = Project.objects.filter(pk=project_id, organization_id=organization_id).first()
        if project is None:
            raise DomainError("No such project in this organization.", field="project")
        return project

    @extend_schema(request=WebhookIn, responses={201: WebhookOut})
    def create(self, request, *args, **kwargs):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = None
        org_id = values.get("organization")
        if org_id is None and values.get("project") is not None:
            project = Project.objects.filter(
                pk=values["project"], organization_id__in=organization_ids_for(request.user)
            ).first()
            if project is None:
                raise NotFound("No such project.")
            org_id = project.organization_id
        if org_id is None:
            raise DomainError("organization or project is required.", field="organization", code="required")
        role_require(
            user=request.user, organization_id=org_id, roles=MANAGING_ROLES, action="manage webhooks"
        )
        project = project or self._project(org_id, values.get("project"))
        hook = Webhook.objects.create(
            organization=Organization.objects.get(pk=org_id),
            project=project,
            url=webhook_url_clean(values.get("url", "")),
            secret=values.get("secret") or secrets.token_hex(32),
            events=webhook_events_clean(values.get("events", [])),
            active=values.get("active", True),
            created_by=request.user,
        )
        return Response(WebhookOut(hook).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookIn, responses=WebhookOut)
    def partial_update(self, request, *args, **kwargs):
        hook = self.get_object()
        data = WebhookIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "organization" in values and values["organization"] != hook.organization_id:
            raise DomainError("A webhook cannot move to another organization.", field="organization")
        if "project" in values:
            hook.project = self._project(hook.organization_id, values["project"])
        if "url" in values:
            hook.url = webhook_url_clean(values["url"])
        if "secret" in values:
            hook.secret = values["secret"]
        if "events" in values:
            hook.events = webhook_events_clean(values["events"])
        if "active" in values:
            hook.active = values["active"]
        hook.save()
        return Response(WebhookOut(hook).data)

    @extend_schema(responses=DeliveryOut(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The delivery log of this webhook, newest first, with every attempt."""
        hook = self.get_object()
        page = self.paginate_queryset(hook.deliveries.order_by("-id"))
        return self.get_paginated_response(DeliveryOut(page, many=True).data)
