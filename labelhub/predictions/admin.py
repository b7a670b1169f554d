from django.contrib import admin

from labelhub.core.overlay import overlay_svg, project_colors

from .models import ImageEmbedding, Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["id", "thumb", "image", "model_name", "checkpoint_sha256", "status", "score", "attempts"]
    list_filter = ["status", "model_name"]
    list_select_related = ["image__project"]
    readonly_fields = ["preview"]
    raw_id_fields = ["image"]

    @admin.display(description="thumbnail")
    def thumb(self, obj: Prediction) -> str:
        return overlay_svg(
            image=obj.image, regions=obj.regions, colors=project_colors(obj.image.project), size=96
        )

    @admin.display(description="regions")
    def preview(self, obj: Prediction) -> str:
        return overlay_svg(
            image=obj.image, regions=obj.regions, colors=project_colors(obj.image.project), size=512
        )


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "model_name", "checkpoint_sha256", "nbytes", "created_at"]
    list_filter = ["model_name"]
    raw_id_fields = ["image"]
