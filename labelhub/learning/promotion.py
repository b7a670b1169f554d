"""Promotion: a trained version replaces the active one when its held-out score beats the active
version's on the same held-out images.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .dataset import prelabel_maps
from .models import ModelVersion, ProjectModel
from .weights import _load

# The held-out figure that decides a promotion (mean over the foreground classes).
PROMOTION_METRIC = "dice"


def _current_scores(*, pm: ProjectModel, version: ModelVersion, images, labels) -> dict:
    """What the current pre-labeller scores on these held-out tasks: the active version run on the
    images, or (no version promoted yet) the pre-labels the tasks started from."""
    from workers.train import mean_scores, segmentation_scores
    from workers.train.inference import predict_labels

    n = len(version.classes) + 1
    if pm.active_version_id is not None:
        active = pm.active_version
        model, config = _load(active)
        preds = [predict_labels(model, image, device=config.device) for image in images]
        source = active.prediction_model_name
    else:
        preds = prelabel_maps([tuple(p) for p in version.dataset["heldout"]], classes=version.classes)
        source = "prelabels"
    rows = [segmentation_scores(p, t, classes=list(range(1, n))) for p, t in zip(preds, labels, strict=True)]
    return {
        "source": source,
        "metrics": {k: None if v is None else round(v, 6) for k, v in mean_scores(rows).items()},
    }


def version_promote(*, version: ModelVersion, heldout_images, heldout_labels) -> bool:
    """The promotion rule: the version becomes the project's pre-labeller only if its held-out
    PROMOTION_METRIC beats the current pre-labeller's on the same held-out tasks. Both are recorded."""
    with transaction.atomic():
        pm = ProjectModel.objects.select_for_update().get(id=version.project_model_id)
        current = _current_scores(pm=pm, version=version, images=heldout_images, labels=heldout_labels)
        mine = version.metrics.get(PROMOTION_METRIC) or 0.0
        theirs = current["metrics"].get(PROMOTION_METRIC) or 0.0
        promoted = mine > theirs
        version.promotion = {
            "rule": f"held-out {PROMOTION_METRIC} above the current pre-labeller's",
            "candidate": version.metrics,
            "current": current,
            "promoted": promoted,
        }
        fields = ["promotion"]
        if promoted:
            version.promoted_at = timezone.now()
            fields.append("promoted_at")
            pm.active_version = version
            pm.save(update_fields=["active_version"])
        version.save(update_fields=fields)
    return promoted
