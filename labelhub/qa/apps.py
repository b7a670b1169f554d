from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "labelhub.qa"
    label = "qa"
    verbose_name = "QA: gold scoring and quality metrics"

    def ready(self) -> None:
        from labelhub.core.events import IMAGE_DELETING, TASK_STAGE_CHANGED, TASK_SUBMITTED, subscribe

        from . import tasks  # noqa: F401 - registers the Celery tasks (queued by name)
        from .gold import on_task_submitted
        from .samples import on_image_deleting, on_task_stage_changed

        # In the submitting transaction: a submission and its gold score commit (or roll back) together.
        subscribe(TASK_SUBMITTED, on_task_submitted, in_transaction=True)
        # The first review's and the done task's quality samples, with the action that makes them.
        subscribe(TASK_STAGE_CHANGED, on_task_stage_changed, in_transaction=True)
        # Deleting an image deletes its tasks' samples: the cached figures (labelhub/qa/cache.py) go.
        subscribe(IMAGE_DELETING, on_image_deleting, in_transaction=True)
