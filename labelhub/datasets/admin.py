from django.contrib import admin

from .models import Export


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
