from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "labelhub.images"
    label = "images"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        from labelhub.core.events import PROJECT_DELETING, subscribe

        from . import tasks  # noqa: F401 - registers the Celery tasks (queued by name from services)
        from .services import on_project_deleting

        # Every decode in this process (workers included) follows the configured limit, not Pillow's 89.5 MP.
        Image.MAX_IMAGE_PIXELS = settings.LABELHUB_MAX_IMAGE_PIXELS
        subscribe(PROJECT_DELETING, on_project_deleting, in_transaction=True)
