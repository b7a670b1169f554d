from django.contrib import admin

from .models import Evaluation, ModelVersion, ProjectModel, TrainingJob


@admin.register(ProjectModel)
class ProjectModelAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "architecture", "active_version", "accepted_at_last_training"]
    raw_id_fields = ["project", "active_version"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project_model",
        "number",
        "status",
        "heldout_pixel_accuracy",
        "heldout_dice",
        "heldout_iou",
        "heldout_boundary_f1",
        "promoted_at",
        "code_version",
    ]
    list_filter = ["status"]
    readonly_fields = ["metrics", "promotion", "progress", "dataset", "weights_sha256", "code_version"]
    raw_id_fields = ["project_model"]

    @admin.display(description="held-out pixel accuracy")
    def heldout_pixel_accuracy(self, obj: ModelVersion):
        return obj.metrics.get("pixel_accuracy")

    @admin.display(description="held-out Dice")
    def heldout_dice(self, obj: ModelVersion):
        return obj.metrics.get("dice")

    @admin.display(description="held-out IoU")
    def heldout_iou(self, obj: ModelVersion):
        return obj.metrics.get("iou")

    @admin.display(description="held-out Boundary F1")
    def heldout_boundary_f1(self, obj: ModelVersion):
        return obj.metrics.get("boundary_f1")


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "backend", "model_version", "noc85", "noc90", "created_at"]
    list_filter = ["status", "backend"]
    readonly_fields = ["progress", "results", "dataset", "backend", "model_version", "noc85", "noc90"]
    raw_id_fields = ["project", "requested_by"]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "version", "trigger", "requested_by", "attempts", "created_at"]
    raw_id_fields = ["version", "requested_by"]
