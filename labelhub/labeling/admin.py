from django.contrib import admin

from labelhub.core.overlay import overlay_svg, project_colors
from labelhub.images.models import Image

from .models import Annotation, AnnotationRevision, Comment, Task, TaskEvent
from .selectors import revision_current


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumb",
        "project",
        "stage",
        "status",
        "assignee",
        "lease_expires_at",
        "is_gold",
        "updated_at",
    ]
    list_filter = ["project", "stage", "status", "is_gold"]
    list_select_related = ["project", "image", "annotation", "assignee"]
    raw_id_fields = ["image", "assignee", "last_annotator"]
    readonly_fields = ["preview"]

    def _regions(self, obj: Task) -> list[dict]:
        revision = revision_current(annotation=obj.annotation)
        return revision.regions if revision else []

    @admin.display(description="thumbnail")
    def thumb(self, obj: Task) -> str:
        return overlay_svg(
            image=obj.image, regions=self._regions(obj), colors=project_colors(obj.project), size=96
        )

    @admin.display(description="current annotation")
    def preview(self, obj: Task) -> str:
        return overlay_svg(
            image=obj.image, regions=self._regions(obj), colors=project_colors(obj.project), size=512
        )


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    extra = 0
    fields = ["number", "author", "stage", "summary", "created_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "current_revision", "updated_at"]
    inlines = [RevisionInline]
    raw_id_fields = ["task"]


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(admin.ModelAdmin):
    list_display = ["id", "thumb", "annotation", "number", "author", "stage", "created_at"]
    list_filter = ["stage"]
    list_select_related = ["annotation__task__image", "annotation__task__project", "author"]
    readonly_fields = ["preview"]
    raw_id_fields = ["annotation", "author"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # revisions are immutable

    @admin.display(description="thumbnail")
    def thumb(self, obj: AnnotationRevision) -> str:
        task = obj.annotation.task
        return overlay_svg(
            image=task.image, regions=obj.regions, colors=project_colors(task.project), size=96
        )

    @admin.display(description="regions")
    def preview(self, obj: AnnotationRevision) -> str:
        task = obj.annotation.task
        return overlay_svg(
            image=task.image, regions=obj.regions, colors=project_colors(task.project), size=512
        )


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "author", "text", "region_id", "resolved", "created_at"]
    list_filter = ["resolved"]
    raw_id_fields = ["task", "author", "resolved_by"]


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "kind", "from_stage", "to_stage", "actor", "revision", "created_at"]
    list_filter = ["kind", "from_stage"]
    raw_id_fields = ["task", "actor"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the history is append-only


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
        revision = revision_current(annotation=task.annotation)
        return revision.regions if revision else []

    @admin.display(description="thumbnail")
    def thumb(self, obj: Image) -> str:
        return overlay_svg(image=obj, regions=self._regions(obj), colors=project_colors(obj.project), size=96)

    @admin.display(description="current annotation")
    def preview(self, obj: Image) -> str:
        return overlay_svg(
            image=obj, regions=self._regions(obj), colors=project_colors(obj.project), size=512
        )
