from django.contrib import admin

from .models import ModelVersion, ProjectModel, TrainingJob


@admin.register(ProjectModel)
class ProjectModelAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "architecture", "active_version", "accepted_at_last_training"]
    raw_id_fields = ["project", "active_version"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "project_model", "number", "status", "heldout_dice", "promoted_at", "code_version"]
    list_filter = ["status"]
    readonly_fields = ["metrics", "promotion", "progress", "dataset", "weights_sha256", "code_version"]
    raw_id_fields = ["project_model"]

    @admin.display(description="held-out Dice")
    def heldout_dice(self, obj: ModelVersion):
        return obj.metrics.get("dice")


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "version", "trigger", "requested_by", "attempts", "created_at"]
    raw_id_fields = ["version", "requested_by"]
