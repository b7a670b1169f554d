from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "labelhub.images"
    label = "images"
