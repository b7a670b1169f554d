from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "labelhub.learning"
    label = "learning"
    verbose_name = "Project models"

    def ready(self) -> None:
        from labelhub.core.events import IMAGES_ADDED, TASK_STAGE_CHANGED, subscribe

        from . import tasks  # noqa: F401 - registers the Celery tasks (queued by name from services)
        from .prelabels import on_images_added
        from .service_training import on_task_stage_changed as to_training_services
        from .training import on_task_stage_changed

        subscribe(IMAGES_ADDED, on_images_added)  # new images of project_model projects: pre-label
        subscribe(TASK_STAGE_CHANGED, on_task_stage_changed)  # an accepted task: the retraining rule
        subscribe(TASK_STAGE_CHANGED, to_training_services)  # and to the training model services
