from django.contrib import admin

from .models import GoldScore


@admin.register(GoldScore)
class GoldScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "user", "revision", "score", "created_at"]
    raw_id_fields = ["task", "user"]
