from django.contrib import admin
from django.utils.html import format_html_join

from .metrics import project_metrics
from .models import GoldScore, ProjectSegmentationQuality

KEYS = [
    ("pixel_accuracy", "pixel accuracy"),
    ("dice", "Dice"),
    ("iou", "IoU"),
    ("boundary_f1", "Boundary F1"),
]


@admin.register(GoldScore)
class GoldScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "user", "revision", "score", "created_at"]
    raw_id_fields = ["task", "user"]


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


@admin.register(ProjectSegmentationQuality)
class ProjectSegmentationQualityAdmin(admin.ModelAdmin):
    """Per project, pre-labels vs accepted labels (the `segmentation` block of the metrics API, the
    same selector): pixel accuracy, Dice, IoU and Boundary F1; per model on the detail page."""

    list_display = ["id", "name", "organization", "tasks_scored", *[k for k, _ in KEYS]]
    readonly_fields = ["name", "organization", "by_model", "annotators"]
    fields = readonly_fields
    list_per_page = 20

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def _seg(self, obj) -> dict:
        cache = self.__dict__.setdefault("_cache", {})
        if obj.pk not in cache:
            cache[obj.pk] = project_metrics(project=obj)["segmentation"]
        return cache[obj.pk]

    def get_queryset(self, request):
        self.__dict__["_cache"] = {}
        return super().get_queryset(request).select_related("organization")

    @admin.display(description="tasks scored")
    def tasks_scored(self, obj) -> int:
        return self._seg(obj)["prelabel"]["overall"]["n"]

    def _table(self, rows: dict) -> str:
        return (
            format_html_join(
                "",
                "<div>{}: n {}, " + ", ".join(f"{t} {{}}" for _, t in KEYS) + "</div>",
                ((name, m["n"], *(_cell(m[k]) for k, _ in KEYS)) for name, m in rows.items()),
            )
            or "–"
        )

    @admin.display(description="pre-labels per model")
    def by_model(self, obj) -> str:
        return self._table(self._seg(obj)["prelabel"]["by_model"])

    @admin.display(description="annotators vs gold / vs fixes")
    def annotators(self, obj) -> str:
        seg = self._seg(obj)
        rows = {f"{u} vs gold": m for u, m in seg["annotator_vs_gold"]["by_user"].items()}
        rows |= {f"{u} vs fixes": m for u, m in seg["annotator_vs_fix"]["by_user"].items()}
        return self._table(rows)


def _metric_column(key: str, title: str):
    def column(self, obj):
        return _cell(self._seg(obj)["prelabel"]["overall"][key])

    column.__name__ = key
    return admin.display(description=f"pre-label {title}")(column)


for _key, _title in KEYS:
    setattr(ProjectSegmentationQualityAdmin, _key, _metric_column(_key, _title))
