from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "labelhub.predictions"
    label = "predictions"

    def ready(self) -> None:
        from labelhub.core.events import IMAGE_DELETING, IMAGES_ADDED, PROJECT_DELETING, subscribe

        from . import tasks  # noqa: F401 - registers the Celery tasks (queued by name from services)
        from .model_services import on_images_added as to_model_services
        from .services import on_images_added, on_rows_deleting

        subscribe(IMAGES_ADDED, on_images_added)
        subscribe(IMAGES_ADDED, to_model_services)  # `model_service` projects: their pre-label services
        subscribe(IMAGE_DELETING, on_rows_deleting, in_transaction=True)
        subscribe(PROJECT_DELETING, on_rows_deleting, in_transaction=True)
