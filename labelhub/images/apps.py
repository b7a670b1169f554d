from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "labelhub.images"
    label = "images"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        # Every decode in this process (workers included) follows the configured limit, not Pillow's 89.5 MP.
        Image.MAX_IMAGE_PIXELS = settings.LABELHUB_MAX_IMAGE_PIXELS
