from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    """Exports and imports. The app label stays `exports` (the package was `labelhub.exports`): its
    tables (`exports_export`, `exports_exportitem`) and migration history keep their names, so existing
    databases need no rename and a fresh database migrates from the same 0001."""

    name = "labelhub.datasets"
    label = "exports"

    def ready(self) -> None:
        from labelhub.core.events import IMAGE_DELETING, PROJECT_DELETING, subscribe

        from . import tasks  # noqa: F401 - registers the Celery tasks (queued by name)
        from .subscribers import on_image_deleting, on_project_deleting

        subscribe(IMAGE_DELETING, on_image_deleting, in_transaction=True)
        subscribe(PROJECT_DELETING, on_project_deleting, in_transaction=True)
