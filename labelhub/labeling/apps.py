from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labelhub.labeling"
    label = "labeling"

    def ready(self) -> None:
        from labelhub.core.events import (
            IMAGES_ADDED,
            PREDICTION_READY,
            PREDICTIONS_READY,
            VIDEO_ADDED,
            subscribe,
        )

        from . import tasks  # noqa: F401 - registers the Celery tasks
        from .services import on_images_added, on_prediction_ready, on_predictions_ready, on_video_added

        # In the publisher's transaction: an image never exists without its task, nor an AI result
        # without the pre-label it seeds.
        subscribe(IMAGES_ADDED, on_images_added, in_transaction=True)
        subscribe(PREDICTION_READY, on_prediction_ready, in_transaction=True)
        subscribe(PREDICTIONS_READY, on_predictions_ready, in_transaction=True)
        subscribe(VIDEO_ADDED, on_video_added, in_transaction=True)
