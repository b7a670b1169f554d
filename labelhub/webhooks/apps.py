from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "labelhub.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from labelhub.core.events import EXPORT_FINISHED, TASK_STAGE_CHANGED, subscribe

        from . import tasks  # noqa: F401 - registers the Celery task (queued by name from services)
        from .services import on_domain_event

        for name in (TASK_STAGE_CHANGED, EXPORT_FINISHED):
            subscribe(name, on_domain_event)
