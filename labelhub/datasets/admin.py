from django.contrib import admin

from .models import Export, Import


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "format",
        "status",
        "progress_done",
        "progress_total",
        "size_bytes",
        "created_at",
    ]
    list_filter = ["status", "format"]
    list_select_related = ["project"]
    readonly_fields = [f.name for f in Export._meta.fields]
    raw_id_fields = ["project", "created_by"]

    def has_add_permission(self, request) -> bool:
        return False  # a snapshot is taken through the API (one transaction), never typed in


@admin.register(Import)
class ImportAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "format", "target", "status", "file_name", "created_at"]
    list_filter = ["status", "format", "target"]
    list_select_related = ["project"]
    readonly_fields = [f.name for f in Import._meta.fields]
    raw_id_fields = ["project", "created_by"]

    def has_add_permission(self, request) -> bool:
        return False  # an import is a job queued through the API
