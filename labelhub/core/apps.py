from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "labelhub.core"
    label = "core"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 - registers the Celery tasks (beat queues them by name)
