"""Webhook endpoints: create, read, change, delete (owners and managers), and the delivery log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from labelhub.core.idempotency import idempotent

from . import selectors, services
from .models import WEBHOOK_EVENTS, Webhook, WebhookDelivery


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
        return selectors.webhooks_managed(user=self.request.user)

    @extend_schema(request=WebhookIn, responses={201: WebhookOut})
    @idempotent
    def create(self, request, *args, **kwargs):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        hook = services.webhook_create(
            user=request.user,
            organization_id=values.get("organization"),
            project_id=values.get("project"),
            url=values.get("url", ""),
            secret=values.get("secret", ""),
            events=values.get("events", []),
            active=values.get("active", True),
        )
        return Response(WebhookOut(hook).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookIn, responses=WebhookOut)
    def partial_update(self, request, *args, **kwargs):
        data = WebhookIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        hook = services.webhook_update(hook=self.get_object(), user=request.user, **data.validated_data)
        return Response(WebhookOut(hook).data)

    def destroy(self, request, *args, **kwargs):
        services.webhook_delete(hook=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=DeliveryOut(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The delivery log of this webhook, newest first, with every attempt."""
        hook = self.get_object()
        page = self.paginate_queryset(hook.deliveries.order_by("-id"))
        return self.get_paginated_response(DeliveryOut(page, many=True).data)
