from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "labelhub.tracking"
    label = "tracking"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 - registers the Celery tasks
