from django.contrib import admin

from .models import Webhook, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["id", "organization", "project", "url", "active", "created_at"]
    list_filter = ["active"]
    raw_id_fields = ["organization", "project", "created_by"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event", "status", "attempts", "created_at", "delivered_at"]
    list_filter = ["status", "event"]
    raw_id_fields = ["webhook"]
