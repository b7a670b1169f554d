from django.contrib import admin

from labelhub.core.overlay import overlay_svg, project_colors

from .models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "thumb", "original_name", "project", "width", "height", "format", "created_at"]
    list_filter = ["project", "format"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = ["preview", "sha256", "width", "height", "format", "size_bytes"]
    list_select_related = ["project", "task__annotation"]

    def _regions(self, obj: Image) -> list[dict]:
        task = getattr(obj, "task", None)
        if task is None:
            return []
        revision = task.annotation.revisions.filter(number=task.annotation.current_revision).first()
        return revision.regions if revision else []

    @admin.display(description="thumbnail")
    def thumb(self, obj: Image) -> str:
        return overlay_svg(image=obj, regions=self._regions(obj), colors=project_colors(obj.project), size=96)

    @admin.display(description="current annotation")
    def preview(self, obj: Image) -> str:
        return overlay_svg(
            image=obj, regions=self._regions(obj), colors=project_colors(obj.project), size=512
        )
