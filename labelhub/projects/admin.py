from django.contrib import admin

from .models import Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "organization", "polygon_simplifier", "polygon_min_iou", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name"]
